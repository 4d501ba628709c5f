//! Launch templates: numbered versions from 1, `$Latest`/`$Default` resolution, CreateLaunchTemplateVersion
//! copying its SourceVersion (the AWS behaviour moto lacks), and the default-version switch.

use crate::cloud::actions;
use std::collections::BTreeMap;

use tokio::time::Instant;

use super::conventions::err;
use super::resource_records::{TemplateRec, TemplateVersion};
use super::state::State;
use crate::cloud::CloudResult;
use crate::core::model::*;

impl TemplateRec {
    pub fn latest(&self) -> i64 {
        self.versions.keys().next_back().copied().unwrap_or(1)
    }

    /// A number, `$Latest` or `$Default` to an existing version number.
    pub fn resolve(&self, version: &str) -> Option<i64> {
        let n = match version {
            "$Latest" => self.latest(),
            "$Default" => self.default_version,
            other => other.parse().ok()?,
        };
        self.versions.contains_key(&n).then_some(n)
    }
}

impl TemplateVersion {
    /// A version holding `data` (CreateLaunchTemplate, or a fixture).
    pub fn from_data(data: &TemplateData, description: Option<String>, created: Instant) -> Self {
        Self {
            number: 1,
            image_id: data.image_id.clone(),
            instance_type: data.instance_type.clone(),
            user_data: data.user_data.clone(),
            security_group_ids: data.security_group_ids.clone(),
            instance_tags: Tags::new(),
            description,
            created,
            extra: data.clone(),
        }
    }

    /// Everything the version says, as DescribeLaunchTemplateVersions reports it.
    pub fn launch_data(&self) -> TemplateData {
        TemplateData {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            user_data: self.user_data.clone(),
            security_group_ids: self.security_group_ids.clone(),
            ..self.extra.clone()
        }
    }
}

impl State {
    /// Fixture: a template whose version 1 (the default) holds `data`.
    pub fn insert_template(&mut self, name: &str, mut data: TemplateVersion) -> String {
        let id = self.next_id("lt");
        data.number = 1;
        self.templates.insert(
            id.clone(),
            TemplateRec {
                id: id.clone(),
                name: name.to_string(),
                default_version: 1,
                versions: BTreeMap::from([(1, data)]),
            },
        );
        id
    }

    pub fn template(&self, action: &str, id: &str) -> CloudResult<&TemplateRec> {
        if !id.starts_with("lt-") {
            return Err(err(
                action,
                "InvalidLaunchTemplateId.Malformed",
                format!("The launch template ID '{id}' is malformed"),
            ));
        }
        self.templates.get(id).ok_or_else(|| {
            let msg = format!("The specified launch template, with template ID {id}, does not exist.");
            err(action, "InvalidLaunchTemplateId.NotFound", msg)
        })
    }

    fn lt_view(&self, t: &TemplateRec, v: &TemplateVersion) -> LtVersion {
        LtVersion {
            template_id: t.id.clone(),
            template_name: t.name.clone(),
            number: v.number,
            image_id: v.image_id.clone(),
            description: v.description.clone(),
            is_default: v.number == t.default_version,
            created: Some(self.iso(v.created)),
        }
    }

    /// Newest first, as the console and CLI show them; callers should not rely on the order.
    pub fn lt_versions(&self, id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>> {
        const A: &str = actions::DESCRIBE_LT_VERSIONS.name;
        let t = self.template(A, id)?;
        let numbers: Vec<i64> = if versions.is_empty() {
            t.versions.keys().rev().copied().collect()
        } else {
            let mut ns = Vec::new();
            for v in versions {
                ns.push(t.resolve(v).ok_or_else(|| version_not_found(A, id, v))?);
            }
            ns
        };
        Ok(numbers.iter().map(|n| self.lt_view(t, &t.versions[n])).collect())
    }

    /// Copies `source` and overrides only the image, as AWS does with SourceVersion. AWS does not check the
    /// image here (bad parameters come back as warnings); a bad image fails later, at launch.
    pub fn create_lt_version(
        &mut self,
        id: &str,
        source: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion> {
        const A: &str = actions::CREATE_LT_VERSION.name;
        if description.chars().count() > 255 {
            return Err(err(
                A,
                "InvalidParameterValue",
                "VersionDescription is longer than 255 characters",
            ));
        }
        let t = self.template(A, id)?;
        let mut data = t
            .versions
            .get(&source)
            .cloned()
            .ok_or_else(|| version_not_found(A, id, &source.to_string()))?;
        data.number = t.latest() + 1;
        data.image_id = Some(image_id.to_string());
        data.description = Some(description.to_string());
        data.created = self.now;
        let number = data.number;
        let t = self.templates.get_mut(id).expect("checked above");
        t.versions.insert(number, data);
        let t = &self.templates[id];
        Ok(self.lt_view(t, &t.versions[&number]))
    }

    /// As EC2: the default version cannot be deleted; a missing one is already gone; numbers are never reused.
    pub fn delete_lt_version(&mut self, id: &str, version: i64) -> CloudResult<()> {
        const A: &str = actions::DELETE_LT_VERSIONS.name;
        let t = self.template(A, id)?;
        if t.default_version == version {
            return Err(err(A, "unexpectedError", "You can't delete the default version of a launch template"));
        }
        self.templates.get_mut(id).expect("checked above").versions.remove(&version);
        Ok(())
    }

    pub fn set_default_version(&mut self, id: &str, version: i64) -> CloudResult<()> {
        const A: &str = actions::MODIFY_LT.name;
        let t = self.template(A, id)?;
        if !t.versions.contains_key(&version) {
            return Err(version_not_found(A, id, &version.to_string()));
        }
        self.templates.get_mut(id).expect("checked above").default_version = version;
        Ok(())
    }
}

fn version_not_found(action: &str, id: &str, version: &str) -> crate::cloud::CloudError {
    let msg = format!("Could not find launch template version {version} for launch template ID {id}");
    err(action, "InvalidLaunchTemplateId.VersionNotFound", msg)
}

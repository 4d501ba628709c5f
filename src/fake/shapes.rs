//! Scenario controls for the group shapes teams run: a group on a launch configuration, a mixed
//! instances policy, Standby and scale-in-protected instances, suspended processes, someone changing
//! the desired capacity — and the launch-configuration and template calls `adopt` makes
//! (DescribeLaunchConfigurations, DescribeLaunchTemplates, CreateLaunchTemplate, a version's data).

use super::conventions::err;
use super::group_records::{Lifecycle, MemberRec, Origin, Source};
use super::resource_records::{TemplateRec, TemplateVersion};
use super::state::State;
use super::FakeCloud;
use crate::cloud::{actions, CloudResult};
use crate::core::model::*;

impl State {
    pub fn find_template(&self, name: &str) -> Option<TemplateInfo> {
        self.templates.values().find(|t| t.name == name).map(|t| TemplateInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            default_version: Some(t.default_version),
            latest_version: Some(t.latest()),
        })
    }

    pub fn create_template(&mut self, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion> {
        const A: &str = actions::CREATE_LT.name;
        if self.find_template(name).is_some() {
            let msg = format!("Launch template name already in use: {name}");
            return Err(err(A, "InvalidLaunchTemplateName.AlreadyExistsException", msg));
        }
        let mut data = data.clone();
        if std::mem::take(&mut self.faults.template_drops_key_name) {
            data.key_name = None;
        }
        let version = TemplateVersion::from_data(&data, Some(description.to_string()), self.now);
        let id = self.insert_template(name, version);
        self.lt_versions(&id, &["1".to_string()]).map(|mut v| v.remove(0))
    }

    pub fn template_data(&self, id: &str, version: i64) -> CloudResult<Option<TemplateData>> {
        let t = self.template(actions::DESCRIBE_LT_VERSIONS.name, id)?;
        Ok(t.versions.get(&version).map(TemplateVersion::launch_data))
    }

    fn member_mut(&mut self, group: &str, id: &str) -> &mut MemberRec {
        self.groups
            .get_mut(group)
            .and_then(|g| g.members.iter_mut().find(|m| m.id == id))
            .unwrap_or_else(|| panic!("{id} is not a member of {group}"))
    }
}

impl TemplateRec {
    /// A template's data as a fixture gives it.
    pub fn version_data(&self, version: i64) -> Option<TemplateData> {
        self.versions.get(&version).map(TemplateVersion::launch_data)
    }
}

impl FakeCloud {
    /// The group moves to a launch configuration `<group>-lc` with its template's version-1 settings (and
    /// `extra`'s fields); its instances report that configuration, as a group created on one would.
    pub fn use_launch_configuration(&self, group: &str, extra: LaunchConfiguration) -> String {
        self.with(|s| {
            let g = s.groups.get(group).unwrap_or_else(|| panic!("no group {group}"));
            let Source::Template { id, .. } = &g.source else { panic!("{group} is not on a launch template") };
            let data = s.templates[id].version_data(1).expect("version 1");
            let name = format!("{group}-lc");
            let lc = LaunchConfiguration {
                name: name.clone(),
                image_id: data.image_id,
                instance_type: data.instance_type,
                security_groups: data.security_group_ids,
                ..extra
            };
            s.launch_configs.insert(name.clone(), lc);
            let g = s.groups.get_mut(group).expect("checked");
            g.source = Source::Configuration(name.clone());
            for m in &mut g.members {
                m.origin = Origin::Configuration(name.clone());
            }
            name
        })
    }

    /// A template of its own (e.g. for an override launching another architecture): version 1 launches
    /// `image` as `instance_type`.
    pub fn add_template(&self, name: &str, image: &str, instance_type: &str) -> String {
        self.with(|s| {
            let data = TemplateData { image_id: Some(image.into()), instance_type: Some(instance_type.into()), ..Default::default() };
            let v = TemplateVersion::from_data(&data, Some("initial".into()), s.now);
            s.insert_template(name, v)
        })
    }

    /// The group moves to a mixed instances policy on its template's current version with these
    /// overrides (template versions as given); its instances stay as they are.
    pub fn use_mixed_policy(&self, group: &str, overrides: Vec<Override>, distribution: Option<Distribution>) {
        self.with(|s| {
            let g = s.groups.get_mut(group).unwrap_or_else(|| panic!("no group {group}"));
            let Source::Template { id, version } = g.source.clone() else { panic!("{group} is not on a launch template") };
            let template = TemplateRef { id, name: String::new(), version };
            g.source = Source::Mixed(MixedPolicy { template, overrides, distribution, unsupported: vec![] });
        });
    }

    /// EnterStandby with ShouldDecrementDesiredCapacity: the instance leaves the capacity and its
    /// target groups, keeps running.
    pub fn enter_standby(&self, group: &str, id: &str) {
        self.with(|s| {
            let t = s.now;
            let tgs = s.groups[group].target_groups.clone();
            tgs.iter().for_each(|arn| {
                s.deregister_target(arn, id, t);
            });
            s.member_mut(group, id).lifecycle = Lifecycle::Standby;
            s.groups.get_mut(group).expect("checked").desired -= 1;
        });
    }

    /// ExitStandby: back in service (and registered), the desired capacity incremented.
    pub fn exit_standby(&self, group: &str, id: &str) {
        self.with(|s| {
            let t = s.now;
            let grace = s.groups[group].grace;
            let tgs = s.groups[group].target_groups.clone();
            tgs.iter().for_each(|arn| s.register_target(arn, id, t));
            let m = s.member_mut(group, id);
            (m.lifecycle, m.in_service_at, m.grace_until) = (Lifecycle::InService, Some(t), Some(t + grace));
            s.groups.get_mut(group).expect("checked").desired += 1;
        });
    }

    /// SetInstanceProtection.
    pub fn protect(&self, group: &str, id: &str, protected: bool) {
        self.with(|s| s.member_mut(group, id).protected = protected);
    }

    /// SuspendProcesses (`resume` = ResumeProcesses).
    pub fn suspend(&self, group: &str, process: &str, suspended: bool) {
        self.with(|s| {
            let g = s.groups.get_mut(group).unwrap_or_else(|| panic!("no group {group}"));
            if suspended {
                g.suspended.insert(process.to_string());
            } else {
                g.suspended.remove(process);
            }
        });
    }

    /// SetDesiredCapacity, as a scaling policy or a person would (refreshes follow it from the next tick).
    pub fn set_desired_capacity(&self, group: &str, desired: i32) {
        self.with(|s| s.groups.get_mut(group).unwrap_or_else(|| panic!("no group {group}")).desired = desired);
    }

    /// The next CreateLaunchTemplate stores the data without its KeyName (an API dropping a field), so a
    /// read-back comparison has something to find.
    pub fn drop_key_name_on_next_template(&self) {
        self.with(|s| s.faults.template_drops_key_name = true);
    }

    /// The group's template as the group stores it (a policy's for a mixed group).
    pub fn group_source(&self, group: &str) -> Option<Configuration> {
        self.with(|s| {
            let (t, p, _) = s.source_view(&s.groups.get(group)?.source);
            p.map(Configuration::Mixed).or(t.map(Configuration::Template))
        })
    }

    /// The launch configuration the group runs, if it runs one.
    pub fn group_launch_configuration(&self, group: &str) -> Option<String> {
        self.with(|s| match &s.groups.get(group)?.source {
            Source::Configuration(name) => Some(name.clone()),
            _ => None,
        })
    }

    /// A template's id by name.
    pub fn template_id(&self, name: &str) -> Option<String> {
        self.with(|s| s.find_template(name).map(|t| t.id))
    }

    /// A version's full launch data.
    pub fn template_data(&self, template_id: &str, version: i64) -> Option<TemplateData> {
        self.with(|s| s.templates.get(template_id)?.version_data(version))
    }
}

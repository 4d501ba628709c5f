//! `DryRunApi`: the domain traits for a dry run (EC2 here; Auto Scaling and ELBv2 in `groups.rs`). Reads go to the real cloud and are recorded;
//! writes are recorded with the resources they would touch, EC2 writes are checked with DryRun, and
//! each write answers with a placeholder so the engine can go on planning. Nothing is ever changed.

use std::future::Future;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{is_planned, planned_id, Change, Effect, Permission, DryRun};
use crate::cloud::actions::{self, Action, Scope};
use crate::cloud::{Cloud, CloudResult, DryRunOp, Ec2Api, ErrorKind};
use crate::core::model::*;

pub(crate) struct DryRunApi {
    pub real: Cloud,
    pub dry: DryRun,
}

/// Permissions scoped by a tag on the resource acted upon: a DryRun against a resource that does not
/// exist yet would be refused for lack of the tag, which says nothing about the real run.
fn tag_scoped(scope: Scope) -> bool {
    matches!(scope, Scope::BuildInstances | Scope::PipelineImages | Scope::PipelineSnapshots)
}

pub(super) fn effect(change: Change, resource: &'static str, id: impl Into<String>, detail: impl Into<String>) -> Effect {
    Effect { change, resource, id: id.into(), detail: detail.into() }
}

/// The resource type an EC2 id names, from its prefix.
fn kind_of(id: &str) -> &'static str {
    match id.split('-').next() {
        Some("i") => "instance",
        Some("ami") => "image",
        Some("snap") => "snapshot",
        Some("vol") => "volume",
        _ => "resource",
    }
}

/// Call arguments as a JSON object, leaving out empty values so plans stay readable.
pub(super) fn args(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        let empty = match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

pub(super) fn split_planned(ids: &[String]) -> (Vec<String>, Vec<String>) {
    ids.iter().cloned().partition(|id| is_planned(id))
}

impl DryRunApi {
    /// A read made for real, recorded with its outcome.
    pub(super) async fn read<T>(&self, action: &Action, args: Value, call: impl Future<Output = CloudResult<T>>) -> CloudResult<T> {
        let result = call.await;
        match &result {
            Ok(_) => self.dry.read(action.name, args),
            Err(e) => {
                let permission = if e.kind == ErrorKind::Denied { Permission::Denied } else { Permission::Unverified };
                self.dry.failed_read(action.name, args, permission, e.to_string());
            }
        }
        result
    }

    /// An EC2 write: its permission proved with DryRun where that can tell, then recorded.
    async fn ec2_write(&self, op: DryRunOp, args: Value, effects: Vec<Effect>, targets: &[String]) {
        let action = op.action();
        let (permission, why) = match targets.iter().find(|t| is_planned(t)) {
            Some(t) if tag_scoped(action.scope) => (
                Permission::Unverified,
                format!("acts on {t}, which this plan would create; the permission is scoped by a resource tag only a real resource has"),
            ),
            _ => match self.real.ec2.check_permission(&op).await {
                Ok(()) => (Permission::Allowed, "EC2 DryRun answered DryRunOperation".to_string()),
                Err(e) if e.kind == ErrorKind::Denied => {
                    self.dry.deny(&e);
                    (Permission::Denied, e.to_string())
                }
                Err(e) => (Permission::Unverified, format!("EC2 DryRun could not tell: {e}")),
            },
        };
        self.dry.write(action.name, args, effects, permission, why);
    }

    /// An Auto Scaling write: no DryRun exists, so its permission stays unverified.
    pub(super) fn asg_write(&self, action: &Action, args: Value, effects: Vec<Effect>) {
        self.dry.write(action.name, args, effects, Permission::Unverified, "Auto Scaling has no DryRun".into());
    }
}

#[async_trait]
impl Ec2Api for DryRunApi {
    async fn find_images(&self, f: &ImageFilter) -> CloudResult<Vec<Image>> {
        let (planned, real_ids) = split_planned(&f.ids);
        // Planned images are this account's; a query by owner, name and tags finds them as it would find
        // the real ones (matched exactly: wildcards are for base images, which are never planned).
        let by_filter = |i: &Image| {
            f.ids.is_empty()
                && (f.owners.is_empty() || f.owners.iter().any(|o| o == "self"))
                && f.name.as_ref().is_none_or(|n| *n == i.name)
                && f.tags.iter().all(|(k, v)| i.tags.get(k) == Some(v))
        };
        let mut out: Vec<Image> =
            self.dry.with_world(|w| w.images.iter().filter(|i| planned.contains(&i.id) || by_filter(i)).cloned().collect());
        if planned.is_empty() || !real_ids.is_empty() {
            let f = ImageFilter { ids: real_ids, ..f.clone() };
            let a = args(&[("ids", json!(f.ids)), ("owners", json!(f.owners)), ("name", json!(f.name)), ("tags", json!(f.tags))]);
            let real = self.read(&actions::DESCRIBE_IMAGES, a, self.real.ec2.find_images(&f)).await?;
            let gone = self.dry.with_world(|w| w.deregistered.clone());
            out.extend(real.into_iter().filter(|i| !gone.contains(&i.id)));
        }
        Ok(out)
    }

    async fn launch_instance(&self, spec: &LaunchSpec) -> CloudResult<Instance> {
        let id = self.dry.with_world(|w| planned_id("i", w.instances.len() + 1));
        let instance = Instance {
            id: id.clone(),
            state: InstanceState::Pending,
            image_id: spec.image_id.clone(),
            launch_time: None,
            tags: spec.tags.clone(),
        };
        self.dry.with_world(|w| w.instances.push(instance.clone()));
        let a = args(&[
            ("image_id", json!(spec.image_id)),
            ("instance_type", json!(spec.instance_type)),
            ("subnet_id", json!(spec.subnet_id)),
            ("security_group_ids", json!(spec.security_group_ids)),
            ("iam_instance_profile", json!(spec.iam_instance_profile)),
            ("user_data_bytes", json!(spec.user_data.as_ref().map(String::len))),
            ("tags", json!(spec.tags)),
        ]);
        let effects = vec![
            effect(Change::Create, "instance", &id, format!("{} from {}", spec.instance_type, spec.image_id)),
            effect(Change::Create, "volume", format!("root volume of {id}"), "tagged like the instance"),
        ];
        self.ec2_write(DryRunOp::RunInstances(spec.clone()), a, effects, &[]).await;
        Ok(instance)
    }

    async fn describe_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        let (planned, real_ids) = split_planned(ids);
        let mut out: Vec<Instance> =
            self.dry.with_world(|w| w.instances.iter().filter(|i| planned.contains(&i.id)).cloned().collect());
        if !real_ids.is_empty() {
            let a = args(&[("ids", json!(real_ids))]);
            out.extend(self.read(&actions::DESCRIBE_INSTANCES, a, self.real.ec2.describe_instances(&real_ids)).await?);
        }
        let terminated = self.dry.with_world(|w| w.terminated.clone());
        for i in out.iter_mut().filter(|i| terminated.contains(&i.id)) {
            i.state = InstanceState::ShuttingDown;
        }
        Ok(out)
    }

    async fn find_instances(&self, tags: &Tags) -> CloudResult<Vec<Instance>> {
        let a = args(&[("tags", json!(tags)), ("states", json!("not terminated"))]);
        let found = self.read(&actions::DESCRIBE_INSTANCES, a, self.real.ec2.find_instances(tags)).await?;
        let terminated = self.dry.with_world(|w| w.terminated.clone());
        Ok(found.into_iter().filter(|i| !terminated.contains(&i.id)).collect())
    }

    async fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>> {
        if is_planned(id) {
            return Ok(None);
        }
        self.read(&actions::DESCRIBE_INSTANCE_STATUS, args(&[("id", json!(id))]), self.real.ec2.instance_status_ok(id)).await
    }

    async fn console_output(&self, id: &str) -> CloudResult<String> {
        if is_planned(id) {
            return Ok(String::new());
        }
        self.read(&actions::GET_CONSOLE_OUTPUT, args(&[("id", json!(id))]), self.real.ec2.console_output(id)).await
    }

    async fn create_image(
        &self,
        instance_id: &str,
        name: &str,
        description: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> CloudResult<String> {
        let nth = self.dry.with_world(|w| w.images.len() + 1);
        let (ami, snap) = (planned_id("ami", nth), planned_id("snap", nth));
        let image = Image {
            id: ami.clone(),
            name: name.to_string(),
            state: ImageState::Available,
            creation_date: String::new(),
            tags: tags.clone(),
            snapshot_ids: vec![snap.clone()],
            state_reason: None,
            architecture: None,
            owner: None,
            encrypted: false,
            protection: Protection::Disabled,
        };
        self.dry.with_world(|w| w.images.push(image));
        let a = args(&[
            ("instance_id", json!(instance_id)),
            ("name", json!(name)),
            ("description", json!(description)),
            ("no_reboot", json!(no_reboot)),
            ("tags", json!(tags)),
        ]);
        let effects = vec![
            effect(Change::Create, "image", &ami, format!("{name} from {instance_id}")),
            effect(Change::Create, "snapshot", &snap, format!("of {ami}'s root volume (one per volume)")),
        ];
        let op = DryRunOp::CreateImage {
            instance_id: instance_id.into(),
            name: name.into(),
            description: description.into(),
            no_reboot,
            tags: tags.clone(),
        };
        self.ec2_write(op, a, effects, &[instance_id.to_string()]).await;
        Ok(ami)
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        if resource_ids.is_empty() || tags.is_empty() {
            return Ok(()); // the real adapter makes no call either
        }
        let a = args(&[("resource_ids", json!(resource_ids)), ("tags", json!(tags))]);
        let effects =
            resource_ids.iter().map(|id| effect(Change::Change, kind_of(id), id, format!("tagged {} tags", tags.len()))).collect();
        let op = DryRunOp::CreateTags { resource_ids: resource_ids.to_vec(), tags: tags.clone() };
        self.ec2_write(op, a, effects, resource_ids).await;
        Ok(())
    }

    async fn delete_tags(&self, resource_ids: &[String], keys: &[String]) -> CloudResult<()> {
        if resource_ids.is_empty() || keys.is_empty() {
            return Ok(()); // the real adapter makes no call either
        }
        let a = args(&[("resource_ids", json!(resource_ids)), ("keys", json!(keys))]);
        let effects = resource_ids.iter().map(|id| effect(Change::Change, kind_of(id), id, format!("untagged {}", keys.join(", ")))).collect();
        let op = DryRunOp::DeleteTags { resource_ids: resource_ids.to_vec(), keys: keys.to_vec() };
        self.ec2_write(op, a, effects, resource_ids).await;
        Ok(())
    }

    async fn enable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Change, "image", image_id, "deregistration protection on (without cooldown)")];
        let op = DryRunOp::EnableImageDeregistrationProtection { image_id: image_id.into() };
        self.ec2_write(op, args(&[("image_id", json!(image_id)), ("with_cooldown", json!(false))]), effects, &[image_id.to_string()]).await;
        Ok(())
    }

    async fn disable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Change, "image", image_id, "deregistration protection off")];
        let op = DryRunOp::DisableImageDeregistrationProtection { image_id: image_id.into() };
        self.ec2_write(op, args(&[("image_id", json!(image_id))]), effects, &[image_id.to_string()]).await;
        Ok(())
    }

    async fn terminate_instances(&self, ids: &[String]) -> CloudResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let effects = ids.iter().map(|id| effect(Change::Delete, "instance", id, "terminated")).collect();
        let op = DryRunOp::TerminateInstances { ids: ids.to_vec() };
        self.ec2_write(op, args(&[("ids", json!(ids))]), effects, ids).await;
        self.dry.with_world(|w| w.terminated.extend(ids.iter().cloned()));
        Ok(())
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Delete, "image", image_id, "deregistered")];
        let op = DryRunOp::DeregisterImage { image_id: image_id.into() };
        self.ec2_write(op, args(&[("image_id", json!(image_id))]), effects, &[image_id.to_string()]).await;
        self.dry.with_world(|w| w.deregistered.push(image_id.to_string()));
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Delete, "snapshot", snapshot_id, "deleted")];
        let op = DryRunOp::DeleteSnapshot { snapshot_id: snapshot_id.into() };
        self.ec2_write(op, args(&[("snapshot_id", json!(snapshot_id))]), effects, &[snapshot_id.to_string()]).await;
        self.dry.with_world(|w| w.deleted_snapshots.push(snapshot_id.to_string()));
        Ok(())
    }

    async fn find_snapshots(&self, tags: &Tags) -> CloudResult<Vec<Snapshot>> {
        let a = args(&[("owner", json!("self")), ("tags", json!(tags))]);
        let found = self.read(&actions::DESCRIBE_SNAPSHOTS, a, self.real.ec2.find_snapshots(tags)).await?;
        let deleted = self.dry.with_world(|w| w.deleted_snapshots.clone());
        Ok(found.into_iter().filter(|s| !deleted.contains(&s.id)).collect())
    }

    async fn launch_template_versions(&self, template_id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>> {
        let mine: Vec<LtVersion> =
            self.dry.with_world(|w| w.versions.iter().filter(|v| v.template_id == template_id).cloned().collect());
        let mut out = Vec::new();
        let mut ask = Vec::new();
        for v in versions {
            let found = match v.as_str() {
                "$Latest" => mine.last(),
                n => mine.iter().find(|m| m.number.to_string() == n),
            };
            match found {
                Some(m) => out.push(m.clone()),
                None => ask.push(v.clone()),
            }
        }
        if versions.is_empty() || !ask.is_empty() {
            let a = args(&[("template_id", json!(template_id)), ("versions", json!(ask))]);
            let real = self.read(&actions::DESCRIBE_LT_VERSIONS, a, self.real.ec2.launch_template_versions(template_id, &ask)).await?;
            self.dry.with_world(|w| {
                for v in &real {
                    let newer = w.latest_seen.get(template_id).is_none_or(|seen| v.number > seen.number);
                    if newer {
                        w.latest_seen.insert(template_id.to_string(), v.clone());
                    }
                }
            });
            out.extend(real);
            if versions.is_empty() {
                out.extend(mine);
            }
        }
        Ok(out)
    }

    async fn create_launch_template_version(
        &self,
        template_id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion> {
        // The engine has read `$Latest` just before (to reuse an earlier attempt's version); ask only if not.
        let seen = self.dry.with_world(|w| w.versions.iter().rev().find(|v| v.template_id == template_id).cloned());
        let seen = seen.or_else(|| self.dry.with_world(|w| w.latest_seen.get(template_id).cloned()));
        let latest = match seen {
            Some(v) => Some(v),
            None => self.launch_template_versions(template_id, &["$Latest".to_string()]).await?.into_iter().next(),
        };
        let latest = latest.as_ref();
        let version = LtVersion {
            template_id: template_id.to_string(),
            template_name: latest.map(|v| v.template_name.clone()).unwrap_or_default(),
            number: latest.map_or(1, |v| v.number + 1),
            image_id: Some(image_id.to_string()),
            description: Some(description.to_string()),
            is_default: false,
            created: None,
        };
        self.dry.with_world(|w| w.versions.push(version.clone()));
        let a = args(&[
            ("template_id", json!(template_id)),
            ("source_version", json!(source_version)),
            ("image_id", json!(image_id)),
            ("description", json!(description)),
        ]);
        let id = format!("{template_id} version {}", version.number);
        let effects = vec![effect(Change::Create, "launch-template-version", id, format!("copy of version {source_version} with image {image_id}"))];
        let op = DryRunOp::CreateLaunchTemplateVersion {
            template_id: template_id.into(),
            source_version,
            image_id: image_id.into(),
            description: description.into(),
        };
        self.ec2_write(op, a, effects, &[]).await;
        Ok(version)
    }

    async fn set_default_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        let a = args(&[("template_id", json!(template_id)), ("default_version", json!(version))]);
        let effects = vec![effect(Change::Change, "launch-template", template_id, format!("default version becomes {version}"))];
        let op = DryRunOp::ModifyLaunchTemplate { template_id: template_id.into(), default_version: version };
        self.ec2_write(op, a, effects, &[]).await;
        Ok(())
    }

    async fn launch_template_data(&self, template_id: &str, version: i64) -> CloudResult<Option<TemplateData>> {
        let planned = self.dry.with_world(|w| w.templates.iter().find(|(t, _)| t.id == template_id).map(|(_, d)| d.clone()));
        if let Some(data) = planned {
            return Ok((version == 1).then_some(data));
        }
        let a = args(&[("template_id", json!(template_id)), ("versions", json!([version]))]);
        self.read(&actions::DESCRIBE_LT_VERSIONS, a, self.real.ec2.launch_template_data(template_id, version)).await
    }

    async fn find_launch_template(&self, name: &str) -> CloudResult<Option<TemplateInfo>> {
        let planned = self.dry.with_world(|w| w.templates.iter().find(|(t, _)| t.name == name).map(|(t, _)| t.clone()));
        if planned.is_some() {
            return Ok(planned);
        }
        self.read(&actions::DESCRIBE_LTS, args(&[("name", json!(name))]), self.real.ec2.find_launch_template(name)).await
    }

    async fn create_launch_template(&self, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion> {
        let id = self.dry.with_world(|w| planned_id("lt", w.templates.len() + 1));
        let info = TemplateInfo { id: id.clone(), name: name.to_string(), default_version: Some(1), latest_version: Some(1) };
        self.dry.with_world(|w| w.templates.push((info, data.clone())));
        let a = args(&[
            ("name", json!(name)),
            ("description", json!(description)),
            ("launch_template_data", serde_json::to_value(data).unwrap_or_default()),
        ]);
        let detail = format!("version 1 launches {} like the launch configuration", data.image_id.as_deref().unwrap_or("?"));
        let effects = vec![effect(Change::Create, "launch-template", &id, detail)];
        let op = DryRunOp::CreateLaunchTemplate { name: name.into(), data: data.clone(), description: description.into() };
        self.ec2_write(op, a, effects, &[]).await;
        Ok(LtVersion {
            template_id: id,
            template_name: name.to_string(),
            number: 1,
            image_id: data.image_id.clone(),
            description: Some(description.to_string()),
            is_default: true,
            created: None,
        })
    }

    async fn delete_launch_template_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        let a = args(&[("template_id", json!(template_id)), ("version", json!(version))]);
        let id = format!("{template_id} version {version}");
        let effects = vec![effect(Change::Delete, "launch-template-version", id, "deleted (created by this run, never rolled out)")];
        let op = DryRunOp::DeleteLaunchTemplateVersion { template_id: template_id.into(), version };
        self.ec2_write(op, a, effects, &[]).await;
        self.dry.with_world(|w| w.versions.retain(|v| !(v.template_id == template_id && v.number == version)));
        Ok(())
    }

    async fn check_permission(&self, op: &DryRunOp) -> CloudResult<()> {
        self.real.ec2.check_permission(op).await
    }
}

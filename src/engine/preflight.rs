//! Deploy preconditions, checked for every group of the environment before anything changes — and by
//! `ship` before it bakes, so a deploy that cannot start never costs a bake. A failed check is exit 2
//! naming the group and the fix; the world is untouched.
//!
//! A refresh already in flight blocks a deploy (AWS allows one per group), with one exception: a
//! refresh of *this* release, started by an earlier run of bakeroll whose answer or process was lost
//! (its desired version carries our release mark). The deploy then attaches to it instead of failing —
//! also when that refresh is already rolling back (the earlier run was killed during its rollback): the
//! deploy then watches the rollback to a verified fleet and reports it rolled back.

use std::collections::BTreeMap;

use super::watch;
use super::Ctx;
use crate::config::{Environment, HealthSource};
use crate::core::health::{fleet_problems, HealthByGroup};
use crate::core::model::{Group, LtVersion, Refresh, RefreshStatus, TemplateRef};
use crate::core::releases::parse_mark;
use crate::error::{Error, Result};
use crate::events::Stage;

const UNCHANGED: &str = "nothing was changed";

/// What identifies the release being deployed in a launch-template version's release mark. `ship`
/// checks before baking, when only the commit is known.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseKey<'a> {
    pub ami: Option<&'a str>,
    pub commit: Option<&'a str>,
}

impl ReleaseKey<'_> {
    fn marks(&self, version: &LtVersion) -> bool {
        let Some(mark) = version.description.as_deref().and_then(parse_mark) else { return false };
        match (self.ami, self.commit) {
            (Some(ami), _) => mark.ami.as_deref() == Some(ami) && version.image_id.as_deref() == Some(ami),
            (None, Some(commit)) => mark.commit.as_deref() == Some(commit),
            (None, None) => false,
        }
    }
}

/// What preflight learnt about one group.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub group: Group,
    pub template: TemplateRef,
    /// The numbered version the group runs (`$Latest`/`$Default` resolved).
    pub current: i64,
    pub current_image: String,
    /// Instance id → image, and target health, as preflight saw them.
    pub images: BTreeMap<String, String>,
    pub health: HealthByGroup,
    /// A refresh of this release already in flight (an earlier run's), to watch instead of starting one.
    pub attach: Option<Refresh>,
    /// The template's default version.
    pub default_version: Option<i64>,
}

impl Prepared {
    /// The group's configuration already launches `image`.
    pub fn configured_for(&self, image: &str) -> bool {
        self.current_image == image
    }

    /// Every member runs `image` (healthy or not yet).
    pub fn members_on(&self, image: &str) -> bool {
        self.group.instances.iter().filter(|i| i.is_member()).all(|i| self.images.get(&i.id).map(String::as_str) == Some(image))
    }

    /// Every member in service on `image` and healthy in every target group.
    pub fn verified_on(&self, image: &str) -> bool {
        fleet_problems(&self.group, &self.images, &self.health, Some(image)).is_empty()
    }
}

/// Checks one group: it exists, runs a plain launch template, has a target group (or the environment
/// says `health = "ec2"`), no refresh but ours is in flight, and (unless `force`) its fleet is healthy.
pub async fn check(ctx: &Ctx, env: &Environment, name: &str, release: ReleaseKey<'_>, force: bool) -> Result<Prepared> {
    let asg = &ctx.cloud.autoscaling;
    ctx.events.phase(name, Stage::Preflight, format!("checking Auto Scaling group {name}"));
    let group = asg.describe_group(name).await.map_err(|e| Error::cloud(e, UNCHANGED))?.ok_or_else(|| {
        Error::precondition(format!("Auto Scaling group {name} not found{}", ctx.pipeline.region_hint()))
    })?;
    let template = match (&group.launch_template, group.mixed_instances_policy) {
        (Some(t), false) => t.clone(),
        (_, true) => return Err(Error::precondition(format!("group {name} uses a mixed-instances policy; bakeroll deploys groups with a plain launch template"))),
        (None, _) => return Err(Error::precondition(format!("group {name} has no launch template (launch configurations are not supported)"))),
    };
    if group.target_group_arns.is_empty() && env.health != HealthSource::Ec2 {
        return Err(Error::precondition(format!(
            "group {name} is in no target group, so nothing can tell a broken release from a good one; attach its target groups, \
             or set `health = \"ec2\"` in the environment to accept the group's own (EC2) health checks"
        )));
    }
    let ec2 = &ctx.cloud.ec2;
    let wanted = [template.version.clone(), "$Default".to_string()];
    let mut versions = ec2.launch_template_versions(&template.id, &wanted).await.map_err(|e| Error::cloud(e, UNCHANGED))?;
    let current = resolve(&versions, &template.version).cloned().ok_or_else(|| {
        Error::precondition(format!("launch template {} has no version {} (used by group {name})", template.id, template.version))
    })?;
    let current_image = current.image_id.clone().ok_or_else(|| {
        Error::precondition(format!("launch template {} version {} sets no image id", template.id, current.number))
    })?;
    let refreshes = asg.describe_instance_refreshes(name, &[]).await.map_err(|e| Error::cloud(e, UNCHANGED))?;
    let attach = match refreshes.iter().find(|r| r.status.is_active()) {
        None => None,
        Some(r) => {
            let desired = r.desired_version.as_deref().and_then(|v| v.parse::<i64>().ok());
            if let Some(n) = desired.filter(|n| !versions.iter().any(|v| v.number == *n)) {
                versions.extend(ec2.launch_template_versions(&template.id, &[n.to_string()]).await.map_err(|e| Error::cloud(e, UNCHANGED))?);
            }
            let ours = desired.and_then(|n| versions.iter().find(|v| v.number == n)).is_some_and(|v| release.marks(v));
            let attachable = matches!(
                r.status,
                RefreshStatus::Pending | RefreshStatus::InProgress | RefreshStatus::Baking | RefreshStatus::RollbackInProgress
            );
            if !ours || !attachable {
                return Err(in_flight(name, r, desired.and_then(|n| versions.iter().find(|v| v.number == n))));
            }
            let doing = if r.status == RefreshStatus::RollbackInProgress { "rolling back" } else { "in flight" };
            ctx.events.info(name, format!("instance refresh {} of this release is already {doing} (an earlier run's): watching it", r.id));
            Some(r.clone())
        }
    };
    let (images, health) = watch::fleet(ctx, &group).await.map_err(|e| Error::cloud(e, UNCHANGED))?;
    let unhealthy = fleet_problems(&group, &images, &health, None);
    if !unhealthy.is_empty() && !force && attach.is_none() {
        return Err(Error::precondition(format!(
            "group {name} is not healthy before the deploy ({}); fix it or pass --force",
            unhealthy.join("; ")
        )));
    }
    let default_version = versions.iter().find(|v| v.is_default).map(|v| v.number);
    Ok(Prepared { current: current.number, current_image, group, template, images, health, attach, default_version })
}

/// The version a group's `Version` names among those read for it: a number, `$Latest` (read as such:
/// the newest) or `$Default`.
fn resolve<'a>(versions: &'a [LtVersion], wanted: &str) -> Option<&'a LtVersion> {
    match wanted {
        "$Latest" => versions.iter().max_by_key(|v| v.number),
        "$Default" => versions.iter().find(|v| v.is_default),
        n => versions.iter().find(|v| v.number.to_string() == n),
    }
}

/// Another deploy (or a person) holds the group: say who, from what AWS and the release mark tell.
fn in_flight(name: &str, r: &Refresh, desired: Option<&LtVersion>) -> Error {
    let mark = desired.and_then(|v| v.description.as_deref()).and_then(parse_mark);
    let what = match (&mark, desired) {
        (Some(m), Some(v)) => format!(
            "deploying {} (commit {}, launch-template version {}{})",
            m.ami.as_deref().unwrap_or("?"),
            m.commit.as_deref().unwrap_or("?"),
            v.number,
            m.job.as_deref().map(|j| format!(", CI job {j}")).unwrap_or_default()
        ),
        (None, Some(v)) => format!("to launch-template version {} (not started by bakeroll)", v.number),
        _ => "(no desired configuration: not started by bakeroll)".to_string(),
    };
    let since = r.start_time.map(|t| format!(", started {}", humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64)))).unwrap_or_default();
    Error::precondition(format!(
        "group {name} has instance refresh {} in status {} {what}{since}; wait for it to finish (or cancel it) first",
        r.id,
        r.status.as_str()
    ))
}

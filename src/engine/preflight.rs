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

use super::fleet;
use super::Ctx;
use crate::core::settings::{EnvSettings, GroupSettings, HealthSource};
use crate::core::health::{fleet_problems, HealthByGroup};
use crate::core::model::{Configuration, Group, GroupInstance, LtVersion, MixedPolicy, Refresh, RefreshStatus, TemplateRef};
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

/// An override's own launch template (a mixed instances policy), as preflight found it.
#[derive(Debug, Clone)]
pub struct OverrideTemplate {
    pub template: TemplateRef,
    /// The numbered version the policy names (`$Latest`/`$Default` resolved).
    pub current: i64,
    pub image: Option<String>,
}

/// What preflight learnt about one group.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The name the release knows the group by (`group@region` over several regions).
    pub scope: String,
    pub group: Group,
    /// The group's launch template (its mixed instances policy's, for a mixed group).
    pub template: TemplateRef,
    /// The group's mixed instances policy, if it has one.
    pub policy: Option<MixedPolicy>,
    /// Launch templates of the policy's overrides other than its own.
    pub overrides: Vec<OverrideTemplate>,
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
    /// The version the current one was deployed from, as its release mark says (`from=`).
    pub marked_from: Option<i64>,
    /// The commit of the release the group runs, as its version's release mark says.
    pub current_commit: Option<String>,
}

impl Prepared {
    /// The group's configuration already launches `image`.
    pub fn configured_for(&self, image: &str) -> bool {
        self.current_image == image
    }

    /// Every member (and warm-pool instance) runs `image` (healthy or not yet).
    pub fn members_on(&self, image: &str) -> bool {
        let pool = self.group.warm_pool.as_ref().and_then(|w| w.instances.as_deref()).unwrap_or_default();
        let on = |i: &GroupInstance| self.images.get(&i.id).map(String::as_str) == Some(image);
        self.group.instances.iter().filter(|i| i.is_member()).all(on) && pool.iter().all(on)
    }

    /// Whether a change needs `$Latest`/`$Default` pinned first (AWS rolls back only to numbers).
    pub fn needs_pin(&self) -> bool {
        self.template.numbered_version().is_none() || self.overrides.iter().any(|o| o.template.numbered_version().is_none())
    }

    /// The group's configuration with every version numbered: what it runs now.
    pub fn current_configuration(&self) -> Configuration {
        self.configuration(self.current, &self.overrides.iter().map(|o| (o.template.id.clone(), o.current)).collect())
    }

    /// The group's configuration launching `version` of its template and `overrides` of the others.
    pub fn configuration(&self, version: i64, overrides: &BTreeMap<String, i64>) -> Configuration {
        match &self.policy {
            Some(p) => Configuration::Mixed(p.with_versions(version, overrides)),
            None => Configuration::Template(TemplateRef { version: version.to_string(), ..self.template.clone() }),
        }
    }

    /// Every member in service on `image` and healthy in every target group.
    pub fn verified_on(&self, image: &str) -> bool {
        fleet_problems(&self.group, &self.images, &self.health, Some(image)).is_empty()
    }
}

/// Every precondition of a deploy of `release` to every group of every wave of `env`, checked once and
/// before anything changes (`ship` runs it before it bakes): the alarms, then each group.
pub async fn check_all(ctx: &Ctx, env: &EnvSettings, release: ReleaseKey<'_>, force: bool) -> Result<Vec<Prepared>> {
    // The release's shape is said first, so that every line about a group can name its wave.
    ctx.events.release(&env.name, env.waves.clone());
    // Alarms are regional: each region's groups name the alarms of their own region.
    for region in env.placement.rollout_regions() {
        check_alarms(&ctx.place(region.as_deref()), &env.alarms).await.map_err(|e| e.in_region(region.as_deref()))?;
    }
    let mut prepared = Vec::new();
    for scope in env.group_names() {
        let settings = env.group(&scope);
        let place = settings.region.as_deref();
        let mut p = check(&ctx.place(place), &settings, &settings.name, release, force).await.map_err(|e| e.in_region(place))?;
        p.scope = scope;
        prepared.push(p);
    }
    Ok(prepared)
}

/// Checks one group: it exists, runs a plain launch template, has a target group (or the environment
/// says `health = "ec2"`), no refresh but ours is in flight, and (unless `force`) its fleet is healthy.
pub async fn check(ctx: &Ctx, settings: &GroupSettings, name: &str, release: ReleaseKey<'_>, force: bool) -> Result<Prepared> {
    let asg = &ctx.cloud.autoscaling;
    ctx.events.phase(name, Stage::Preflight, format!("checking Auto Scaling group {name}"));
    // Where bakeroll looked: a group of another region of the environment is not in the file's `region`.
    let hint = || match &settings.region {
        Some(r) => format!(" in region {r} (listed in the environment's `regions`)"),
        None => ctx.pipeline.region_hint(),
    };
    let group = fleet::describe_group(ctx, name)
        .await
        .map_err(|e| Error::cloud(e, UNCHANGED))?
        .ok_or_else(|| Error::precondition(format!("Auto Scaling group {name} not found{}", hint())))?;
    let template = deployable_template(name, &group)?;
    check_processes(ctx, name, &group, force)?;
    note_left_alone(ctx, settings, &group);
    if group.target_group_arns.is_empty() && settings.health != HealthSource::Ec2 {
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
    let (images, health) = fleet::fleet(ctx, &group).await.map_err(|e| Error::cloud(e, UNCHANGED))?;
    let unhealthy = fleet_problems(&group, &images, &health, None);
    if !unhealthy.is_empty() && !force && attach.is_none() {
        return Err(Error::precondition(format!(
            "group {name} is not healthy before the deploy ({}); fix it or pass --force",
            unhealthy.join("; ")
        )));
    }
    let default_version = versions.iter().find(|v| v.is_default).map(|v| v.number);
    let policy = group.mixed_instances.clone();
    let overrides = override_templates(ctx, name, policy.as_ref()).await?;
    let mark = current.description.as_deref().and_then(parse_mark);
    let marked_from = mark.as_ref().and_then(|m| m.from);
    let current_commit = mark.and_then(|m| m.commit);
    Ok(Prepared { scope: name.to_string(), current: current.number, current_image, group, template, policy, overrides, images, health, attach, default_version, marked_from, current_commit })
}

/// The template a deploy makes a new version of: the group's, or its mixed instances policy's (whose
/// parts bakeroll cannot pass on unchanged are refused). A launch configuration points at `adopt`.
pub fn deployable_template(name: &str, group: &Group) -> Result<TemplateRef> {
    if let Some(p) = group.mixed_instances.as_ref().filter(|p| !p.unsupported.is_empty()) {
        return Err(Error::precondition(format!(
            "group {name}'s mixed instances policy has what bakeroll cannot pass on unchanged to an instance refresh: {}",
            p.unsupported.join("; ")
        )));
    }
    group.template().cloned().ok_or_else(|| not_a_template(name, group))
}

/// Suspended processes stall or blind an instance refresh: Launch, Terminate or InstanceRefresh
/// suspended and it replaces nothing ("pauses the operation without canceling it"); HealthCheck,
/// ReplaceUnhealthy or AddToLoadBalancer suspended and a bad release is never noticed or never
/// served. bakeroll never suspends them itself; one found suspended is refused unless `--force`.
fn check_processes(ctx: &Ctx, name: &str, group: &Group, force: bool) -> Result<()> {
    if group.suspended_processes.is_empty() {
        return Ok(());
    }
    let which = group.suspended_processes.join(", ");
    if force {
        ctx.events.warn(name, format!("processes suspended on {name}: {which}; deploying anyway (--force): an instance refresh stalls while Launch, Terminate or InstanceRefresh is suspended"));
        return Ok(());
    }
    Err(Error::precondition(format!(
        "group {name} has suspended processes ({which}); an instance refresh replaces nothing while Launch, Terminate or InstanceRefresh is \
         suspended and cannot see or serve a bad release without HealthCheck, ReplaceUnhealthy or AddToLoadBalancer. Resume them \
         (`aws autoscaling resume-processes --auto-scaling-group-name {name}`) or pass --force"
    )))
}

/// Says before the deploy what the refresh will do with Standby and protected instances.
fn note_left_alone(ctx: &Ctx, settings: &GroupSettings, group: &Group) {
    let prefs = &settings.prefs;
    let ids = |f: &dyn Fn(&GroupInstance) -> bool| group.instances.iter().filter(|i| f(i)).map(|i| i.id.clone()).collect::<Vec<_>>();
    let standby = ids(&|i| i.in_standby());
    let protected = ids(&|i| i.is_member() && i.protected_from_scale_in);
    let setting = |v: Option<&str>| v.map_or("unset (AWS's default: Wait)".to_string(), |v| format!("\"{v}\""));
    if !standby.is_empty() {
        let s = setting(prefs.standby_instances.map(|s| s.as_str()));
        ctx.events.info(&group.name, format!("in Standby: {}; standby_instances is {s}", standby.join(", ")));
    }
    if !protected.is_empty() {
        let s = setting(prefs.scale_in_protected_instances.map(|s| s.as_str()));
        ctx.events.info(&group.name, format!("protected from scale in: {}; scale_in_protected_instances is {s}", protected.join(", ")));
    }
}

/// The current version and image of every override's own template.
async fn override_templates(ctx: &Ctx, name: &str, policy: Option<&MixedPolicy>) -> Result<Vec<OverrideTemplate>> {
    let mut out = Vec::new();
    for t in policy.map(|p| p.override_templates()).unwrap_or_default() {
        let wanted = [t.version.clone()];
        let versions = ctx.cloud.ec2.launch_template_versions(&t.id, &wanted).await.map_err(|e| Error::cloud(e, UNCHANGED))?;
        let v = resolve(&versions, &t.version).ok_or_else(|| {
            Error::precondition(format!("launch template {} has no version {} (an override of group {name})", t.id, t.version))
        })?;
        out.push(OverrideTemplate { template: t.clone(), current: v.number, image: v.image_id.clone() });
    }
    Ok(out)
}

/// A group without a launch template: bakeroll cannot make it a new version. For one on a launch
/// configuration, `bakeroll adopt` is the way (no instance is replaced).
pub fn not_a_template(name: &str, group: &Group) -> Error {
    match &group.launch_configuration {
        Some(lc) => Error::precondition(format!(
            "group {name} runs launch configuration {lc}, which bakeroll cannot deploy; move it to a launch template first with \
             `bakeroll adopt` (no instance is replaced)"
        )),
        None => Error::precondition(format!("group {name} has no launch template")),
    }
}

/// Every alarm of the environment must exist and be `OK`: AWS refuses to start a refresh whose
/// AlarmSpecification names an alarm in `ALARM` or `INSUFFICIENT_DATA` (Auto Scaling user guide, auto
/// rollback), and a missing one would stop nothing.
pub async fn check_alarms(ctx: &Ctx, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let found = ctx.cloud.cloudwatch.describe_alarms(names).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let missing: Vec<&str> = names.iter().filter(|n| !found.iter().any(|a| &a.name == *n)).map(String::as_str).collect();
    if !missing.is_empty() {
        let s = if missing.len() == 1 { "" } else { "s" };
        return Err(Error::precondition(format!(
            "CloudWatch alarm{s} {} (in `alarms`) not found; create it or remove it from the pipeline file",
            missing.join(", ")
        )));
    }
    if let Some(a) = found.iter().find(|a| a.state != "OK") {
        return Err(Error::precondition(format!(
            "CloudWatch alarm {} is in {}{}; AWS starts no instance refresh until its alarms are OK",
            a.name,
            a.state,
            a.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )));
    }
    Ok(())
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

//! Deploy: put every Auto Scaling group of an environment on a release. Preflight checks all groups
//! before anything changes; then per group: pin `$Latest`/`$Default`, create a launch-template version
//! from the current one changing only the image, start a refresh with AutoRollback, and watch it. A
//! failed group is rolled back, and groups already moved in this run are moved back too.

use serde::Serialize;
use tokio::time::Instant;

use super::images;
use super::watch::{self, WatchTarget};
use super::Ctx;
use crate::events::Stage;
use crate::cloud::CloudError;
use crate::config::Environment;
use crate::core::health::{fleet_problems, GateParams};
use crate::core::model::{Group, ImageState, RefreshPrefs, RefreshRequest, TemplateRef};
use crate::core::releases::{format_mark, Mark, RELEASE_MARK};
use crate::core::rollout::{Outcome, PhaseName, Release, RollbackReason, Rollout, RolloutParams};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub env: String,
    pub image_id: String,
    pub commit: Option<String>,
    /// Deploy even onto a fleet that is already unhealthy.
    pub force: bool,
    /// Use this existing launch-template version instead of creating one (rollback to an earlier
    /// release). Its image must be `image_id`.
    pub existing_version: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub template_id: String,
    pub old_version: i64,
    pub new_version: Option<i64>,
    pub old_image: String,
    pub new_image: String,
    /// `$Latest`/`$Default` the group was pinned from, if it had to be.
    pub pinned_from: Option<String>,
    pub refresh_ids: Vec<String>,
    pub outcome: Option<Outcome>,
    /// True when the group already ran this release and nothing was done.
    pub already_deployed: bool,
    pub timeline: Vec<(f64, PhaseName)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployReport {
    pub env: String,
    pub ami: String,
    pub commit: Option<String>,
    pub groups: Vec<GroupReport>,
}

/// What preflight learnt about one group.
struct Prepared {
    group: Group,
    template: TemplateRef,
    current: i64,
    current_image: String,
    on_release: bool,
}

pub fn rollout_params(env: &Environment) -> RolloutParams {
    RolloutParams {
        poll: env.poll_interval.0,
        timeout: env.timeout.0,
        verify_timeout: env.verify_timeout(),
        gate: GateParams { unhealthy_threshold: env.unhealthy_threshold, grace: env.health_grace.0 },
    }
}

/// Preferences for a refresh that goes back: no checkpoints or bake time (speed matters), AutoRollback
/// off (there is nothing further back to go), SkipMatching so only instances on the bad image move, and
/// no alarms (an alarm still in ALARM because of the bad release would refuse or stop the refresh that
/// cures it).
pub fn rollback_prefs(env: &Environment) -> RefreshPrefs {
    RefreshPrefs {
        checkpoints: vec![],
        checkpoint_delay: None,
        bake_time: None,
        auto_rollback: false,
        skip_matching: true,
        alarms: vec![],
        ..env.refresh_prefs()
    }
}

pub async fn deploy(ctx: &Ctx, env: &Environment, req: &DeployRequest) -> (DeployReport, Result<()>) {
    let mut report = DeployReport { env: req.env.clone(), ami: req.image_id.clone(), commit: req.commit.clone(), groups: vec![] };
    let result = run(ctx, env, req, &mut report).await;
    (report, result)
}

async fn run(ctx: &Ctx, env: &Environment, req: &DeployRequest, report: &mut DeployReport) -> Result<()> {
    check_image(ctx, &req.image_id).await?;
    check_alarms(ctx, &env.alarms).await?;
    let mut prepared = Vec::new();
    for name in &env.auto_scaling_groups {
        prepared.push(preflight(ctx, name, &req.image_id, req.force).await?);
    }
    for p in prepared {
        let r = deploy_group(ctx, env, req, p).await?;
        let failed = !matches!(r.outcome, None | Some(Outcome::Deployed));
        report.groups.push(r);
        if failed {
            undo_earlier(ctx, env, report).await;
            return Err(failure_error(req, report));
        }
    }
    Ok(())
}

async fn check_image(ctx: &Ctx, ami: &str) -> Result<()> {
    match images::by_id(ctx, ami).await.map_err(|e| Error::cloud(e, "nothing was changed"))? {
        Some(i) if i.state == ImageState::Available => Ok(()),
        Some(i) => Err(Error::precondition(format!("AMI {ami} is {:?}, not available", i.state))),
        None => Err(Error::precondition(format!("AMI {ami} not found"))),
    }
}

/// Every alarm of the environment must exist and be `OK`: AWS refuses to start a refresh whose
/// AlarmSpecification names an alarm in `ALARM` or `INSUFFICIENT_DATA` (Auto Scaling user guide, auto
/// rollback), and a missing one would stop nothing.
async fn check_alarms(ctx: &Ctx, names: &[String]) -> Result<()> {
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

async fn preflight(ctx: &Ctx, name: &str, image: &str, force: bool) -> Result<Prepared> {
    let unchanged = "nothing was changed";
    let asg = &ctx.cloud.autoscaling;
    ctx.events.phase(name, Stage::Preflight, format!("checking Auto Scaling group {name}"));
    let group = asg.describe_group(name).await.map_err(|e| Error::cloud(e, unchanged))?.ok_or_else(|| {
        Error::precondition(format!("Auto Scaling group {name} not found"))
    })?;
    let template = match (&group.launch_template, group.mixed_instances_policy) {
        (Some(t), false) => t.clone(),
        (_, true) => return Err(Error::precondition(format!("group {name} uses a mixed-instances policy; bakeroll deploys groups with a plain launch template"))),
        (None, _) => return Err(Error::precondition(format!("group {name} has no launch template (launch configurations are not supported)"))),
    };
    let refreshes = asg.describe_instance_refreshes(name, &[]).await.map_err(|e| Error::cloud(e, unchanged))?;
    if let Some(r) = refreshes.iter().find(|r| r.status.is_active()) {
        return Err(Error::precondition(format!(
            "group {name} has instance refresh {} in status {}; wait for it to finish (or cancel it) first",
            r.id,
            r.status.as_str()
        )));
    }
    let versions = ctx
        .cloud
        .ec2
        .launch_template_versions(&template.id, std::slice::from_ref(&template.version))
        .await
        .map_err(|e| Error::cloud(e, unchanged))?;
    let current = versions.first().ok_or_else(|| {
        Error::precondition(format!("launch template {} has no version {} (used by group {name})", template.id, template.version))
    })?;
    let current_image = current.image_id.clone().ok_or_else(|| {
        Error::precondition(format!("launch template {} version {} sets no image id", template.id, current.number))
    })?;
    let (images, health) = watch::fleet(ctx, &group).await.map_err(|e| Error::cloud(e, unchanged))?;
    let unhealthy = fleet_problems(&group, &images, &health, None);
    if !unhealthy.is_empty() && !force {
        return Err(Error::precondition(format!(
            "group {name} is not healthy before the deploy ({}); fix it or pass --force",
            unhealthy.join("; ")
        )));
    }
    let on_release = current_image == image && fleet_problems(&group, &images, &health, Some(image)).is_empty();
    Ok(Prepared { current: current.number, current_image, group, template, on_release })
}

async fn deploy_group(ctx: &Ctx, env: &Environment, req: &DeployRequest, p: Prepared) -> Result<GroupReport> {
    let started = Instant::now();
    let name = p.group.name.clone();
    let mut report = GroupReport {
        group: name.clone(),
        template_id: p.template.id.clone(),
        old_version: p.current,
        new_version: None,
        old_image: p.current_image.clone(),
        new_image: req.image_id.clone(),
        pinned_from: None,
        refresh_ids: vec![],
        outcome: None,
        already_deployed: p.on_release,
        timeline: vec![],
        seconds: 0.0,
    };
    if p.on_release {
        ctx.events.info(&name, format!("already on {} (launch-template version {}); nothing to do", req.image_id, p.current));
        report.outcome = Some(Outcome::Deployed);
        return Ok(report);
    }
    let asg = &ctx.cloud.autoscaling;
    if p.template.numbered_version().is_none() {
        // AWS can only roll back to a numbered version: pin first. Same version, so no instance changes.
        ctx.events.phase(&name, Stage::Pin, format!("pinning {} from {} to version {}", name, p.template.version, p.current));
        asg.set_group_template_version(&name, &p.template.id, &p.current.to_string())
            .await
            .map_err(|e| Error::cloud(e, "nothing was changed"))?;
        report.pinned_from = Some(p.template.version.clone());
    }
    let changed = |what: &str| match &report.pinned_from {
        Some(from) => format!("group {name} pinned from {from} to version {}; {what}", p.current),
        None => format!("group {name} unchanged; {what}"),
    };
    let version = new_version(ctx, req, &p).await.map_err(|e| match e {
        VersionError::Cloud(e) => Error::cloud(e, changed("no launch-template version created")),
        VersionError::Mismatch(m) => Error::precondition(m),
        VersionError::Unverified(message) => Error::Unsettled { message, state: changed("the new version is left unused") },
    })?;
    report.new_version = Some(version);
    let request = RefreshRequest { group: name.clone(), template_id: p.template.id.clone(), version, prefs: env.refresh_prefs() };
    ctx.events.phase(&name, Stage::Refresh, format!("starting instance refresh to version {version} ({})", req.image_id));
    let refresh_id = asg.start_instance_refresh(&request).await.map_err(|e| {
        Error::cloud(e, changed(&format!("launch-template version {version} created but unused")))
    })?;
    ctx.ledger.refresh_started(&name, &refresh_id);
    ctx.events.info(&name, format!("instance refresh {refresh_id} started"));

    let baseline = p.group.instances.iter().map(|i| i.id.clone()).collect();
    let rollout = Rollout::new(
        rollout_params(env),
        Release { version: p.current, image_id: p.current_image.clone() },
        Release { version, image_id: req.image_id.clone() },
        refresh_id,
        baseline,
    );
    let target = WatchTarget {
        group: &name,
        template_id: &p.template.id,
        rollback_prefs: rollback_prefs(env),
        alarms: &env.alarms,
        target_groups: p.group.target_group_arns.clone(),
    };
    let (rollout, outcome) = watch::drive(ctx, &target, rollout).await;
    // The default follows a verified success. A watch that ended before any outcome (its clock does not
    // wait) goes on along the success path, so that every call of it is accounted for.
    if env.set_default_version && matches!(outcome, Some(Outcome::Deployed) | None) {
        ctx.events.phase(&name, Stage::DefaultVersion, format!("version {version} becomes the default of {}", p.template.id));
        if let Err(e) = ctx.cloud.ec2.set_default_version(&p.template.id, version).await {
            ctx.events.warn(&name, format!("deployed, but version {version} could not be made the template default: {e}"));
        }
    }
    report.refresh_ids = rollout.refresh_ids.clone();
    report.timeline = rollout.timeline.iter().map(|(t, n)| (t.as_secs_f64(), *n)).collect();
    report.outcome = outcome;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Why no version could be used.
enum VersionError {
    Cloud(CloudError),
    /// The existing version asked for launches another image (nothing was changed).
    Mismatch(String),
    /// The version was created, but reads back with another image.
    Unverified(String),
}

impl From<CloudError> for VersionError {
    fn from(e: CloudError) -> Self {
        Self::Cloud(e)
    }
}

/// The version for this release: reuse one a previous attempt created (same image, marked by us, newer
/// than the current one), else create it from the current version changing only the image.
async fn new_version(ctx: &Ctx, req: &DeployRequest, p: &Prepared) -> Result<i64, VersionError> {
    let ec2 = &ctx.cloud.ec2;
    if let Some(n) = req.existing_version {
        let found = ec2.launch_template_versions(&p.template.id, &[n.to_string()]).await?;
        return match found.first() {
            Some(v) if v.image_id.as_deref() == Some(req.image_id.as_str()) => Ok(n),
            other => Err(VersionError::Mismatch(format!(
                "version {n} of {} launches {:?}, not {}",
                p.template.id,
                other.and_then(|v| v.image_id.clone()),
                req.image_id
            ))),
        };
    }
    let latest = ec2.launch_template_versions(&p.template.id, &["$Latest".to_string()]).await?;
    if let Some(v) = latest.first() {
        let ours = v.description.as_deref().is_some_and(|d| d.starts_with(RELEASE_MARK));
        if ours && v.image_id.as_deref() == Some(req.image_id.as_str()) && v.number > p.current {
            ctx.events.info(&p.group.name, format!("reusing launch-template version {} from an earlier attempt", v.number));
            return Ok(v.number);
        }
    }
    let description = format_mark(&Mark {
        commit: req.commit.clone(),
        ami: Some(req.image_id.clone()),
        env: Some(req.env.clone()),
        at: Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
        job: std::env::var("CI_JOB_ID").ok().filter(|j| !j.is_empty()),
        from: Some(p.current),
    });
    ctx.events.phase(&p.group.name, Stage::Template, format!("creating launch-template version from {} with image {}", p.current, req.image_id));
    let created = ec2.create_launch_template_version(&p.template.id, p.current, &req.image_id, &description).await?;
    // Verify after write: the version must launch the new image (an emulator or API change that drops
    // the override would otherwise roll out the old image and report success).
    let check = ec2.launch_template_versions(&p.template.id, &[created.number.to_string()]).await?;
    match check.first().and_then(|v| v.image_id.clone()) {
        Some(img) if img == req.image_id => Ok(created.number),
        other => Err(VersionError::Unverified(format!(
            "version {} of {} reads back image {:?}, not {}",
            created.number, p.template.id, other, req.image_id
        ))),
    }
}

/// A later group failed: move the groups this run already deployed back to where they were.
async fn undo_earlier(ctx: &Ctx, env: &Environment, report: &mut DeployReport) {
    let count = report.groups.len();
    for g in report.groups.iter_mut().take(count.saturating_sub(1)) {
        let (Some(Outcome::Deployed), Some(new), false) = (&g.outcome, g.new_version, g.already_deployed) else { continue };
        ctx.events.phase(&g.group, Stage::Undo, format!("moving {} back to version {} because a sibling group failed", g.group, g.old_version));
        let rollout = Rollout::back_to(
            rollout_params(env),
            Release { version: new, image_id: g.new_image.clone() },
            Release { version: g.old_version, image_id: g.old_image.clone() },
            RollbackReason::Requested,
        );
        let target = WatchTarget {
            group: &g.group,
            template_id: &g.template_id,
            rollback_prefs: rollback_prefs(env),
            alarms: &env.alarms,
            target_groups: vec![],
        };
        let (rollout, outcome) = watch::drive(ctx, &target, rollout).await;
        g.refresh_ids.extend(rollout.refresh_ids);
        g.outcome = outcome;
    }
}

fn failure_error(req: &DeployRequest, report: &DeployReport) -> Error {
    let mut reasons = Vec::new();
    let mut states = Vec::new();
    let mut verified = true;
    for g in &report.groups {
        match &g.outcome {
            Some(Outcome::RolledBack { reason }) => {
                if !matches!(reason, RollbackReason::Requested) {
                    reasons.push(format!("{}: {reason}", g.group));
                }
                states.push(format!("{} back on launch-template version {} ({}), verified healthy", g.group, g.old_version, g.old_image));
            }
            Some(Outcome::Failed { reason, detail }) => {
                verified = false;
                if let Some(r) = reason {
                    reasons.push(format!("{}: {r}", g.group));
                }
                states.push(format!(
                    "{}: NOT VERIFIED — {detail}; refreshes {}",
                    g.group,
                    g.refresh_ids.join(", ")
                ));
            }
            Some(Outcome::Deployed) if g.already_deployed => states.push(format!("{} unchanged on {}", g.group, g.new_image)),
            Some(Outcome::Deployed) => states.push(format!("{} on {} (version {})", g.group, g.new_image, g.new_version.unwrap_or(0))),
            None => {}
        }
    }
    let release = req.commit.clone().map(|c| format!("{} ({c})", req.image_id)).unwrap_or_else(|| req.image_id.clone());
    let state = states.join("; ");
    if verified {
        Error::RolledBack { env: req.env.clone(), release, reason: reasons.join("; "), state }
    } else {
        let detail = if reasons.is_empty() { "see state".to_string() } else { reasons.join("; ") };
        Error::NeedsHuman { env: req.env.clone(), release, detail, state }
    }
}

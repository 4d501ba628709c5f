//! Deploy: put every Auto Scaling group of an environment on a release. Preflight (`preflight.rs`)
//! checks all groups before anything changes; then per group: a group already configured for the
//! release is verified (and finished if an earlier run was cut short), a refresh of this release still
//! in flight is watched, otherwise `$Latest`/`$Default` is pinned, a launch-template version created
//! from the current one changing only the image (`versions.rs`), a refresh with AutoRollback started
//! and watched. A failed group is rolled back, and groups already moved in this run are moved back too.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use super::images;
use super::preflight::{self, Prepared, ReleaseKey};
use super::versions::{self, Started, VersionError, Wanted};
use super::wait::{Check, Poller, WaitError, Waited};
use super::watch::{self, WatchTarget};
use super::{Ctx, RefreshKind};
use crate::cloud::Wait;
use crate::config::Environment;
use crate::core::health::{fleet_problems, GateParams};
use crate::core::model::{ImageState, LeftBehind, PoolInstance, RefreshPrefs, RefreshRequest, RefreshStatus};
use crate::core::rollout::{Outcome, PhaseName, Release, RollbackReason, Rollout, RolloutParams};
use crate::error::{Error, Result};
use crate::events::Stage;

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

/// A launch template of a mixed instances policy's override, and the versions the deploy moved between.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateChange {
    pub template_id: String,
    pub old_version: i64,
    pub new_version: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub template_id: String,
    pub old_version: i64,
    pub new_version: Option<i64>,
    pub old_image: String,
    pub new_image: String,
    /// The group runs a mixed instances policy (the refresh carried the whole policy).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mixed_instances: bool,
    /// New versions of the policy's overrides' own templates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_templates: Vec<TemplateChange>,
    /// Instances the refresh's preferences left on another image (Standby or protected, `Ignore`):
    /// listed, never counted as verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<LeftBehind>,
    /// The warm pool at the end, for a group with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<Vec<PoolInstance>>,
    /// The releases moved between (with the whole policy, for a mixed group): what an undo goes back to.
    #[serde(skip)]
    pub releases: Option<(Release, Release)>,
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

pub fn rollout_params(env: &Environment) -> RolloutParams {
    RolloutParams {
        poll: env.poll_interval.0,
        timeout: env.timeout.0,
        verify_timeout: env.verify_timeout(),
        gate: GateParams { unhealthy_threshold: env.unhealthy_threshold, grace: env.health_grace.0 },
        left_alone: env.refresh_prefs().left_alone(),
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

/// Every precondition of a deploy of `release` to `env`, checked without changing anything (`ship`
/// runs it before it bakes).
pub async fn preflight_all(ctx: &Ctx, env: &Environment, release: ReleaseKey<'_>, force: bool) -> Result<Vec<Prepared>> {
    preflight::check_alarms(ctx, &env.alarms).await?;
    let mut prepared = Vec::new();
    for name in &env.group_names() {
        prepared.push(preflight::check(ctx, env, name, release, force).await?);
    }
    Ok(prepared)
}

async fn run(ctx: &Ctx, env: &Environment, req: &DeployRequest, report: &mut DeployReport) -> Result<()> {
    check_image(ctx, &req.image_id).await?;
    let release = ReleaseKey { ami: Some(&req.image_id), commit: req.commit.as_deref() };
    let prepared = preflight_all(ctx, env, release, req.force).await?;
    for p in prepared {
        if let Some(signal) = ctx.stop.requested() {
            let done: Vec<String> = report.groups.iter().map(|g| g.group.clone()).collect();
            let state = if done.is_empty() { "nothing was changed".to_string() } else { format!("{} deployed", done.join(", ")) };
            return Err(Error::Interrupted { state: format!("{signal} received before {} was deployed; {state}", p.group.name) });
        }
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
        None => {
            Err(Error::precondition(format!("AMI {ami} not found{}; is it this account's?", ctx.pipeline.region_hint())))
        }
    }
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
        mixed_instances: p.policy.is_some(),
        pinned_from: None,
        ..Default::default()
    };
    let attached = p.attach.as_ref().and_then(|r| Some((r.id.clone(), r.desired_version.as_deref()?.parse::<i64>().ok()?)));
    // An earlier run's refresh of this release that is already rolling back: watched as a rollback.
    let rolling_back = p.attach.as_ref().filter(|r| r.status == RefreshStatus::RollbackInProgress);
    let (refresh_id, new) = match attached {
        Some((id, version)) => {
            let kind = if rolling_back.is_some() { RefreshKind::Back } else { RefreshKind::Forward };
            ctx.ledger.refresh_started(&name, &id, kind);
            let policy = p.attach.as_ref().and_then(|r| r.desired.as_ref()?.policy().cloned());
            (id, Release { version, image_id: req.image_id.clone(), policy, also: vec![] })
        }
        None if p.configured_for(&req.image_id)
            && req.existing_version.is_none_or(|v| v == p.current)
            && (p.verified_on(&req.image_id) || p.members_on(&req.image_id)) =>
        {
            // Already this release (deployed before, or an earlier run's refresh finished without it):
            // verify the fleet, and finish what that run left undone.
            report.already_deployed = true;
            report.new_version = Some(p.current);
            report.outcome = Some(verify_configured(ctx, env, &p, &req.image_id).await);
            if report.outcome == Some(Outcome::Deployed) {
                finish_success(ctx, env, &p, p.current).await;
            }
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        // Configured for the release with members on other images (a refresh that stopped half-way):
        // a refresh to the same version replaces just those (SkipMatching).
        None if p.configured_for(&req.image_id) => {
            let converge = DeployRequest { existing_version: Some(p.current), ..req.clone() };
            let env = Environment { skip_matching: true, ..env.clone() };
            start(ctx, &env, &converge, &p, &mut report).await?
        }
        None => start(ctx, env, req, &p, &mut report).await?,
    };
    let version = new.version;
    report.new_version = Some(version);
    ctx.events.info(&name, format!("instance refresh {refresh_id} rolls out version {version}"));
    // Not judged by the gate: whatever ran before the refresh (for an adopted refresh, what is not new).
    let baseline = p.group.instances.iter().filter(|i| p.images.get(&i.id) != Some(&req.image_id)).map(|i| i.id.clone()).collect();
    let old = Release {
        version: p.current,
        image_id: p.current_image.clone(),
        policy: p.current_configuration().policy().cloned(),
        also: p.overrides.iter().filter_map(|o| o.image.clone()).collect(),
    };
    report.releases = Some((old.clone(), new.clone()));
    let rollout = match rolling_back {
        Some(r) => {
            let mut rollout = Rollout::undo(rollout_params(env), old, new, refresh_id, &r.status);
            let why = r.rollback_reason.as_ref().or(r.status_reason.as_ref()).map(|w| format!(": {w}")).unwrap_or_default();
            let reason = format!("refresh {} of an earlier run of this deploy was already rolling back{why}", r.id);
            rollout.reason = Some(RollbackReason::AwsRollback { reason: Some(reason) });
            rollout
        }
        None => Rollout::new(rollout_params(env), old, new, refresh_id, baseline),
    };
    let target = WatchTarget::of(env, &name, &p.template.id, p.group.target_group_arns.clone(), p.group.warm_pool.is_some());
    let (rollout, outcome) = watch::drive(ctx, &target, rollout).await;
    report.left_behind = rollout.left_behind.clone();
    report.warm_pool = rollout.warm_pool.clone();
    // The default follows a verified success. A watch that ended before any outcome (its clock does not
    // wait) goes on along the success path, so that every call of it is accounted for.
    if matches!(outcome, Some(Outcome::Deployed) | None) {
        finish_success(ctx, env, &p, version).await;
    }
    report.refresh_ids = rollout.refresh_ids.clone();
    report.timeline = rollout.timeline.iter().map(|(t, n)| (t.as_secs_f64(), *n)).collect();
    report.outcome = outcome;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Pins `$Latest`/`$Default`, makes the version (and, for a mixed instances policy, one of each
/// override's own template) and starts the refresh; every error says what it left.
async fn start(ctx: &Ctx, env: &Environment, req: &DeployRequest, p: &Prepared, report: &mut GroupReport) -> Result<(String, Release)> {
    let name = &p.group.name;
    check_architectures(ctx, p, &req.image_id).await?;
    if p.needs_pin() {
        // AWS can only roll back to numbered versions: pin first. The same versions, so no instance changes.
        ctx.events.phase(name, Stage::Pin, format!("pinning {} from {} to version {}", name, p.template.version, p.current));
        ctx.cloud
            .autoscaling
            .set_group_configuration(name, &p.current_configuration())
            .await
            .map_err(|e| Error::cloud(e, "nothing was changed"))?;
        report.pinned_from = Some(p.template.version.clone());
    }
    let changed = |what: &str| match &report.pinned_from {
        Some(from) => format!("group {name} pinned from {from} to version {}; {what}", p.current),
        None => format!("group {name} unchanged; {what}"),
    };
    let want = Wanted { env: &req.env, image: &req.image_id, commit: req.commit.as_deref(), existing: req.existing_version };
    let failed = |e: VersionError| match e {
        VersionError::Cloud(e) => Error::cloud(e, changed("no launch-template version created")),
        VersionError::Mismatch(m) => Error::precondition(m),
        VersionError::Unverified(message) => Error::Unsettled { message, state: changed("the new version is left unused") },
    };
    let (version, created) = versions::for_release(ctx, &want, p).await.map_err(failed)?;
    let mut made: Vec<(String, i64)> = if created { vec![(p.template.id.clone(), version)] } else { vec![] };
    let mut overrides = BTreeMap::new();
    for o in &p.overrides {
        let (n, created) = versions::for_override(ctx, &Wanted { existing: None, ..want }, name, o).await.map_err(failed)?;
        report.override_templates.push(TemplateChange { template_id: o.template.id.clone(), old_version: o.current, new_version: n });
        overrides.insert(o.template.id.clone(), n);
        if created {
            made.push((o.template.id.clone(), n));
        }
    }
    let unused = changed(&format!("launch-template version {version} created but unused (a re-run of this release reuses it)"));
    if let Some(signal) = ctx.stop.requested() {
        let state = if made.is_empty() { unused } else { changed(&discard_versions(ctx, p, &made).await) };
        return Err(Error::Interrupted { state: format!("{signal} received before the refresh started; {state}") });
    }
    let desired = p.configuration(version, &overrides);
    let new = Release { version, image_id: req.image_id.clone(), policy: desired.policy().cloned(), also: vec![] };
    let request = RefreshRequest { group: name.clone(), desired, prefs: env.refresh_prefs() };
    let what = if p.policy.is_some() { "its mixed instances policy on version" } else { "version" };
    ctx.events.phase(name, Stage::Refresh, format!("starting instance refresh to {what} {version} ({})", req.image_id));
    match versions::start_refresh(ctx, &request).await {
        Started::Running { id, .. } => {
            ctx.ledger.refresh_started(name, &id, RefreshKind::Forward);
            Ok((id, new))
        }
        Started::Blocked(r) => Err(Error::precondition(format!(
            "group {name} was taken by instance refresh {} ({}, to version {}) between preflight and the start of ours; {unused}",
            r.id,
            r.status.as_str(),
            r.desired_version.as_deref().unwrap_or("?")
        ))),
        Started::Failed(e) => Err(Error::cloud(e, unused)),
    }
}

/// An override whose own template launches another architecture than the release's image cannot take
/// that image (an arm64 override needs an arm64 build): refused, naming it, before anything changes.
async fn check_architectures(ctx: &Ctx, p: &Prepared, image: &str) -> Result<()> {
    if p.overrides.is_empty() {
        return Ok(());
    }
    let arch = |ami: String| async move { images::by_id(ctx, &ami).await.map(|i| i.and_then(|i| i.architecture)) };
    let unchanged = |e| Error::cloud(e, "nothing was changed");
    let Some(release) = arch(image.to_string()).await.map_err(unchanged)? else { return Ok(()) };
    for o in &p.overrides {
        let Some(current) = o.image.clone() else { continue };
        if let Some(theirs) = arch(current.clone()).await.map_err(unchanged)?.filter(|a| *a != release) {
            let types: Vec<&str> = p
                .policy
                .iter()
                .flat_map(|pol| pol.overrides.iter())
                .filter(|ov| ov.template.as_ref().is_some_and(|t| t.id == o.template.id))
                .filter_map(|ov| ov.instance_type.as_deref())
                .collect();
            return Err(Error::precondition(format!(
                "group {}: the override{} {} launch{} from launch template {} ({theirs} image {current}), but release {image} is {release}; \
                 one image cannot serve both architectures: give the override a template on {release} or deploy it separately",
                p.group.name,
                if types.len() == 1 { "" } else { "s" },
                if types.is_empty() { o.template.id.clone() } else { types.join(", ") },
                if types.len() == 1 { "es" } else { "" },
                o.template.id
            )));
        }
    }
    Ok(())
}

/// A stop came after this run created versions (`created`: template id and number; the group's own
/// template first, then overrides' own) and before anything used them: delete them, so that a cancelled
/// deploy leaves no version that was never rolled out. Says what is left either way.
async fn discard_versions(ctx: &Ctx, p: &Prepared, created: &[(String, i64)]) -> String {
    let group = p.group.name.as_str();
    let mut said = Vec::new();
    let mut all_gone = true;
    for (template_id, version) in created {
        // The group's own template is the one a user knows; an override's is named.
        let what = if *template_id == p.template.id {
            format!("launch-template version {version}")
        } else {
            format!("version {version} of override template {template_id}")
        };
        match ctx.cloud.ec2.delete_launch_template_version(template_id, *version).await {
            Ok(()) => {
                ctx.events.info(group, format!("deleted {what}: nothing used it"));
                said.push(format!("{what} was created and deleted again"));
            }
            Err(e) => {
                all_gone = false;
                said.push(format!(
                    "{what} created but unused and could not be deleted ({e}); a re-run of this release reuses it"
                ));
            }
        }
    }
    if all_gone {
        ctx.ledger.version_deleted(group);
    }
    said.join("; ")
}

/// A group whose configuration already launches the release and whose members all run it: wait (up to
/// `verify_timeout`) for every one to be in service and healthy.
async fn verify_configured(ctx: &Ctx, env: &Environment, p: &Prepared, image: &str) -> Outcome {
    let name = &p.group.name;
    if p.verified_on(image) {
        ctx.events.info(name, format!("already on {image} (launch-template version {}); nothing to do", p.current));
        return Outcome::Deployed;
    }
    ctx.events.phase(name, Stage::Verify, format!("{name} is configured for {image}: checking every instance is in service and healthy on it"));
    let what = format!("every instance of {name} in service on {image} and healthy in every target group");
    let wait = Wait { what, every: env.poll_interval.0, timeout: env.verify_timeout() };
    // A Poller, not `wait::until` with an async closure: a closure future borrowing this function's
    // references is not `Send` for the compiler, and deploys run in spawned tasks.
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let mut last = Vec::new();
    let verified = loop {
        let seen = check_fleet(ctx, &p.group, image).await.map(|problems| {
            last = problems;
            if last.is_empty() { Check::Ready(()) } else { Check::NotYet(last.join("; ")) }
        });
        if let Some(ended) = poller.after(seen).await {
            break ended;
        }
    };
    match verified {
        Ok(Waited::Ready(())) | Ok(Waited::Unobserved { .. }) => Outcome::Deployed,
        Err(WaitError::TimedOut { .. } | WaitError::Failed(_)) => Outcome::Failed {
            reason: None,
            detail: format!("{name} is configured for {image}, but its fleet does not verify: {}", last.join("; ")),
        },
        Err(WaitError::Cloud(e)) => Outcome::Failed { reason: None, detail: format!("{name} could not be verified: {e}") },
    }
}

/// What keeps the group from being verified on `image` now (empty: verified).
async fn check_fleet(ctx: &Ctx, group: &crate::core::model::Group, image: &str) -> Result<Vec<String>, crate::cloud::CloudError> {
    let g = ctx.cloud.autoscaling.describe_group(&group.name).await?.unwrap_or_else(|| group.clone());
    let (images, health) = super::observe::fleet(ctx, &g).await?;
    Ok(fleet_problems(&g, &images, &health, Some(image)))
}

/// After a verified success: the new version becomes the template's default (when asked), including
/// for a release an earlier, interrupted run left as the group's configuration but not the default.
async fn finish_success(ctx: &Ctx, env: &Environment, p: &Prepared, version: i64) {
    let name = &p.group.name;
    if !env.set_default_version || p.default_version == Some(version) {
        return;
    }
    ctx.events.phase(name, Stage::DefaultVersion, format!("version {version} becomes the default of {}", p.template.id));
    if let Err(e) = ctx.cloud.ec2.set_default_version(&p.template.id, version).await {
        ctx.events.warn(name, format!("deployed, but version {version} could not be made the template default: {e}"));
    }
}

/// A later group failed: move the groups this run already deployed back to where they were.
async fn undo_earlier(ctx: &Ctx, env: &Environment, report: &mut DeployReport) {
    let count = report.groups.len();
    for g in report.groups.iter_mut().take(count.saturating_sub(1)) {
        let (Some(Outcome::Deployed), Some((old, new)), false) = (&g.outcome, g.releases.clone(), g.already_deployed) else { continue };
        ctx.events.phase(&g.group, Stage::Undo, format!("moving {} back to version {} because a sibling group failed", g.group, g.old_version));
        let rollout = Rollout::back_to(rollout_params(env), new, old, RollbackReason::Requested);
        let target = WatchTarget::of(env, &g.group, &g.template_id, vec![], g.warm_pool.is_some());
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

//! Deploy: put every group of an environment on a release, in the environment's waves. Preflight
//! (`preflight.rs`) checks every group before anything changes; the release plan (`core::release`)
//! decides what starts, stops and goes back; the driver (`driver.rs`) watches every group in flight at
//! once. This file is what a deploy does to one group: start it (`start.rs`: a new launch-template
//! version and a refresh, an earlier run's refresh adopted, or a group already on the release
//! verified), move it back when the release is undone, and report it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde::Serialize;
use tokio::time::Instant;

use super::driver::{self, Job, Started};
use super::images;
use super::preflight::{self, Prepared, ReleaseKey};
use super::promote::{self, Marked, OnRelease, Protected};
use super::start::{self, Target};
use super::watch::Lane;
use super::{Ctx, RefreshKind};
use crate::core::model::{Image, LeftBehind, PoolInstance, RefreshStatus};
use crate::core::promotion::{mark_for, Promotion};
use crate::core::release::{Cause, GroupEnd, GroupState, ReleasePlan, Verdict};
use crate::core::rollout::{Outcome, PhaseName, Release, RollbackReason, Rollout};
use crate::core::settings::EnvSettings;
use crate::error::{Error, Result};
use crate::events::Stage;

#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub env: String,
    pub image_id: String,
    pub commit: Option<String>,
    /// Deploy even onto a fleet that is already unhealthy.
    pub force: bool,
    /// Groups whose target differs from `image_id`/`commit` (a rollback: each group's earlier release,
    /// as an existing launch-template version; another region's copy of the release).
    pub targets: BTreeMap<String, Target>,
    /// The release's image in each region (region → image), when it lives in several.
    pub images: BTreeMap<String, String>,
}

impl DeployRequest {
    /// What `group` is to run.
    pub fn target(&self, group: &str) -> Target {
        self.targets.get(group).cloned().unwrap_or_else(|| Target {
            env: self.env.clone(),
            image_id: self.image_id.clone(),
            commit: self.commit.clone(),
            existing_version: None,
            forced: None,
        })
    }
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
    /// The group (`group@region` in a release over several regions).
    pub group: String,
    /// Its region (None: the SDK's, when the pipeline file names none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account it is deployed in, when the environment deploys through another account's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The group's wave (1-based).
    pub wave: usize,
    /// Where the group stands at the end: `verified` (on the release), `restored` (back on the previous
    /// release, verified), `unverified` (a human must look), `unchanged`, or `waiting` (its wave never came).
    pub state: Option<GroupState>,
    pub template_id: String,
    pub old_version: i64,
    pub new_version: Option<i64>,
    pub old_image: String,
    /// The commit of the release the group ran before, when its version's release mark names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_commit: Option<String>,
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
    /// The environment's waves, in order.
    pub waves: Vec<Vec<String>>,
    /// How the release ended (None: it never started).
    pub verdict: Option<Verdict>,
    /// What ended it early, if something did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The release's image in each region (region → image), when the environment has several regions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// Every group of the environment, in wave order.
    pub groups: Vec<GroupReport>,
    /// The promotion guard's verdict on the image (deploy and ship; None for a rollback, or when the
    /// release never got that far).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// The mark the release left on its image when it ended (`bakeroll:verified:<env>` or `…:failed:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<Marked>,
    /// After a verified release: deregistration protection of each image a group runs or would roll back to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<Protected>,
}

/// Preflight, the image, the promotion guard, then the release: `deploy --ami`.
pub async fn deploy(ctx: &Ctx, env: &EnvSettings, req: &DeployRequest) -> (DeployReport, Result<()>) {
    let empty = || DeployReport { env: req.env.clone(), ami: req.image_id.clone(), commit: req.commit.clone(), waves: env.waves.clone(), ..Default::default() };
    let key = ReleaseKey { ami: Some(&req.image_id), commit: req.commit.as_deref() };
    // The groups first: a misspelt group is the likelier mistake, and says more than a missing image.
    let prepared = match preflight::check_all(ctx, env, key, req.force).await {
        Ok(p) => p,
        Err(e) => return (empty(), Err(e)),
    };
    let source = match images::require_available(ctx, &req.image_id, "the release").await {
        Ok(i) => i,
        Err(e) => return (empty(), Err(e)),
    };
    // The guard before the copies: copying the image to other regions is already a change.
    let promotion = match promote_image(ctx, env, &source, req.commit.as_deref(), req.force) {
        (p, Ok(())) => p,
        (p, Err(e)) => return (DeployReport { promotion: Some(p), ..empty() }, Err(e)),
    };
    let req = match in_every_region(ctx, env, req, &source).await {
        Ok(r) => r,
        Err(e) => return (empty(), Err(e)),
    };
    release(ctx, env, &req, prepared, Some(promotion)).await
}

/// The promotion guard on an existing image (its commit from the request, else from its own tag).
fn promote_image(ctx: &Ctx, env: &EnvSettings, image: &Image, commit: Option<&str>, force: bool) -> (Promotion, Result<()>) {
    let commit = commit.or(image.tags.get(crate::core::tags::COMMIT).map(String::as_str));
    promote::guard(ctx, env, Some(image), &promote::describe(&image.id, commit), force)
}

/// The request with each group's target in its own region (the release copied there, and shared with
/// the deploy account, before any group changes: `copies.rs`). One region: the request as it is.
pub async fn in_every_region(ctx: &Ctx, env: &EnvSettings, req: &DeployRequest, source: &crate::core::model::Image) -> Result<DeployRequest> {
    let images = super::copies::ensure(ctx, &env.placement, source).await?;
    let mut req = req.clone();
    for (scope, settings) in &env.groups {
        let image = images.get(&settings.region).cloned().unwrap_or_else(|| req.image_id.clone());
        if image != req.image_id || req.targets.contains_key(scope) {
            let target = Target { image_id: image, ..req.target(scope) };
            req.targets.insert(scope.clone(), target);
        }
    }
    req.images = images.into_iter().map(|(r, id)| (r.or_else(|| env.placement.bake_region.clone()).unwrap_or_default(), id)).collect();
    Ok(req)
}

/// Preflight, then the image baked for `commit`, then the release: `deploy --commit`.
pub async fn deploy_commit(ctx: &Ctx, env: &EnvSettings, commit: &str, force: bool) -> (DeployReport, Result<()>) {
    let empty = |ami: &str| DeployReport { env: env.name.clone(), ami: ami.to_string(), commit: Some(commit.to_string()), waves: env.waves.clone(), ..Default::default() };
    let key = ReleaseKey { ami: None, commit: Some(commit) };
    let prepared = match preflight::check_all(ctx, env, key, force).await {
        Ok(p) => p,
        Err(e) => return (empty(""), Err(e)),
    };
    let ami = match images::ami_of_commit(ctx, commit).await {
        Ok(ami) => ami,
        Err(e) => return (empty(""), Err(e)),
    };
    let source = match images::require_available(ctx, &ami, &format!("the image of commit {commit}")).await {
        Ok(i) => i,
        Err(e) => return (empty(&ami), Err(e)),
    };
    let promotion = match promote_image(ctx, env, &source, Some(commit), force) {
        (p, Ok(())) => p,
        (p, Err(e)) => return (DeployReport { promotion: Some(p), ..empty(&ami) }, Err(e)),
    };
    let req = DeployRequest { env: env.name.clone(), image_id: ami.clone(), commit: Some(commit.to_string()), force, targets: BTreeMap::new(), images: BTreeMap::new() };
    let req = match in_every_region(ctx, env, &req, &source).await {
        Ok(r) => r,
        Err(e) => return (empty(&ami), Err(e)),
    };
    release(ctx, env, &req, prepared, Some(promotion)).await
}

/// The release itself, on groups preflight has checked (`ship` checks them before its bake), with the
/// promotion guard's verdict when there was one (deploy and ship; a rollback's moves have none). A
/// deploy or ship then marks its image from the verdict and, verified, protects what rollbacks need.
pub async fn release(ctx: &Ctx, env: &EnvSettings, req: &DeployRequest, prepared: Vec<Prepared>, promotion: Option<Promotion>) -> (DeployReport, Result<()>) {
    let metrics = super::metrics::plan(ctx, env, &prepared).await;
    let forced = promotion.as_ref().and_then(Promotion::forced);
    let mut job = DeployJob::new(env, req, prepared, forced);
    job.metrics = metrics;
    let mut plan = ReleasePlan::new(env.waves.clone());
    let verdict = driver::run(ctx, &mut plan, &mut job, &env.alarms, env.poll).await;
    let (mut report, result) = job.finish(&plan, verdict);
    // A deploy or ship (it went through the guard) marks its image; a rollback's moves do not.
    let promoted = promotion.is_some();
    report.promotion = promotion;
    if promoted {
        // Whether the first failure was a rollout that began (a conviction) or a group that never could.
        let cause_started = match plan.cause() {
            Some(Cause::Group { group }) => plan.state(group) != Some(GroupState::Unchanged),
            _ => false,
        };
        let kind = mark_for(report.verdict, plan.cause(), cause_started);
        let verified: Vec<OnRelease> = report
            .groups
            .iter()
            .filter(|g| g.state == Some(GroupState::Verified))
            .filter_map(|g| Some(OnRelease { group: g.group.clone(), version: g.new_version?, image: g.new_image.clone() }))
            .collect();
        let after = promote::after_release(ctx, env, &req.image_id, kind, &verified).await;
        report.mark = after.mark;
        report.protected = after.protected;
    }
    (report, result)
}

/// The releases a group moves between, kept for its undo.
struct Track {
    old: Release,
    new: Release,
    /// The group's lane goes back (an undo, or an earlier run's rollback it attached to).
    back: bool,
    started: Instant,
}

/// What deploy does to each group of a release (`driver::Job`).
struct DeployJob<'a> {
    env: &'a EnvSettings,
    req: &'a DeployRequest,
    prepared: BTreeMap<String, Prepared>,
    reports: BTreeMap<String, GroupReport>,
    tracks: BTreeMap<String, Track>,
    /// Groups that could not start, and why.
    errors: Vec<(String, Error)>,
    /// Each group's metric gate plan (`engine::metrics`).
    metrics: super::metrics::Plans,
    /// What `--force` overrode to deploy this release (recorded in each new version's release mark).
    forced: Option<String>,
}

/// How one group began.
enum Begun {
    Lane { lane: Box<Lane>, track: Track, report: GroupReport },
    Already { outcome: Outcome, previous: Option<Release>, report: GroupReport },
    Failed { error: Error, report: GroupReport },
}

impl<'a> DeployJob<'a> {
    fn new(env: &'a EnvSettings, req: &'a DeployRequest, prepared: Vec<Prepared>, forced: Option<String>) -> Self {
        let prepared: BTreeMap<String, Prepared> = prepared.into_iter().map(|p| (p.scope.clone(), p)).collect();
        let reports = prepared.iter().map(|(g, p)| (g.clone(), Self::report_of(env, req, p))).collect();
        Self { env, req, prepared, reports, tracks: BTreeMap::new(), errors: Vec::new(), metrics: Default::default(), forced }
    }

    fn report_of(env: &EnvSettings, req: &DeployRequest, p: &Prepared) -> GroupReport {
        let settings = env.group(&p.scope);
        GroupReport {
            group: p.scope.clone(),
            region: settings.region.clone().or_else(|| env.placement.bake_region.clone()),
            account: env.placement.role.as_ref().map(|r| r.account.clone()),
            wave: env.wave_of(&p.scope).unwrap_or(0),
            state: Some(GroupState::Waiting),
            template_id: p.template.id.clone(),
            old_version: p.current,
            old_image: p.current_image.clone(),
            old_commit: p.current_commit.clone(),
            new_image: req.target(&p.scope).image_id,
            mixed_instances: p.policy.is_some(),
            ..Default::default()
        }
    }

    /// Starts one group (see `start.rs`), reading only what preflight found. `scope`: the name the
    /// release knows it by; its AWS calls go to its region's cloud.
    async fn begin(&self, ctx: &Ctx, scope: &str) -> Begun {
        let p = &self.prepared[scope];
        let settings = self.env.group(scope);
        let ctx = &ctx.place(settings.region.as_deref());
        let group = p.group.name.as_str();
        let mut target = self.req.target(scope);
        if target.forced.is_none() {
            target.forced = self.forced.clone();
        }
        let mut report = self.reports[scope].clone();
        let started = Instant::now();
        ctx.ledger.ran_before(group, &p.current_image);
        let attached = p.attach.as_ref().and_then(|r| Some((r.id.clone(), r.desired_version.as_deref()?.parse::<i64>().ok()?)));
        // An earlier run's refresh of this release that is already rolling back: watched as a rollback.
        let rolling_back = p.attach.as_ref().filter(|r| r.status == RefreshStatus::RollbackInProgress);
        let begun = match attached {
            Some((id, version)) => {
                let kind = if rolling_back.is_some() { RefreshKind::Back } else { RefreshKind::Forward };
                ctx.ledger.refresh_started(group, &id, kind);
                let policy = p.attach.as_ref().and_then(|r| r.desired.as_ref()?.policy().cloned());
                Ok((id, Release { version, image_id: target.image_id.clone(), policy, also: vec![] }))
            }
            None if p.configured_for(&target.image_id)
                && target.existing_version.is_none_or(|v| v == p.current)
                && (p.verified_on(&target.image_id) || p.members_on(&target.image_id)) =>
            {
                // Already this release (deployed before, or an earlier run's refresh finished without it):
                // verify the fleet, and finish what that run left undone.
                report.already_deployed = true;
                report.new_version = Some(p.current);
                let outcome = start::verify_configured(ctx, &settings, p, &target.image_id).await;
                if outcome == Outcome::Deployed {
                    start::finish_success(ctx, &settings, p, p.current).await;
                }
                let previous = start::previous_release(ctx, p).await;
                report.seconds = started.elapsed().as_secs_f64();
                return Begun::Already { outcome, previous, report };
            }
            // Configured for the release with members on other images (a refresh that stopped half-way):
            // a refresh to the same version replaces just those (SkipMatching).
            None if p.configured_for(&target.image_id) => {
                let converge = Target { existing_version: Some(p.current), ..target.clone() };
                self.refresh(ctx, &settings.converging(), &converge, p, &mut report).await
            }
            None => self.refresh(ctx, &settings, &target, p, &mut report).await,
        };
        let (refresh_id, new) = match begun {
            Ok(b) => b,
            Err(error) => {
                report.seconds = started.elapsed().as_secs_f64();
                return Begun::Failed { error, report };
            }
        };
        report.new_version = Some(new.version);
        ctx.events.info(group, format!("instance refresh {refresh_id} rolls out version {}", new.version));
        // Not judged by the gate: whatever ran before the refresh (for an adopted refresh, what is not new).
        let baseline: Vec<String> = p.group.instances.iter().filter(|i| p.images.get(&i.id) != Some(&target.image_id)).map(|i| i.id.clone()).collect();
        let old = Release {
            version: p.current,
            image_id: p.current_image.clone(),
            policy: p.current_configuration().policy().cloned(),
            also: p.overrides.iter().filter_map(|o| o.image.clone()).collect(),
        };
        let (rollout, kind) = match rolling_back {
            Some(r) => {
                let mut rollout = Rollout::undo(settings.rollout, old.clone(), new.clone(), refresh_id, &r.status);
                let why = r.rollback_reason.as_ref().or(r.status_reason.as_ref()).map(|w| format!(": {w}")).unwrap_or_default();
                let reason = format!("refresh {} of an earlier run of this deploy was already rolling back{why}", r.id);
                rollout.reason = Some(RollbackReason::AwsRollback { reason: Some(reason) });
                (rollout, RefreshKind::Back)
            }
            None => {
                let rollout = Rollout::new(settings.rollout, old.clone(), new.clone(), refresh_id, baseline.clone());
                let rollout = match self.metrics.gate(scope, &settings, baseline, ctx.cloud.clock.wall_ms()) {
                    Some(gate) => rollout.with_metrics(gate),
                    None => rollout,
                };
                (rollout, RefreshKind::Forward)
            }
        };
        let lane = Lane::new(scope, &settings, &p.template.id, p.group.target_group_arns.clone(), p.group.warm_pool.is_some(), rollout, kind);
        Begun::Lane { lane: Box::new(lane), track: Track { old, new, back: kind == RefreshKind::Back, started }, report }
    }

    async fn refresh(&self, ctx: &Ctx, settings: &crate::core::settings::GroupSettings, target: &Target, p: &Prepared, report: &mut GroupReport) -> Result<(String, Release)> {
        let r = start::refresh(ctx, settings, target, p).await?;
        report.pinned_from = r.pinned_from;
        report.override_templates = r.overrides.into_iter().map(|(template_id, old_version, new_version)| TemplateChange { template_id, old_version, new_version }).collect();
        Ok((r.refresh_id, r.new))
    }

    /// The deploy's result from the plan's verdict: Ok only when every group is verified on the release.
    fn finish(mut self, plan: &ReleasePlan, verdict: Verdict) -> (DeployReport, Result<()>) {
        for (group, _, state) in plan.states() {
            if let Some(r) = self.reports.get_mut(&group) {
                r.state = Some(state);
            }
        }
        let mut report = DeployReport {
            env: self.req.env.clone(),
            ami: self.req.image_id.clone(),
            commit: self.req.commit.clone(),
            waves: self.env.waves.clone(),
            verdict: Some(verdict),
            cause: plan.cause().cloned(),
            images: if self.req.images.len() > 1 { self.req.images.clone() } else { BTreeMap::new() },
            groups: vec![],
            ..Default::default()
        };
        report.groups = self.env.group_names().iter().filter_map(|g| self.reports.remove(g)).collect();
        let result = outcome_error(self.req, &report, verdict, plan.cause(), std::mem::take(&mut self.errors));
        (report, result)
    }
}

#[async_trait]
impl Job for DeployJob<'_> {
    async fn start(&mut self, ctx: &Ctx, groups: &[String]) -> Vec<(String, Started)> {
        let begun = join_all(groups.iter().map(|g| self.begin(ctx, g))).await;
        let mut out = Vec::new();
        for (group, b) in groups.iter().zip(begun) {
            let started = match b {
                Begun::Lane { lane, track, report } => {
                    self.reports.insert(group.clone(), report);
                    self.tracks.insert(group.clone(), track);
                    Started::Lane(lane)
                }
                Begun::Already { outcome, previous, mut report } => {
                    let end = match &outcome {
                        Outcome::Deployed => GroupEnd::Verified { undoable: previous.is_some() },
                        Outcome::RolledBack { .. } => GroupEnd::Restored,
                        Outcome::Failed { .. } => GroupEnd::Unverified,
                    };
                    if let (Some(old), Some(new)) = (previous, report.new_version) {
                        let new = Release::of(new, report.new_image.clone());
                        self.tracks.insert(group.clone(), Track { old, new, back: false, started: Instant::now() });
                    }
                    report.outcome = Some(outcome);
                    self.reports.insert(group.clone(), report);
                    Started::Ended(end)
                }
                Begun::Failed { error, report } => {
                    ctx.events.warn(group, format!("could not start: {error}"));
                    self.reports.insert(group.clone(), report);
                    self.errors.push((group.clone(), error));
                    Started::Ended(GroupEnd::NotStarted)
                }
            };
            out.push((group.clone(), started));
        }
        out
    }

    fn undo(&mut self, ctx: &Ctx, scope: &str, cause: &Cause) -> Lane {
        let p = &self.prepared[scope];
        let settings = self.env.group(scope);
        let ctx = &ctx.place(settings.region.as_deref());
        let group = p.group.name.as_str();
        let track = self.tracks.get_mut(scope).expect("an undone group was started");
        track.back = true;
        let reason = match cause {
            Cause::Stopped { signal } => RollbackReason::Interrupted { signal: signal.clone() },
            Cause::Group { group } => RollbackReason::Sibling { group: group.clone() },
        };
        ctx.events.phase(group, Stage::Undo, format!("moving {group} back to version {} ({}): {reason}", track.old.version, track.old.image_id));
        let rollout = Rollout::back_to(settings.rollout, track.new.clone(), track.old.clone(), reason);
        Lane::new(scope, &settings, &p.template.id, p.group.target_group_arns.clone(), p.group.warm_pool.is_some(), rollout, RefreshKind::Back)
    }

    async fn ended(&mut self, ctx: &Ctx, lane: Lane, outcome: Option<Outcome>) -> GroupEnd {
        let group = lane.scope.clone();
        let ctx = &ctx.place(lane.region.as_deref());
        let track = self.tracks.get(&group);
        let back = track.is_some_and(|t| t.back);
        let report = self.reports.get_mut(&group).expect("a watched group has a report");
        report.left_behind = lane.rollout.left_behind.clone();
        report.warm_pool = lane.rollout.warm_pool.clone();
        for id in &lane.rollout.refresh_ids {
            if !report.refresh_ids.contains(id) {
                report.refresh_ids.push(id.clone());
            }
        }
        if !back || report.timeline.is_empty() {
            report.timeline = lane.rollout.timeline.iter().map(|(t, n)| (t.as_secs_f64(), *n)).collect();
        }
        if let Some(t) = track {
            report.seconds = t.started.elapsed().as_secs_f64();
        }
        // The default follows a verified success. A watch that ended before any outcome (its clock does not
        // wait) goes on along the success path, so that every call of it is accounted for.
        let end = match (&outcome, back) {
            (Some(Outcome::Deployed) | None, false) => {
                let version = lane.rollout.new.version;
                start::finish_success(ctx, &self.env.group(&group), &self.prepared[&group], version).await;
                GroupEnd::Verified { undoable: true }
            }
            (Some(Outcome::RolledBack { .. }) | None, _) => GroupEnd::Restored,
            (Some(Outcome::Failed { .. }), _) => GroupEnd::Unverified,
            // A way back that ended on the release: verified on neither side of what was asked.
            (Some(Outcome::Deployed), true) => GroupEnd::Unverified,
        };
        if outcome.is_some() || report.outcome.is_none() {
            report.outcome = outcome;
        }
        end
    }
}

/// One line per group: where it stands now.
pub fn group_state(g: &GroupReport) -> String {
    let name = &g.group;
    match g.state {
        Some(GroupState::Restored) => format!("{name} back on launch-template version {} ({}), verified healthy", g.old_version, g.old_image),
        Some(GroupState::Unverified) => {
            let detail = match &g.outcome {
                Some(Outcome::Failed { detail, .. }) => detail.clone(),
                _ => "its fleet could not be verified".into(),
            };
            format!("{name}: NOT VERIFIED — {detail}; refreshes {}", g.refresh_ids.join(", "))
        }
        Some(GroupState::Verified) if g.already_deployed => format!("{name} on {} (it was already), verified", g.new_image),
        Some(GroupState::Verified) => format!("{name} on {} (version {}), verified", g.new_image, g.new_version.unwrap_or(0)),
        Some(GroupState::Unchanged) => format!("{name} unchanged on {} (version {})", g.old_image, g.old_version),
        Some(GroupState::Waiting) | None => format!("{name} (wave {}) not started, unchanged on {}", g.wave, g.old_image),
        Some(s) => format!("{name} {s}"),
    }
}

/// The error a release ends in, from its verdict: a group that could not start gives its own error (exit
/// 2, 5, 7 or 130) with what became of the others; a stop, exit 130; a conviction rolled back everywhere,
/// exit 3; a group verified on neither release, exit 4.
fn outcome_error(req: &DeployRequest, report: &DeployReport, verdict: Verdict, cause: Option<&Cause>, errors: Vec<(String, Error)>) -> Result<()> {
    if verdict == Verdict::Done {
        return Ok(());
    }
    let touched: Vec<&GroupReport> = report.groups.iter().filter(|g| !matches!(g.state, Some(GroupState::Waiting | GroupState::Unchanged))).collect();
    let states: Vec<String> = report.groups.iter().map(group_state).collect();
    let state = states.join("; ");
    let release = req.commit.clone().map(|c| format!("{} ({c})", req.image_id)).unwrap_or_else(|| req.image_id.clone());
    let reasons: Vec<String> = report
        .groups
        .iter()
        .filter_map(|g| match &g.outcome {
            Some(Outcome::RolledBack { reason }) | Some(Outcome::Failed { reason: Some(reason), .. })
                if !matches!(reason, RollbackReason::Requested | RollbackReason::Sibling { .. }) =>
            {
                Some(format!("{}: {reason}", g.group))
            }
            _ => None,
        })
        .collect();
    let env = req.env.clone();
    if verdict == Verdict::Stuck {
        let mut detail: Vec<String> = reasons;
        detail.extend(errors.iter().map(|(g, e)| format!("{g} could not start: {e}")));
        let detail = if detail.is_empty() { "see state".to_string() } else { detail.join("; ") };
        return Err(Error::NeedsHuman { env, release, detail, state });
    }
    // Undone: every touched group is verified back (or nothing was touched).
    let interrupted = errors.iter().find_map(|(_, e)| match e {
        Error::Interrupted { state } => Some(state.clone()),
        _ => None,
    });
    match (cause, interrupted) {
        (Some(Cause::Stopped { signal }), _) if touched.is_empty() => {
            Err(Error::Interrupted { state: format!("{signal} received before the release changed anything; {state}") })
        }
        (Some(Cause::Stopped { signal }), _) => Err(Error::Interrupted { state: format!("{signal} received: every group the release moved is back; {state}") }),
        (_, Some(during)) if touched.is_empty() => Err(Error::Interrupted { state: during }),
        (_, Some(during)) => Err(Error::Interrupted { state: format!("{during}; every group the release moved is back: {state}") }),
        // A group that could not start, with nothing else moved: its own error (exit 2, 5 or 7), as is.
        (_, None) if touched.is_empty() && !errors.is_empty() => Err(errors.into_iter().next().expect("an error").1),
        (_, None) => {
            let mut reasons = reasons;
            reasons.extend(errors.iter().map(|(g, e)| format!("{g} could not start: {e}")));
            Err(Error::RolledBack { env, release, reason: reasons.join("; "), state })
        }
    }
}

//! Rollback: put every group of an environment back on an earlier release. `plan` reads the groups,
//! resolves the target per group and refuses (nothing changed) a target that is unknown or whose image
//! is gone; `execute` carries the plan out: a refresh in flight is rolled back with
//! RollbackInstanceRefresh and watched, then — if the target is not what that leaves running — a new
//! refresh to the target's launch-template version (or a new version from its image) goes through the
//! same health gate as a deploy. Groups are independent: one failing does not move the others back.

use serde::Serialize;

use super::deploy::{self, rollout_params, DeployReport, DeployRequest, GroupReport};
use super::releases::{require_group, GroupState, ReleaseRef};
use super::watch::{self, WatchTarget};
use super::images::{self, CommitImage};
use super::Ctx;
use crate::events::Stage;
use crate::config::Environment;
use crate::core::model::{ImageState, MixedPolicy};
use crate::core::releases::{previous_target, resolve, Resolved, TargetSpec};
use crate::core::rollout::{Outcome, Release, Rollout};
use crate::error::{Error, Result};

/// A refresh in flight that the rollback undoes first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InFlight {
    pub refresh_id: String,
    pub status: String,
    pub release: ReleaseRef,
    /// The refresh's desired mixed instances policy, if it carries one.
    #[serde(skip)]
    pub policy: Option<MixedPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPlan {
    pub group: String,
    pub template_id: String,
    /// What the group runs now.
    pub from: ReleaseRef,
    pub undo: Option<InFlight>,
    /// Where the group goes.
    pub to: ReleaseRef,
    /// The target's image is deployed as a new launch-template version (no version records it).
    pub new_version: bool,
    /// A deploy of `to` follows (after undoing the refresh in flight, if any); it does nothing when the
    /// fleet is already verified on `to`.
    pub refresh: bool,
    /// Why `to` was chosen (for `previous`).
    pub why: String,
    /// The group's own mixed instances policy (what undoing a refresh in flight returns to).
    #[serde(skip)]
    pub policy: Option<MixedPolicy>,
    #[serde(skip)]
    pub warm_pool: bool,
    /// Images the policy's override templates launch now.
    #[serde(skip)]
    pub override_images: Vec<String>,
}

/// The decision, computed before anything changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlan {
    pub env: String,
    /// `--to` as given.
    pub target: String,
    pub groups: Vec<GroupPlan>,
}

/// How undoing a refresh in flight went.
#[derive(Debug, Clone, Serialize)]
pub struct Undone {
    /// None when the watch ended before any outcome (a dry run: nothing was undone).
    pub outcome: Option<Outcome>,
    /// The refresh rolled back, then any refresh started to finish the job.
    pub refresh_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    pub group: String,
    pub undo: Option<Undone>,
    /// The refresh to the target, as deploy reports it.
    pub deploy: Option<GroupReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub plan: RollbackPlan,
    pub groups: Vec<GroupResult>,
}

/// Reads every group and decides; an error here means nothing was changed.
pub async fn plan(ctx: &Ctx, env_name: &str, env: &Environment, spec: &TargetSpec, target: &str) -> Result<RollbackPlan> {
    let mut groups = Vec::new();
    for name in &env.group_names() {
        ctx.events.phase(name, Stage::Plan, format!("reading {name} and its releases"));
        let state = require_group(ctx, env_name, name).await?;
        groups.push(plan_group(ctx, &state, spec, target).await?);
    }
    Ok(RollbackPlan { env: env_name.to_string(), target: target.to_string(), groups })
}

async fn plan_group(ctx: &Ctx, state: &GroupState, spec: &TargetSpec, target: &str) -> Result<GroupPlan> {
    let name = &state.group.name;
    let current = state.current.ok_or_else(|| {
        Error::precondition(format!("group {name} uses launch-template version {} which does not exist", state.template.version))
    })?;
    let from = ReleaseRef::of_version(state, current);
    let undo = state.active_refresh().map(|r| InFlight {
        refresh_id: r.id.clone(),
        status: r.status.as_str().to_string(),
        release: r.desired_version.as_deref().and_then(|v| v.parse().ok()).map(|n| ReleaseRef::of_version(state, n)).unwrap_or_default(),
        policy: r.desired.as_ref().and_then(|d| d.policy().cloned()),
    });
    let refused = |e: String| Error::precondition(format!("cannot roll {name} back to {target}: {e}"));
    let (resolved, why) = match spec {
        TargetSpec::Previous => {
            let unfinished = match &undo {
                Some(r) => Some(format!("instance refresh {} is {}", r.refresh_id, r.status)),
                None => off_version(ctx, state, from.ami.as_deref()).await?,
            };
            let (r, why) = previous_target(&state.history(), current, unfinished.as_deref()).map_err(refused)?;
            (Resolved::Release(r), why)
        }
        _ => (resolve(spec, &state.history(), Some(current)).map_err(refused)?, format!("--to {target}")),
    };
    let (to, new_version) = match resolved {
        Resolved::Release(r) => {
            let to = ReleaseRef::of_record(&r);
            let ami = to.ami.clone().ok_or_else(|| {
                Error::precondition(format!("cannot roll {name} back to {target}: launch-template version {} sets no image", r.version))
            })?;
            let commit = to.commit.as_deref().map(|c| format!("{c} ")).unwrap_or_default();
            require_available(ctx, &ami, &format!("release {commit}(version {}) of {name}", r.version), target).await?;
            (to, false)
        }
        Resolved::Image { ami, commit } => (find_image(ctx, name, ami, commit, target).await?, true),
    };
    // Undoing the refresh in flight already lands on the group's own version. Otherwise deploy decides:
    // a fleet already verified on the target is left alone ("already on it"), a mixed one converges.
    let refresh = !(undo.is_some() && to.version == Some(current) && !new_version);
    let (policy, warm_pool) = (state.group.mixed_instances.clone(), state.group.warm_pool.is_some());
    let override_images = state.override_images();
    Ok(GroupPlan { group: name.clone(), template_id: state.template.id.clone(), from, undo, to, new_version, refresh, why, policy, warm_pool, override_images })
}

/// "N instances run ami-…" when members of the group run another image than its version launches.
async fn off_version(ctx: &Ctx, state: &GroupState, image: Option<&str>) -> Result<Option<String>> {
    let pool = state.group.warm_pool.as_ref().and_then(|w| w.instances.as_deref()).unwrap_or_default();
    let ids: Vec<String> = state.group.instances.iter().filter(|i| i.is_member()).chain(pool).map(|i| i.id.clone()).collect();
    let found = ctx.cloud.ec2.describe_instances(&ids).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let mut off: Vec<String> = found.into_iter().filter(|i| Some(i.image_id.as_str()) != image).map(|i| i.image_id).collect();
    if off.is_empty() {
        return Ok(None);
    }
    let n = off.len();
    off.sort();
    off.dedup();
    Ok(Some(format!("{n} instance(s) run {}, left by a change that did not finish", off.join(", "))))
}

/// The image must exist and be available: a deregistered one cannot launch instances.
async fn require_available(ctx: &Ctx, ami: &str, what: &str, target: &str) -> Result<()> {
    let found = images::by_id(ctx, ami).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    match found.as_ref().map(|i| &i.state) {
        Some(ImageState::Available) => Ok(()),
        Some(state) => Err(Error::precondition(format!("cannot roll back to {target}: {what}: AMI {ami} is {state:?}, not available"))),
        // DescribeImages cannot tell a deregistered image from one that never existed.
        None => Err(Error::precondition(format!(
            "cannot roll back to {target}: {what}: AMI {ami} is deregistered or does not exist (pruned?); pick another release (`bakeroll history`)"
        ))),
    }
}

/// A release no launch-template version records: its image, by id or by the commit it was baked for.
async fn find_image(ctx: &Ctx, group: &str, ami: Option<String>, commit: Option<String>, target: &str) -> Result<ReleaseRef> {
    if let Some(ami) = ami {
        require_available(ctx, &ami, "unknown release", target).await?;
        return Ok(ReleaseRef { version: None, ami: Some(ami), commit });
    }
    let commit = commit.unwrap_or_default();
    match images::for_commit(ctx, &commit).await.map_err(|e| Error::cloud(e, "nothing was changed"))? {
        CommitImage::Ours(i) if i.state == ImageState::Available => Ok(ReleaseRef { version: None, ami: Some(i.id), commit: Some(commit) }),
        CommitImage::Ours(i) => Err(Error::precondition(format!("cannot roll back to {target}: its AMI {} is {:?}, not available", i.id, i.state))),
        CommitImage::None { name } | CommitImage::Foreign { name, .. } => Err(Error::precondition(format!(
            "cannot roll {group} back to {target}: unknown release (no launch-template version records it and no AMI named {name} exists; deregistered?)"
        ))),
    }
}

/// Carries the plan out, group by group.
pub async fn execute(ctx: &Ctx, env: &Environment, plan: &RollbackPlan) -> (RollbackReport, Result<()>) {
    let mut report = RollbackReport { plan: plan.clone(), groups: vec![] };
    let mut errors: Vec<(String, Error)> = Vec::new();
    for g in &plan.groups {
        let (result, error) = execute_group(ctx, env, &plan.env, g).await;
        report.groups.push(result);
        if let Some(e) = error {
            errors.push((g.group.clone(), e));
        }
    }
    (report, crate::error::most_serious(errors))
}

async fn execute_group(ctx: &Ctx, env: &Environment, env_name: &str, g: &GroupPlan) -> (GroupResult, Option<Error>) {
    let mut result = GroupResult { group: g.group.clone(), undo: None, deploy: None };
    if let Some(inflight) = &g.undo {
        ctx.events.phase(&g.group, Stage::Undo, format!("rolling back instance refresh {} ({})", inflight.refresh_id, inflight.status));
        let (outcome, ids) = undo(ctx, env, g, inflight).await;
        result.undo = Some(Undone { outcome: outcome.clone(), refresh_ids: ids.clone() });
        if let Some(Outcome::Failed { detail, .. }) = outcome {
            let state = format!("{}: NOT VERIFIED — {detail}; refreshes {}", g.group, ids.join(", "));
            let release = inflight.release.describe();
            return (result, Some(Error::NeedsHuman { env: env_name.into(), release, detail, state }));
        }
        ctx.events.info(&g.group, format!("back on {}, verified healthy", g.from.describe()));
    }
    if !g.refresh {
        return (result, None);
    }
    // No alarms: `rollback` is what runs while production is on fire, and AWS refuses to start a
    // refresh whose alarms are in ALARM.
    let one = Environment { auto_scaling_groups: Some(vec![g.group.clone()]), waves: None, alarms: vec![], ..env.clone() };
    let req = DeployRequest {
        env: env_name.into(),
        image_id: g.to.ami.clone().unwrap_or_default(),
        commit: g.to.commit.clone(),
        // The fleet being unhealthy is the usual reason to roll back: never refuse for it.
        force: true,
        existing_version: if g.new_version { None } else { g.to.version },
    };
    ctx.events.phase(&g.group, Stage::Rollback, format!("rolling {} back to {}", g.group, g.to.describe()));
    let (DeployReport { groups, .. }, res) = deploy::deploy(ctx, &one, &req).await;
    result.deploy = groups.into_iter().next();
    (result, res.err())
}

async fn undo(ctx: &Ctx, env: &Environment, g: &GroupPlan, inflight: &InFlight) -> (Option<Outcome>, Vec<String>) {
    let old = Release {
        version: g.from.version.unwrap_or_default(),
        image_id: g.from.ami.clone().unwrap_or_default(),
        policy: g.policy.clone(),
        also: g.override_images.clone(),
    };
    let new = Release {
        version: inflight.release.version.unwrap_or_default(),
        image_id: inflight.release.ami.clone().unwrap_or_default(),
        policy: inflight.policy.clone(),
        also: vec![],
    };
    let status = crate::core::model::RefreshStatus::parse(&inflight.status);
    let rollout = Rollout::undo(rollout_params(env), old, new, inflight.refresh_id.clone(), &status);
    let target = WatchTarget::of(env, &g.group, &g.template_id, vec![], g.warm_pool);
    let (rollout, outcome) = watch::drive(ctx, &target, rollout).await;
    let mut ids = vec![inflight.refresh_id.clone()];
    ids.extend(rollout.refresh_ids.into_iter().filter(|id| *id != inflight.refresh_id));
    (outcome, ids)
}

//! Rollback: put every group of an environment back on an earlier release, under the release rule of
//! `core::release`. `decide` (decide.rs) reads the groups and resolves the target before anything
//! changes; `execute` carries the decision out in two steps, both through the release driver:
//! 1. refreshes in flight are undone (RollbackInstanceRefresh, or a rollback already under way watched)
//!    all at once — a restore: never stopped, never undone, since undoing a rollback would bring the bad
//!    release back;
//! 2. the groups whose target is not what step 1 left are moved to it as a release over the
//!    environment's waves in reverse (last wave first, a wave's groups together), with deploy's health gate
//!    and verification: the first group that fails moves every group this step moved back to where it was.

mod decide;

pub use decide::{decide, GroupDecision, InFlight, RollbackDecision};

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

use super::deploy::{self, DeployRequest, GroupReport};
use super::driver::{self, Job, Started};
use super::preflight::{self, ReleaseKey};
use super::start::Target;
use super::watch::Lane;
use super::{Ctx, RefreshKind};
use crate::core::model::RefreshStatus;
use crate::core::release::{Cause, GroupEnd, ReleasePlan, Verdict};
use crate::core::rollout::{Outcome, Release, Rollout};
use crate::core::settings::EnvSettings;
use crate::error::{Error, Result};
use crate::events::Stage;

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
    /// The decision (the JSON summary's `rollback` key).
    pub decision: RollbackDecision,
    pub groups: Vec<GroupResult>,
}

/// Carries the decision out: refreshes in flight undone first, then the moves to the target.
pub async fn execute(ctx: &Ctx, env: &EnvSettings, decision: &RollbackDecision) -> (RollbackReport, Result<()>) {
    let mut report = RollbackReport {
        decision: decision.clone(),
        groups: decision.groups.iter().map(|g| GroupResult { group: g.group.clone(), undo: None, deploy: None }).collect(),
    };
    let in_flight: Vec<&GroupDecision> = decision.groups.iter().filter(|g| g.undo.is_some()).collect();
    if !in_flight.is_empty() {
        let mut job = RestoreJob { env, decisions: in_flight.iter().map(|g| (g.group.clone(), (*g).clone())).collect(), undone: BTreeMap::new() };
        let mut plan = ReleasePlan::restore(in_flight.iter().map(|g| g.group.clone()).collect());
        let verdict = driver::run(ctx, &mut plan, &mut job, &[], env.poll).await;
        let mut failed = Vec::new();
        for r in report.groups.iter_mut() {
            if let Some(u) = job.undone.remove(&r.group) {
                if let Some(Outcome::Failed { detail, .. }) = &u.outcome {
                    failed.push(format!("{}: NOT VERIFIED — {detail}; refreshes {}", r.group, u.refresh_ids.join(", ")));
                }
                r.undo = Some(u);
            }
        }
        if verdict == Verdict::Stuck {
            // A group whose rollback failed needs a human before anything else moves.
            let release = in_flight.iter().filter_map(|g| g.undo.as_ref()).map(|u| u.release.describe()).collect::<Vec<_>>().join(", ");
            let state = format!("{}; nothing else was changed", failed.join("; "));
            return (report, Err(Error::NeedsHuman { env: env.name.clone(), release, detail: "undoing the refresh in flight failed".into(), state }));
        }
    }
    let moving: Vec<String> = decision.groups.iter().filter(|g| g.refresh).map(|g| g.group.clone()).collect();
    if moving.is_empty() {
        return (report, Ok(()));
    }
    let (deployed, result) = move_to_target(ctx, env, decision, &moving).await;
    for r in report.groups.iter_mut() {
        if let Some(g) = deployed.iter().find(|g| g.group == r.group) {
            r.deploy = Some(g.clone());
        }
    }
    (report, result)
}

/// Step 2: the groups in `moving` go to their targets as one release over the waves in reverse. The
/// fleet being unhealthy is the usual reason to roll back: preflight never refuses for it. No alarms:
/// `rollback` runs while production is on fire, and AWS refuses to start a refresh whose alarms are in ALARM.
async fn move_to_target(ctx: &Ctx, env: &EnvSettings, decision: &RollbackDecision, moving: &[String]) -> (Vec<GroupReport>, Result<()>) {
    let mut reversed = env.only(moving);
    reversed.waves.reverse();
    reversed.alarms.clear();
    for s in reversed.groups.values_mut() {
        *s = s.without_alarms();
    }
    let key = ReleaseKey { ami: None, commit: None };
    let prepared = match preflight::check_all(ctx, &reversed, key, true).await {
        Ok(p) => p,
        Err(e) => return (vec![], Err(e)),
    };
    let targets: BTreeMap<String, Target> = decision
        .groups
        .iter()
        .filter(|g| moving.contains(&g.group))
        .map(|g| {
            let existing_version = if g.new_version { None } else { g.to.version };
            let target = Target {
                env: env.name.clone(),
                image_id: g.to.ami.clone().unwrap_or_default(),
                commit: g.to.commit.clone(),
                existing_version,
                forced: g.forced.clone(),
            };
            ctx.events.phase(&g.group, Stage::Rollback, format!("rolling {} back to {}", g.group, g.to.describe()));
            (g.group.clone(), target)
        })
        .collect();
    let first = targets.values().next().cloned().expect("a group to move");
    let req = DeployRequest { env: env.name.clone(), image_id: first.image_id, commit: first.commit, force: true, targets, images: BTreeMap::new() };
    let (report, result) = deploy::release(ctx, &reversed, &req, prepared, None).await;
    (report.groups, result)
}

/// Step 1: each refresh in flight rolled back and the group verified on its own version.
struct RestoreJob<'a> {
    env: &'a EnvSettings,
    decisions: BTreeMap<String, GroupDecision>,
    undone: BTreeMap<String, Undone>,
}

#[async_trait]
impl Job for RestoreJob<'_> {
    async fn start(&mut self, ctx: &Ctx, groups: &[String]) -> Vec<(String, Started)> {
        let mut out = Vec::new();
        for group in groups {
            let g = &self.decisions[group];
            let inflight = g.undo.as_ref().expect("a group with a refresh in flight");
            ctx.events.phase(group, Stage::Undo, format!("rolling back instance refresh {} ({})", inflight.refresh_id, inflight.status));
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
            let settings = self.env.group(group);
            let status = RefreshStatus::parse(&inflight.status);
            let rollout = Rollout::undo(settings.rollout, old, new, inflight.refresh_id.clone(), &status);
            ctx.ledger.refresh_started(group, &inflight.refresh_id, RefreshKind::Back);
            let lane = Lane::new(group, &settings, &g.template_id, vec![], g.warm_pool, rollout, RefreshKind::Back);
            out.push((group.clone(), Started::Lane(Box::new(lane))));
        }
        out
    }

    fn undo(&mut self, _ctx: &Ctx, group: &str, _cause: &Cause) -> Lane {
        unreachable!("a restore is never undone ({group})")
    }

    async fn ended(&mut self, ctx: &Ctx, lane: Lane, outcome: Option<Outcome>) -> GroupEnd {
        let g = &self.decisions[&lane.scope];
        let inflight = g.undo.as_ref().expect("a group with a refresh in flight");
        let mut ids = vec![inflight.refresh_id.clone()];
        ids.extend(lane.rollout.refresh_ids.iter().filter(|id| **id != inflight.refresh_id).cloned());
        let end = match &outcome {
            Some(Outcome::Failed { .. }) => GroupEnd::Unverified,
            _ => {
                ctx.events.info(&lane.scope, format!("back on {}, verified healthy", g.from.describe()));
                GroupEnd::Restored
            }
        };
        self.undone.insert(lane.scope.clone(), Undone { outcome, refresh_ids: ids });
        end
    }
}

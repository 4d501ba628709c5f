//! Instance refresh, the API side and the status machine: Pending → InProgress → (Baking →) Successful, with
//! Cancelling → Cancelled, Failed, and RollbackInProgress → RollbackSuccessful | RollbackFailed. The batch
//! replacement itself lives in `rollout.rs`.

use crate::cloud::actions;
use std::collections::BTreeSet;

use tokio::time::{Duration, Instant};

use super::conventions::err;
use super::group_records::{Launch, Lifecycle, MemberRec, Phase, RefreshRec, Source};
use super::state::State;
use crate::cloud::CloudResult;
use crate::core::model::*;

/// DescribeInstanceRefreshes keeps six weeks of history.
const KEPT: Duration = Duration::from_secs(42 * 24 * 3600);
/// Upper bound AWS puts on CheckpointDelay and BakeTime (48 h).
const MAX_DELAY: Duration = Duration::from_secs(172_800);

impl State {
    pub fn active_refresh(&self, group: &str) -> Option<usize> {
        self.refreshes
            .iter()
            .rposition(|r| r.group == group && r.status.is_active())
    }

    /// Instances the group's active refresh launched: the refresh, not plain health replacement, handles them.
    pub fn refresh_managed(&self, group: &str) -> BTreeSet<String> {
        let phase = self
            .active_refresh(group)
            .and_then(|i| self.refreshes[i].phase.as_ref());
        phase.map(|p| p.launched.clone()).unwrap_or_default()
    }

    /// Whether `m` already runs one of `target`'s launches (SkipMatching).
    pub fn matches(&self, m: &MemberRec, target: &[Launch]) -> bool {
        target.iter().any(|l| l.origin == m.origin && l.instance_type.as_ref().is_none_or(|t| self.instance_type_of(&m.id).as_ref() == Some(t)))
    }

    fn new_phase(&self, group: &str, target: Vec<Launch>, skip_matching: bool, prefs: &RefreshPrefs) -> Phase {
        let left = prefs.left_alone();
        let standby_terminated = prefs.standby_instances == Some(StandbyInstances::Terminate);
        let to_replace = self.groups[group]
            .members
            .iter()
            .filter(|m| m.lifecycle != Lifecycle::Terminating)
            .filter(|m| !(skip_matching && self.matches(m, &target)))
            .filter(|m| !(m.lifecycle == Lifecycle::Standby && (left.standby || standby_terminated)))
            .filter(|m| !(m.protected && left.protected))
            .map(|m| m.id.clone())
            .collect();
        Phase {
            target,
            to_replace,
            launched: BTreeSet::new(),
            failures: 0,
            last_failure: None,
            retry_at: None,
            stuck_since: None,
        }
    }

    pub fn start_refresh(&mut self, req: &RefreshRequest) -> CloudResult<String> {
        const A: &str = actions::START_REFRESH.name;
        let g = self.group_or_err(A, &req.group)?;
        if self.active_refresh(&req.group).is_some() {
            let msg = "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.";
            return Err(err(A, "InstanceRefreshInProgress", msg));
        }
        let invalid = |msg: String| err(A, "ValidationError", msg);
        validate(&req.prefs).map_err(invalid)?;
        self.check_alarms_at_start(&req.prefs.alarms)?;
        for (id, version) in req.desired.launches() {
            let template = self
                .templates
                .get(id)
                .ok_or_else(|| invalid(format!("The specified launch template, with template ID {id}, does not exist.")))?;
            template.resolve(version).ok_or_else(|| invalid(format!("Could not find launch template version {version} of {id}.")))?;
        }
        if req.desired.policy().is_some() && g.warm.is_some() {
            return Err(invalid("You cannot use a mixed instances policy with a warm pool.".into()));
        }
        if req.prefs.auto_rollback && !self.reversible(&req.group) {
            let msg = format!("AutoRollback is not supported when the group uses {}.", describe_source(&g.source));
            return Err(invalid(msg));
        }
        let target = self.resolve_source(&Source::of(&req.desired)).expect("checked above");
        let to_update = self.new_phase(&req.group, target.clone(), req.prefs.skip_matching, &req.prefs).to_replace.len();
        let warm_progress = g.warm.as_ref().map(|_| (0, 0));
        let id = self.next_uuid();
        self.refreshes.push(RefreshRec {
            id: id.clone(),
            group: req.group.clone(),
            status: RefreshStatus::Pending,
            reason: None,
            started: self.now,
            ended: None,
            prefs: req.prefs.clone(),
            desired: req.desired.clone(),
            target,
            pending_until: self.now + self.timings.refresh_pending,
            phase: None,
            rollback_reason: None,
            checkpoint: 0,
            checkpoint_until: None,
            bake_until: None,
            percentage: 0,
            to_update: to_update as i32,
            warm_progress,
        });
        Ok(id)
    }

    pub fn refresh_view(&self, r: &RefreshRec) -> Refresh {
        Refresh {
            id: r.id.clone(),
            group: r.group.clone(),
            status: r.status.clone(),
            status_reason: r.reason.clone(),
            percentage_complete: Some(r.percentage),
            instances_to_update: Some(r.to_update),
            desired_version: Some(r.desired.template().version.clone()),
            desired: Some(r.desired.clone()),
            rollback_reason: r.rollback_reason.clone(),
            start_time: Some(self.unix(r.started)),
            end_time: r.ended.map(|t| self.unix(t)),
            warm_pool_percentage: r.warm_progress.map(|(p, _)| p),
            warm_pool_to_update: r.warm_progress.map(|(_, n)| n),
        }
    }

    /// Newest first; only the last six weeks are kept, as in AWS.
    pub fn describe_refreshes(&self, group: &str, ids: &[String]) -> Vec<Refresh> {
        self.refreshes
            .iter()
            .rev()
            .filter(|r| r.group == group && (ids.is_empty() || ids.contains(&r.id)))
            .filter(|r| r.started + KEPT > self.now)
            .map(|r| self.refresh_view(r))
            .collect()
    }

    /// Stops starting replacements; nothing is undone. Cancelling again answers with the same id.
    pub fn cancel_refresh(&mut self, group: &str, reason: &str) -> CloudResult<String> {
        const A: &str = actions::CANCEL_REFRESH.name;
        self.group_or_err(A, group)?;
        let idx = self.active_refresh(group).ok_or_else(|| no_active(A, group))?;
        let r = &mut self.refreshes[idx];
        if r.status != RefreshStatus::Cancelling {
            r.status = RefreshStatus::Cancelling;
            r.reason = Some(reason.to_string());
        }
        Ok(r.id.clone())
    }

    pub fn rollback_refresh(&mut self, group: &str) -> CloudResult<String> {
        const A: &str = actions::ROLLBACK_REFRESH.name;
        let g = self.group_or_err(A, group)?;
        let idx = self
            .active_refresh(group)
            .filter(|&i| {
                matches!(
                    self.refreshes[i].status,
                    RefreshStatus::Pending | RefreshStatus::InProgress | RefreshStatus::Baking
                )
            })
            .ok_or_else(|| no_active(A, group))?;
        if !self.reversible(group) {
            let msg = format!("The group uses {}; only numbered launch template versions can be restored.", describe_source(&g.source));
            return Err(err(A, "IrreversibleInstanceRefresh", msg));
        }
        self.begin_rollback(idx, "Rollback requested by user.".to_string());
        Ok(self.refreshes[idx].id.clone())
    }

    /// Replaces what the refresh launched with the group's current (never yet changed) configuration.
    pub fn begin_rollback(&mut self, idx: usize, reason: String) {
        let group = self.refreshes[idx].group.clone();
        let target = self.group_launches(&self.groups[&group]);
        let prefs = self.refreshes[idx].prefs.clone();
        let phase = self.new_phase(&group, target, true, &prefs);
        let r = &mut self.refreshes[idx];
        r.status = RefreshStatus::RollbackInProgress;
        r.rollback_reason = Some(reason);
        r.checkpoint_until = None;
        r.bake_until = None;
        r.percentage = 0;
        r.to_update = phase.to_replace.len() as i32;
        r.phase = Some(phase);
    }

    /// The refresh failed: roll back when AutoRollback asked for it, else stop where it is.
    pub fn fail_refresh(&mut self, idx: usize, reason: String, t: Instant) {
        let r = &self.refreshes[idx];
        let reversible = self.reversible(&r.group);
        if r.prefs.auto_rollback && reversible && r.status != RefreshStatus::RollbackInProgress {
            self.refreshes[idx].reason = Some(reason.clone());
            self.begin_rollback(idx, format!("Instance refresh failed: {reason}"));
        } else {
            self.end_refresh(idx, RefreshStatus::Failed, Some(reason), t);
        }
    }

    fn end_refresh(&mut self, idx: usize, status: RefreshStatus, reason: Option<String>, t: Instant) {
        let r = &mut self.refreshes[idx];
        r.status = status;
        r.ended = Some(t);
        if reason.is_some() {
            r.reason = reason;
        }
    }

    /// Success is the only moment the desired configuration reaches the group.
    fn succeed(&mut self, idx: usize, t: Instant) {
        let (group, desired) = {
            let r = &mut self.refreshes[idx];
            (r.percentage, r.to_update) = (100, 0);
            r.warm_progress = r.warm_progress.map(|_| (100, 0));
            (r.group.clone(), r.desired.clone())
        };
        if let Some(g) = self.groups.get_mut(&group) {
            g.source = Source::of(&desired);
        }
        self.end_refresh(idx, RefreshStatus::Successful, None, t);
    }

    pub fn step_refreshes(&mut self, t: Instant) {
        for idx in 0..self.refreshes.len() {
            let r = &self.refreshes[idx];
            // Launch, Terminate or InstanceRefresh suspended: the refresh waits, without a timeout.
            let paused = ["Launch", "Terminate", "InstanceRefresh"].iter().any(|p| self.suspended(&r.group, p));
            if paused && r.status.is_active() {
                continue;
            }
            match r.status {
                RefreshStatus::Pending if self.wake.due(r.pending_until, t) => {
                    let (group, target, prefs) = (r.group.clone(), r.target.clone(), r.prefs.clone());
                    let phase = self.new_phase(&group, target, prefs.skip_matching, &prefs);
                    if prefs.standby_instances == Some(StandbyInstances::Terminate) {
                        // "terminates instances that are in Standby" (no replacement: they are outside the capacity).
                        let standby: Vec<String> =
                            self.groups[&group].members.iter().filter(|m| m.lifecycle == Lifecycle::Standby).map(|m| m.id.clone()).collect();
                        standby.iter().for_each(|id| self.begin_terminate(&group, id, t));
                    }
                    let r = &mut self.refreshes[idx];
                    r.status = RefreshStatus::InProgress;
                    r.to_update = phase.to_replace.len() as i32;
                    r.phase = Some(phase);
                }
                RefreshStatus::InProgress | RefreshStatus::Baking => self.step_forward(idx, t),
                // WaitForTransitioningInstances (the default): launches under way finish first.
                RefreshStatus::Cancelling if self.census(idx, t).in_flight == 0 => {
                    self.end_refresh(idx, RefreshStatus::Cancelled, None, t)
                }
                RefreshStatus::RollbackInProgress => match self.rollout_step(idx, t, false) {
                    super::rollout::Outcome::Working => {}
                    // StatusReason keeps why the refresh failed, if it did; RollbackReason says why it rolled back.
                    super::rollout::Outcome::Done => self.end_refresh(idx, RefreshStatus::RollbackSuccessful, None, t),
                    super::rollout::Outcome::Failed(why) => {
                        self.end_refresh(idx, RefreshStatus::RollbackFailed, Some(why), t)
                    }
                },
                _ => {}
            }
        }
    }

    fn step_forward(&mut self, idx: usize, t: Instant) {
        let r = &self.refreshes[idx];
        if let Some(alarm) = self.alarm_firing(&r.prefs.alarms) {
            let why = format!("CloudWatch alarm {alarm} is in ALARM state.");
            return self.fail_refresh(idx, why, t);
        }
        match self.rollout_step(idx, t, true) {
            super::rollout::Outcome::Working => {}
            super::rollout::Outcome::Failed(why) => self.fail_refresh(idx, why, t),
            super::rollout::Outcome::Done => {
                let r = &self.refreshes[idx];
                let bake = r.prefs.bake_time.unwrap_or_default();
                if r.status == RefreshStatus::InProgress && !bake.is_zero() {
                    // After the last replacement the refresh waits, still rollbackable (AWS `Baking`).
                    let r = &mut self.refreshes[idx];
                    r.status = RefreshStatus::Baking;
                    r.bake_until = Some(t + bake);
                } else if r.bake_until.is_none_or(|until| self.wake.due(until, t)) {
                    self.succeed(idx, t);
                }
            }
        }
    }
}

impl State {
    /// AWS rolls back only to numbered versions of every template the group's configuration names
    /// (and never to a launch configuration).
    pub fn reversible(&self, group: &str) -> bool {
        match &self.groups[group].source {
            Source::Template { version, .. } => version.parse::<i64>().is_ok(),
            Source::Mixed(p) => Configuration::Mixed(p.clone()).numbered(),
            Source::Configuration(_) => false,
        }
    }
}

fn describe_source(s: &Source) -> String {
    match s {
        Source::Template { version, .. } => format!("launch template version {version}"),
        Source::Mixed(p) => format!("a mixed instances policy on launch template version {}", p.template.version),
        Source::Configuration(name) => format!("launch configuration {name}"),
    }
}

fn no_active(action: &str, group: &str) -> crate::cloud::CloudError {
    let msg = format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}");
    err(action, "ActiveInstanceRefreshNotFound", msg)
}

/// StartInstanceRefresh's documented parameter limits.
fn validate(p: &RefreshPrefs) -> Result<(), String> {
    if !(0..=100).contains(&p.min_healthy_percentage) {
        return Err(format!(
            "MinHealthyPercentage {} is not between 0 and 100.",
            p.min_healthy_percentage
        ));
    }
    if !(100..=200).contains(&p.max_healthy_percentage) {
        return Err(format!(
            "MaxHealthyPercentage {} is not between 100 and 200.",
            p.max_healthy_percentage
        ));
    }
    if p.max_healthy_percentage - p.min_healthy_percentage > 100 {
        return Err("MaxHealthyPercentage minus MinHealthyPercentage cannot exceed 100.".to_string());
    }
    let ascending = p.checkpoints.windows(2).all(|w| w[0] < w[1]);
    if !ascending || p.checkpoints.iter().any(|c| !(1..=100).contains(c)) {
        return Err("CheckpointPercentages must be unique, ascending values between 1 and 100.".to_string());
    }
    if p.checkpoint_delay.is_some_and(|d| d > MAX_DELAY) || p.bake_time.is_some_and(|d| d > MAX_DELAY) {
        return Err("CheckpointDelay and BakeTime cannot exceed 172800 seconds.".to_string());
    }
    if p.alarms.len() > 10 {
        return Err("AlarmSpecification accepts at most 10 alarms.".to_string());
    }
    Ok(())
}

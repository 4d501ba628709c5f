//! Instance refresh, the API side and the status machine: Pending → InProgress → (Baking →) Successful, with
//! Cancelling → Cancelled, Failed, and RollbackInProgress → RollbackSuccessful | RollbackFailed. The batch
//! replacement itself lives in `rollout.rs`.

use crate::cloud::actions;
use std::collections::BTreeSet;

use tokio::time::{Duration, Instant};

use super::ec2::err;
use super::state::State;
use crate::cloud::CloudResult;
use crate::core::model::*;

/// DescribeInstanceRefreshes keeps six weeks of history.
const KEPT: Duration = Duration::from_secs(42 * 24 * 3600);
/// Upper bound AWS puts on CheckpointDelay and BakeTime (48 h).
const MAX_DELAY: Duration = Duration::from_secs(172_800);

#[derive(Debug)]
pub(crate) struct RefreshRec {
    pub id: String,
    pub group: String,
    pub status: RefreshStatus,
    pub reason: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
    pub prefs: RefreshPrefs,
    pub template_id: String,
    pub version: i64,
    pub pending_until: Instant,
    /// The replacement under way: forward, or the rollback's once it started.
    pub phase: Option<Phase>,
    pub rollback_reason: Option<String>,
    /// Index into `prefs.checkpoints` of the next checkpoint.
    pub checkpoint: usize,
    pub checkpoint_until: Option<Instant>,
    pub bake_until: Option<Instant>,
    pub percentage: i32,
    pub to_update: i32,
}

/// One replacement pass: move the group's members onto (template, version).
#[derive(Debug)]
pub(crate) struct Phase {
    pub template_id: String,
    pub version: i64,
    /// Members to replace, fixed when the phase starts.
    pub to_replace: BTreeSet<String>,
    pub launched: BTreeSet<String>,
    pub failures: u32,
    pub last_failure: Option<String>,
    pub retry_at: Option<Instant>,
}

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

    fn new_phase(&self, group: &str, template_id: &str, version: i64, skip_matching: bool) -> Phase {
        let matches = |m: &&super::autoscaling::MemberRec| m.template_id == template_id && m.version == version;
        let to_replace = self.groups[group]
            .live()
            .filter(|m| !(skip_matching && matches(m)))
            .map(|m| m.id.clone())
            .collect();
        Phase {
            template_id: template_id.to_string(),
            version,
            to_replace,
            launched: BTreeSet::new(),
            failures: 0,
            last_failure: None,
            retry_at: None,
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
        let template = self.templates.get(&req.template_id).ok_or_else(|| {
            invalid(format!(
                "The specified launch template, with template ID {}, does not exist.",
                req.template_id
            ))
        })?;
        if !template.versions.contains_key(&req.version) {
            return Err(invalid(format!(
                "Could not find launch template version {} of {}.",
                req.version, req.template_id
            )));
        }
        if req.prefs.auto_rollback && g.version.parse::<i64>().is_err() {
            let msg = format!(
                "AutoRollback is not supported when the group uses launch template version {}.",
                g.version
            );
            return Err(invalid(msg));
        }
        let to_update = self
            .new_phase(&req.group, &req.template_id, req.version, req.prefs.skip_matching)
            .to_replace
            .len();
        let id = self.next_uuid();
        self.refreshes.push(RefreshRec {
            id: id.clone(),
            group: req.group.clone(),
            status: RefreshStatus::Pending,
            reason: None,
            started: self.now,
            ended: None,
            prefs: req.prefs.clone(),
            template_id: req.template_id.clone(),
            version: req.version,
            pending_until: self.now + self.timings.refresh_pending,
            phase: None,
            rollback_reason: None,
            checkpoint: 0,
            checkpoint_until: None,
            bake_until: None,
            percentage: 0,
            to_update: to_update as i32,
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
            desired_version: Some(r.version.to_string()),
            rollback_reason: r.rollback_reason.clone(),
            start_time: Some(self.unix(r.started)),
            end_time: r.ended.map(|t| self.unix(t)),
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
        if g.version.parse::<i64>().is_err() {
            let msg = format!(
                "The group uses launch template version {}; only a numbered version can be restored.",
                g.version
            );
            return Err(err(A, "IrreversibleInstanceRefresh", msg));
        }
        self.begin_rollback(idx, "Rollback requested by user.".to_string());
        Ok(self.refreshes[idx].id.clone())
    }

    /// Replaces what the refresh launched with the group's current (never yet changed) configuration.
    pub fn begin_rollback(&mut self, idx: usize, reason: String) {
        let group = self.refreshes[idx].group.clone();
        let g = &self.groups[&group];
        let (template_id, version) = (g.template_id.clone(), self.group_version(g).unwrap_or(0));
        let phase = self.new_phase(&group, &template_id, version, true);
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
        let reversible = self.groups[&r.group].version.parse::<i64>().is_ok();
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
        let (group, template_id, version) = {
            let r = &mut self.refreshes[idx];
            (r.percentage, r.to_update) = (100, 0);
            (r.group.clone(), r.template_id.clone(), r.version)
        };
        if let Some(g) = self.groups.get_mut(&group) {
            g.template_id = template_id;
            g.version = version.to_string();
        }
        self.end_refresh(idx, RefreshStatus::Successful, None, t);
    }

    pub fn step_refreshes(&mut self, t: Instant) {
        for idx in 0..self.refreshes.len() {
            let r = &self.refreshes[idx];
            match r.status {
                RefreshStatus::Pending if self.wake.due(r.pending_until, t) => {
                    let phase = self.new_phase(&r.group, &r.template_id, r.version, r.prefs.skip_matching);
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

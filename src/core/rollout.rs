//! The rollout state machine for one Auto Scaling group: from a started instance refresh to a verified
//! outcome. `step` turns an observation into a decision (wait, act, finish); `on_action` takes the
//! result of an action. No I/O, no sleeping: the driver in `crate::engine::watch` does both.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::health::{verify, GateParams, HealthByGroup, HealthGate};
use super::metric_gate::MetricGate;
use super::metric_verdict::MetricParams;
use super::metrics::MetricsSeen;
use super::model::{Alarm, Group, LeftAlone, LeftBehind, PoolInstance, Refresh, RefreshStatus};

pub use super::outcome::{Outcome, Release, RollbackReason};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolloutParams {
    pub poll: Duration,
    /// From the start of the refresh to the decision to roll back for lack of progress.
    pub timeout: Duration,
    /// How long a finished refresh or rollback may take to show a verified-healthy fleet.
    pub verify_timeout: Duration,
    pub gate: GateParams,
    /// Instances the refresh's preferences leave on their image (Standby / protected, `Ignore`).
    pub left_alone: LeftAlone,
    /// The metric gate's settings (its plan comes with `Rollout::with_metrics`).
    pub metrics: MetricParams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Action {
    /// RollbackInstanceRefresh on the group (the refresh is still active).
    RollbackRefresh,
    /// CancelInstanceRefresh: needed before a new refresh when AWS refuses a native rollback.
    CancelRefresh,
    /// A new refresh back to the previous version (the forward refresh has ended).
    StartRollbackRefresh { version: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Wait(Duration),
    Act(Action),
    Finish(Outcome),
}

/// How an action went, as the driver reports it back.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionResult {
    Started { refresh_id: String },
    Cancelled,
    /// Refused with this AWS error code (e.g. ActiveInstanceRefreshNotFound).
    Refused { code: String, message: String },
    Error { message: String },
}

/// What one poll saw.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Elapsed since the rollout started.
    pub now: Duration,
    /// The refresh being watched (see `Rollout::watched_refresh`), if AWS still reports it.
    pub refresh: Option<Refresh>,
    pub group: Group,
    /// Instance id → image id: from each instance's launch-template version (`Rollout::release_images`),
    /// from EC2 for the others.
    pub images: BTreeMap<String, String>,
    /// Every member's image came from EC2 this poll (what `Rollout::wants_instance_images` asks for).
    pub images_confirmed: bool,
    pub health: HealthByGroup,
    /// The alarms of the refresh's AlarmSpecification, fetched only when the refresh failed or AWS
    /// rolled it back (`may_be_an_alarm`), so the outcome can name the alarm.
    pub alarms: Option<Vec<Alarm>>,
    /// Wall-clock time of the poll, Unix ms (the metric gate lines polls up with CloudWatch's minutes).
    pub wall_ms: i64,
    /// What GetMetricData returned this poll, when the rollout asked (`Rollout::metric_ask`).
    pub metrics: Option<MetricsSeen>,
}

/// A refresh in this status may have been stopped by an alarm: worth one DescribeAlarms to say which.
pub fn may_be_an_alarm(status: &RefreshStatus) -> bool {
    matches!(
        status,
        RefreshStatus::Failed | RefreshStatus::RollbackInProgress | RefreshStatus::RollbackSuccessful | RefreshStatus::RollbackFailed
    )
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    Refreshing { refresh_id: String },
    RollingBack { refresh_id: String },
    Cancelling { refresh_id: String },
    /// A decision to start a rollback refresh is out; waiting for its result.
    StartingRollback,
    RollbackRefreshing { refresh_id: String },
    Verifying { release: Which, since_secs: u64 },
    Done,
}

/// Which release a verification expects the fleet on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Which {
    New,
    Previous,
}

/// A phase without its data: what timelines, progress events and the JSON summary name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseName {
    Refreshing,
    RollingBack,
    Cancelling,
    StartingRollback,
    RollbackRefreshing,
    Verifying,
    Done,
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refreshing => "refreshing",
            Self::RollingBack => "rolling-back",
            Self::Cancelling => "cancelling",
            Self::StartingRollback => "starting-rollback",
            Self::RollbackRefreshing => "rollback-refreshing",
            Self::Verifying => "verifying",
            Self::Done => "done",
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Phase {
    pub fn name(&self) -> PhaseName {
        match self {
            Phase::Refreshing { .. } => PhaseName::Refreshing,
            Phase::RollingBack { .. } => PhaseName::RollingBack,
            Phase::Cancelling { .. } => PhaseName::Cancelling,
            Phase::StartingRollback => PhaseName::StartingRollback,
            Phase::RollbackRefreshing { .. } => PhaseName::RollbackRefreshing,
            Phase::Verifying { .. } => PhaseName::Verifying,
            Phase::Done => PhaseName::Done,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rollout {
    pub params: RolloutParams,
    pub old: Release,
    pub new: Release,
    pub phase: Phase,
    pub reason: Option<RollbackReason>,
    /// Every refresh id this rollout started or watched, in order.
    pub refresh_ids: Vec<String>,
    /// (elapsed, phase name) each time the phase changed: the timeline for reports.
    pub timeline: Vec<(Duration, PhaseName)>,
    /// What the verification that ended the rollout left on another image because the preferences
    /// asked it to (reported, never counted as verified).
    pub left_behind: Vec<LeftBehind>,
    /// The warm pool as the last verification saw it (None: the group has none).
    pub warm_pool: Option<Vec<PoolInstance>>,
    gate: HealthGate,
    /// The load balancer's metrics of the new release (forward rollouts whose group has some).
    metrics: Option<MetricGate>,
    /// What the rollout has to say beyond its decisions (the metric gate's waits and measures).
    notes: Vec<String>,
    phase_since: Duration,
    verify_since: Duration,
    action_errors: u32,
    /// An action to re-issue at the next step (after a transient refusal).
    retry: Option<Action>,
    /// `stop` was called.
    stopped: bool,
    /// The fleet verified on launch-template versions; one more look with EC2's images confirms it.
    confirming: bool,
}

/// Transient action errors tolerated before giving up on a rollback (with `poll` between tries).
const MAX_ACTION_ERRORS: u32 = 5;

impl Rollout {
    /// `baseline`: the group's instances before the refresh started (they are not judged by the gate).
    pub fn new(params: RolloutParams, old: Release, new: Release, refresh_id: String, baseline: Vec<String>) -> Self {
        Self {
            gate: HealthGate::new(params.gate, baseline),
            metrics: None,
            notes: Vec::new(),
            params,
            old,
            new,
            phase: Phase::Refreshing { refresh_id: refresh_id.clone() },
            reason: None,
            refresh_ids: vec![refresh_id],
            timeline: vec![(Duration::ZERO, PhaseName::Refreshing)],
            left_behind: Vec::new(),
            warm_pool: None,
            phase_since: Duration::ZERO,
            verify_since: Duration::ZERO,
            action_errors: 0,
            retry: None,
            stopped: false,
            confirming: false,
        }
    }

    /// A rollout that goes back: a new refresh from `from` to `to` (manual rollback, or undoing a group
    /// that deployed before a sibling group failed). The first step starts that refresh.
    pub fn back_to(params: RolloutParams, from: Release, to: Release, reason: RollbackReason) -> Self {
        let mut r = Self::new(params, to, from, String::new(), Vec::new());
        r.refresh_ids.clear();
        r.reason = Some(reason);
        r.timeline.clear();
        r.enter(Phase::StartingRollback, Duration::ZERO);
        r.retry = Some(Action::StartRollbackRefresh { version: r.old.version });
        r
    }

    /// Undoes a refresh that is in flight (`bakeroll rollback` while a deploy refreshes or bakes): asks AWS
    /// to roll it back — or keeps watching a rollback or cancellation already under way — then verifies
    /// the fleet on `old`, the group's saved version. A refresh that ends before AWS accepts the request
    /// is undone with a new refresh to `old`, as in a deploy.
    pub fn undo(params: RolloutParams, old: Release, new: Release, refresh_id: String, status: &RefreshStatus) -> Self {
        let mut r = Self::new(params, old, new, refresh_id.clone(), Vec::new());
        r.reason = Some(RollbackReason::Requested);
        r.timeline.clear();
        match status {
            RefreshStatus::RollbackInProgress => r.enter(Phase::RollingBack { refresh_id }, Duration::ZERO),
            RefreshStatus::Cancelling => r.enter(Phase::Cancelling { refresh_id }, Duration::ZERO),
            _ => {
                r.enter(Phase::StartingRollback, Duration::ZERO);
                r.retry = Some(Action::RollbackRefresh);
            }
        }
        r
    }

    /// The operator asked to stop. A forward refresh still running is rolled back (and the rollback then
    /// verified as after any failure); a rollback under way, or a forward change AWS already completed
    /// and that is being verified, goes on to its end: undoing a rollback would redeploy the bad release.
    /// Returns the decision to act on now, if the stop changes anything.
    pub fn stop(&mut self, signal: &str, now: Duration) -> Option<Decision> {
        self.stop_with(RollbackReason::Interrupted { signal: signal.to_string() }, now)
    }

    /// `stop` for another reason than a signal: the release was convicted in another group, and every
    /// group it moved goes back (`core::release`).
    pub fn stop_with(&mut self, reason: RollbackReason, now: Duration) -> Option<Decision> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        match self.phase {
            Phase::Refreshing { .. } if self.reason.is_none() => {
                self.retry = None;
                Some(self.roll_back(reason, now))
            }
            _ => None,
        }
    }

    /// The refresh whose status the driver should fetch for the next observation.
    pub fn watched_refresh(&self) -> Option<&str> {
        match &self.phase {
            Phase::Refreshing { refresh_id }
            | Phase::RollingBack { refresh_id }
            | Phase::Cancelling { refresh_id }
            | Phase::RollbackRefreshing { refresh_id } => Some(refresh_id),
            _ => self.refresh_ids.last().map(String::as_str),
        }
    }

    /// Everything the health gate holds against the release so far.
    pub fn evidence(&self) -> &[super::gate::Evidence] {
        self.gate.evidence()
    }

    /// Whether the next observation needs the refresh's status: not while verifying the fleet (the
    /// refresh has ended) or once done, which keeps a confirming poll within 2 + target-group calls.
    pub fn needs_refresh_status(&self) -> bool {
        !matches!(self.phase, Phase::Verifying { .. } | Phase::Done)
    }

    /// Whether the next observation should take every member's image from EC2 (DescribeInstances):
    /// only to confirm a verification that passed on launch-template versions.
    pub fn wants_instance_images(&self) -> bool {
        self.confirming && matches!(self.phase, Phase::Verifying { .. })
    }

    /// Images of the group's instances that launched from `template_id` at one of the two releases'
    /// versions, as DescribeAutoScalingGroups reports each instance's version; and the ids of the others,
    /// whose image only EC2 can tell.
    pub fn release_images(&self, group: &Group, template_id: &str) -> (BTreeMap<String, String>, Vec<String>) {
        let mut known = BTreeMap::new();
        let mut unknown = Vec::new();
        for inst in group.all_instances() {
            let release = inst.launch_template.as_ref().and_then(|t| {
                let v = t.numbered_version()?;
                [&self.old, &self.new].into_iter().find(|r| r.launched(template_id, &t.id, v))
            });
            match release {
                Some(r) => {
                    known.insert(inst.id.clone(), r.image_id.clone());
                }
                None => unknown.push(inst.id.clone()),
            }
        }
        (known, unknown)
    }

    fn enter(&mut self, phase: Phase, now: Duration) {
        self.timeline.push((now, phase.name()));
        self.phase = phase;
        self.phase_since = now;
    }

    fn roll_back(&mut self, reason: RollbackReason, now: Duration) -> Decision {
        self.reason.get_or_insert(reason);
        self.enter(Phase::StartingRollback, now);
        Decision::Act(Action::RollbackRefresh)
    }

    fn roll_forward_back(&mut self, reason: Option<RollbackReason>, now: Duration) -> Decision {
        if let Some(r) = reason {
            self.reason.get_or_insert(r);
        }
        self.enter(Phase::StartingRollback, now);
        Decision::Act(Action::StartRollbackRefresh { version: self.old.version })
    }

    fn finish(&mut self, outcome: Outcome, now: Duration) -> Decision {
        self.enter(Phase::Done, now);
        Decision::Finish(outcome)
    }

    fn fail(&mut self, detail: impl Into<String>, now: Duration) -> Decision {
        let outcome = Outcome::Failed { reason: self.reason.clone(), detail: detail.into() };
        self.finish(outcome, now)
    }

    fn verify(&mut self, release: Which, now: Duration) -> Decision {
        self.verify_since = now;
        self.enter(Phase::Verifying { release, since_secs: now.as_secs() }, now);
        Decision::Wait(Duration::ZERO)
    }

    fn wait(&self) -> Decision {
        Decision::Wait(self.params.poll)
    }

    pub fn step(&mut self, obs: &Observation) -> Decision {
        let decision = self.step_phase(obs);
        self.sooner_for_metrics(decision, obs.wall_ms)
    }

    fn step_phase(&mut self, obs: &Observation) -> Decision {
        if let Some(action) = self.retry.take() {
            return Decision::Act(action);
        }
        let now = obs.now;
        let status = obs.refresh.as_ref().map(|r| r.status.clone());
        let metric_evidence = self.judge_metrics(obs);
        match self.phase.clone() {
            Phase::Refreshing { .. } => self.step_refreshing(obs, status),
            Phase::RollingBack { .. } => match status {
                Some(RefreshStatus::RollbackSuccessful) => self.verify(Which::Previous, now),
                Some(RefreshStatus::RollbackFailed) => self.fail(refresh_detail("the rollback failed", obs), now),
                // The rollback request was overtaken: the refresh ended on its own. Go back with a new refresh.
                Some(RefreshStatus::Successful | RefreshStatus::Failed | RefreshStatus::Cancelled) => {
                    self.roll_forward_back(None, now)
                }
                _ if now.saturating_sub(self.phase_since) > self.params.timeout => {
                    self.fail(format!("the rollback did not finish within {}s", self.params.timeout.as_secs()), now)
                }
                _ => self.wait(),
            },
            Phase::Cancelling { .. } => match status {
                Some(s) if s.is_terminal() => self.roll_forward_back(None, now),
                _ if now.saturating_sub(self.phase_since) > self.params.timeout => {
                    self.fail("the refresh did not finish cancelling", now)
                }
                _ => self.wait(),
            },
            Phase::RollbackRefreshing { .. } => match status {
                Some(RefreshStatus::Successful) => self.verify(Which::Previous, now),
                Some(s) if s.is_terminal() => {
                    self.fail(refresh_detail(&format!("the rollback refresh ended {}", s.as_str()), obs), now)
                }
                _ if now.saturating_sub(self.phase_since) > self.params.timeout => {
                    self.fail(format!("the rollback refresh did not finish within {}s", self.params.timeout.as_secs()), now)
                }
                _ => self.wait(),
            },
            Phase::Verifying { release, .. } => self.step_verifying(obs, release, metric_evidence > 0),
            // The driver must report an action's result before observing again; keep waiting.
            Phase::StartingRollback | Phase::Done => self.wait(),
        }
    }

    fn step_refreshing(&mut self, obs: &Observation, status: Option<RefreshStatus>) -> Decision {
        let now = obs.now;
        match status {
            Some(RefreshStatus::Successful) => self.verify(Which::New, now),
            Some(RefreshStatus::RollbackInProgress) => {
                self.reason.get_or_insert_with(|| aws_or_alarm(obs, true));
                let id = self.watched_refresh().unwrap_or_default().to_string();
                self.enter(Phase::RollingBack { refresh_id: id }, now);
                self.wait()
            }
            Some(RefreshStatus::RollbackSuccessful) => {
                self.reason.get_or_insert_with(|| aws_or_alarm(obs, true));
                self.verify(Which::Previous, now)
            }
            Some(RefreshStatus::RollbackFailed) => {
                self.reason.get_or_insert_with(|| aws_or_alarm(obs, true));
                self.fail(refresh_detail("AWS's rollback failed", obs), now)
            }
            Some(s @ (RefreshStatus::Failed | RefreshStatus::Cancelled)) => {
                let status_reason = obs.refresh.as_ref().and_then(|r| r.status_reason.clone());
                let reason = match firing(obs) {
                    Some(alarms) => RollbackReason::Alarm { alarms, status: s.as_str().into(), status_reason, rolled_back_by_aws: false },
                    None => RollbackReason::RefreshEnded { status: s.as_str().into(), status_reason },
                };
                self.roll_forward_back(Some(reason), now)
            }
            Some(RefreshStatus::Cancelling) => self.wait(),
            None => self.fail("the instance refresh is no longer reported by AWS", now),
            // Pending, InProgress, Baking, or a status newer than this code: keep gating on health.
            Some(_) => {
                if let Some(failure) = self.gate.observe(&obs.group, &obs.health, now) {
                    return self.roll_back(RollbackReason::Unhealthy { failure }, now);
                }
                if now > self.params.timeout {
                    return self.roll_back(RollbackReason::Timeout { after_secs: self.params.timeout.as_secs() }, now);
                }
                self.wait()
            }
        }
    }

    fn step_verifying(&mut self, obs: &Observation, release: Which, metric_evidence: bool) -> Decision {
        let now = obs.now;
        let forward = release == Which::New;
        if forward && metric_evidence {
            // Minutes published after the refresh ended convict like any failed verification.
            if let Some(failure) = self.gate.conviction(now.as_secs_f64()) {
                return self.roll_forward_back(Some(RollbackReason::Unhealthy { failure }), now);
            }
        }
        let release = if forward { &self.new } else { &self.old };
        let (image, expected) = (release.image_id.clone(), release.images());
        let verdict = verify(&obs.group, &obs.images, &obs.health, Some(&expected), self.params.left_alone);
        self.warm_pool = obs.group.warm_pool.as_ref().map(|w| {
            let instances = w.instances.as_deref().unwrap_or_default();
            instances
                .iter()
                .map(|i| PoolInstance { id: i.id.clone(), image: obs.images.get(&i.id).cloned(), lifecycle: i.lifecycle_state.clone() })
                .collect()
        });
        self.left_behind = verdict.left_behind;
        let problems = verdict.problems;
        if problems.is_empty() {
            // Not verified before the minutes the new release served are published (and judged).
            if forward && self.awaiting_metrics(obs.wall_ms) {
                return self.wait();
            }
            if !obs.images_confirmed {
                // Verified on launch-template versions; let EC2 confirm the images once before saying so.
                self.confirming = true;
                return Decision::Wait(Duration::ZERO);
            }
            if forward {
                self.metric_summary();
            }
            let outcome = match (forward, self.reason.clone()) {
                (true, _) => Outcome::Deployed,
                (false, Some(reason)) => Outcome::RolledBack { reason },
                (false, None) => Outcome::RolledBack { reason: RollbackReason::Requested },
            };
            return self.finish(outcome, now);
        }
        if forward {
            // The gate still applies after success: a new instance going bad now is a failed deploy.
            if let Some(failure) = self.gate.observe(&obs.group, &obs.health, now) {
                return self.roll_forward_back(Some(RollbackReason::Unhealthy { failure }), now);
            }
        }
        if now.saturating_sub(self.verify_since) > self.params.verify_timeout {
            return if forward {
                self.roll_forward_back(Some(RollbackReason::VerificationFailed { problems }), now)
            } else {
                self.fail(format!("the fleet is not verified healthy on {image}: {}", problems.join("; ")), now)
            };
        }
        self.wait()
    }

    /// Feeds the result of the last `Decision::Act`.
    pub fn on_action(&mut self, action: &Action, result: ActionResult, now: Duration) -> Decision {
        match (action, result) {
            (Action::RollbackRefresh, ActionResult::Started { refresh_id }) => {
                self.note_refresh(&refresh_id);
                self.enter(Phase::RollingBack { refresh_id }, now);
                self.wait()
            }
            // No active refresh to roll back: it ended a moment ago, or an earlier attempt of this very
            // request (whose answer was lost) is already rolling it back. The next observation tells:
            // RollingBack waits for a rollback under way and goes back with a new refresh otherwise.
            (Action::RollbackRefresh, ActionResult::Refused { code, .. }) if code == "ActiveInstanceRefreshNotFound" => {
                let id = self.watched_refresh().unwrap_or_default().to_string();
                self.enter(Phase::RollingBack { refresh_id: id }, now);
                Decision::Wait(Duration::ZERO)
            }
            (Action::RollbackRefresh, ActionResult::Refused { code, .. }) if code == "IrreversibleInstanceRefresh" => {
                let id = self.watched_refresh().unwrap_or_default().to_string();
                self.enter(Phase::Cancelling { refresh_id: id }, now);
                Decision::Act(Action::CancelRefresh)
            }
            (Action::CancelRefresh, ActionResult::Cancelled | ActionResult::Started { .. }) => self.wait(),
            (Action::CancelRefresh, ActionResult::Refused { code, .. }) if code == "ActiveInstanceRefreshNotFound" => {
                self.roll_forward_back(None, now)
            }
            (Action::StartRollbackRefresh { .. }, ActionResult::Started { refresh_id }) => {
                self.note_refresh(&refresh_id);
                self.enter(Phase::RollbackRefreshing { refresh_id }, now);
                self.wait()
            }
            // Another refresh is still winding down (Cancelling); try again next poll.
            (Action::StartRollbackRefresh { .. }, ActionResult::Refused { code, .. })
                if code == "InstanceRefreshInProgress" && self.action_errors < MAX_ACTION_ERRORS * 4 =>
            {
                self.action_errors += 1;
                self.wait_then(action.clone())
            }
            (_, ActionResult::Error { .. }) if self.action_errors < MAX_ACTION_ERRORS => {
                self.action_errors += 1;
                self.wait_then(action.clone())
            }
            (action, result) => {
                let what = match result {
                    ActionResult::Refused { code, message } => format!("{code}: {message}"),
                    ActionResult::Error { message } => message,
                    other => format!("{other:?}"),
                };
                self.fail(format!("{action:?} could not be carried out: {what}"), now)
            }
        }
    }

    /// Retry an action after one poll interval; the driver sleeps, then re-issues it.
    fn wait_then(&mut self, action: Action) -> Decision {
        self.retry = Some(action);
        self.wait()
    }

    fn note_refresh(&mut self, id: &str) {
        if self.refresh_ids.last().map(String::as_str) != Some(id) {
            self.refresh_ids.push(id.to_string());
        }
    }
}

fn aws_reason(obs: &Observation) -> Option<String> {
    obs.refresh.as_ref().and_then(|r| r.rollback_reason.clone().or_else(|| r.status_reason.clone()))
}

/// The alarms the driver found in ALARM, if any.
fn firing(obs: &Observation) -> Option<Vec<String>> {
    let names: Vec<String> = obs.alarms.as_ref()?.iter().filter(|a| a.firing()).map(|a| a.name.clone()).collect();
    (!names.is_empty()).then_some(names)
}

/// Why AWS rolled the refresh back: an alarm when one is in ALARM, else AWS's own words.
fn aws_or_alarm(obs: &Observation, rolled_back_by_aws: bool) -> RollbackReason {
    match firing(obs) {
        Some(alarms) => {
            let r = obs.refresh.as_ref();
            RollbackReason::Alarm {
                alarms,
                status: r.map(|r| r.status.as_str().to_string()).unwrap_or_default(),
                status_reason: r.and_then(|r| r.status_reason.clone().or_else(|| r.rollback_reason.clone())),
                rolled_back_by_aws,
            }
        }
        None => RollbackReason::AwsRollback { reason: aws_reason(obs) },
    }
}

fn refresh_detail(what: &str, obs: &Observation) -> String {
    match obs.refresh.as_ref() {
        Some(r) => format!(
            "{what} (refresh {}{})",
            r.id,
            r.status_reason.as_deref().map(|s| format!(": {s}")).unwrap_or_default()
        ),
        None => what.to_string(),
    }
}

#[path = "rollout_metrics.rs"]
mod metrics;

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;

//! The refresh watcher: the small loop that drives `core::rollout::Rollout` — observe (`observe.rs`:
//! refresh, group and every target group's health, at once), step, sleep or act — until an outcome.
//! Throttled polls slow the loop down (`pace.rs`) without counting as lost sight of the group.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::observe::{fleet_instances, Sight};
use super::pace::{Pace, MAX_THROTTLED};
use super::wait::{Check, Poller, Waited};
use super::{Ctx, RefreshKind};
use crate::cloud::{CloudError, ErrorKind, Wait};
use crate::core::health::counts;
use crate::core::model::{RefreshPrefs, RefreshRequest};
use crate::config::Environment;
use crate::core::rollout::{Action, ActionResult, Decision, Outcome, PhaseName, Release, Rollout};
use crate::events::Stage;

pub use super::observe::fleet;

/// Consecutive failed observations (throttling aside) tolerated before the watcher gives up and says
/// so (exit 4). With the default 5 s poll this is a minute of AWS being unreachable.
const MAX_OBSERVE_FAILURES: u32 = 12;

/// What the watcher needs besides the state machine.
pub struct WatchTarget<'a> {
    pub group: &'a str,
    pub template_id: &'a str,
    /// Preferences for a refresh that goes back to the previous version.
    pub rollback_prefs: RefreshPrefs,
    /// The environment's alarms, to name the one that stopped a refresh.
    pub alarms: &'a [String],
    /// The group's target groups as last seen (the watcher follows changes).
    pub target_groups: Vec<String>,
    /// The group has a warm pool (as last seen): the watch looks at it too.
    pub warm_pool: bool,
}

impl<'a> WatchTarget<'a> {
    /// The watch of a group of `env`: rollback preferences and alarms from the environment.
    pub fn of(env: &'a Environment, group: &'a str, template_id: &'a str, target_groups: Vec<String>, warm_pool: bool) -> Self {
        Self { group, template_id, rollback_prefs: super::deploy::rollback_prefs(env), alarms: &env.alarms, target_groups, warm_pool }
    }
}

/// The longest a watch may last, whatever the state machine's own deadlines say: the forward refresh,
/// a rollback and a second refresh back, each up to `timeout`, and two verifications. Only a bug or a
/// clock gone wrong reaches it; it turns an endless watch into a failed one a human is told about.
fn ceiling(rollout: &Rollout) -> Duration {
    rollout.params.timeout * 3 + rollout.params.verify_timeout * 2
}

/// Drives `rollout` to its outcome. None when the cloud's clock does not wait (a dry run): the watch
/// was recorded and ended before any outcome.
pub async fn drive(ctx: &Ctx, target: &WatchTarget<'_>, rollout: Rollout) -> (Rollout, Option<Outcome>) {
    let wait = Wait { what: describe(target.group, &rollout), every: rollout.params.poll, timeout: ceiling(&rollout) };
    let sight = Sight {
        group: target.group,
        template_id: target.template_id,
        alarms: target.alarms,
        target_groups: target.target_groups.clone(),
        warm_pool: target.warm_pool,
        images: BTreeMap::new(),
    };
    let pace = Pace::new(rollout.params.poll);
    let mut driver = Driver { rollout, start: Instant::now(), failures: 0, throttled_since: None, announced: false, sight, pace };
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let ended = loop {
        let seen = driver.round(ctx, target).await;
        if let Some(ended) = poller.after(Ok(seen)).await {
            break ended;
        }
    };
    ctx.ledger.refresh_done(target.group);
    let Driver { rollout, .. } = driver;
    let outcome = match ended {
        Ok(Waited::Ready(outcome)) => Some(outcome),
        Ok(Waited::Unobserved { .. }) => None,
        Err(e) => Some(Outcome::Failed {
            reason: rollout.reason.clone(),
            detail: format!("the watch of refresh {} ended without an outcome: {e:?}", rollout.watched_refresh().unwrap_or("?")),
        }),
    };
    (rollout, outcome)
}

/// What the watch waits for, in words (a dry run's plan shows it).
fn describe(group: &str, r: &Rollout) -> String {
    let refresh = r.watched_refresh().filter(|id| !id.is_empty()).unwrap_or("(to be started)");
    if r.reason.is_some() {
        format!(
            "watch refresh {refresh} roll back and verify {group}'s fleet on launch-template version {} ({}) \
             (if AWS refuses, cancel it and start a refresh back to version {})",
            r.old.version, r.old.image_id, r.old.version
        )
    } else {
        format!(
            "watch refresh {refresh} and the health of {group}'s new instances in every target group; on failure roll back \
             (autoscaling:RollbackInstanceRefresh while it runs, else autoscaling:StartInstanceRefresh back to version {}) \
             and verify the fleet on {}",
            r.old.version, r.old.image_id
        )
    }
}

/// The watch between two waits: the state machine and what the driver remembers across polls.
struct Driver<'a> {
    rollout: Rollout,
    start: Instant,
    /// Consecutive observations that failed for another reason than throttling.
    failures: u32,
    /// Since when every poll has been throttled.
    throttled_since: Option<Instant>,
    /// Whether a rollback has been announced as a phase (ours are announced when we act).
    announced: bool,
    sight: Sight<'a>,
    pace: Pace,
}

impl Driver<'_> {
    /// One poll: observe, step the state machine, carry out what it decides until it waits or finishes.
    async fn round(&mut self, ctx: &Ctx, target: &WatchTarget<'_>) -> Check<Outcome> {
        let rollout = &mut self.rollout;
        // Polls start every poll_interval (not poll_interval after the last one ended), so a slow
        // answer does not push every later look back: the gate sees a change at most one interval late.
        let began = Instant::now();
        // Asked to stop: the state machine decides (roll back a forward refresh; let a rollback finish).
        let stopped = ctx.stop.requested().and_then(|signal| rollout.stop(signal, self.start.elapsed()));
        let mut decision = if let Some(decision) = stopped {
            decision
        } else {
            match self.sight.observe(ctx, rollout, self.start.elapsed()).await {
            Ok(obs) => {
                self.failures = 0;
                self.throttled_since = None;
                let interval = self.pace.answered();
                if let Some(r) = &obs.refresh {
                    let counts = counts(&obs.group, &obs.health);
                    let hooks = obs.group.instances.iter().filter(|i| i.waiting_on_hook()).count();
                    ctx.events.progress(target.group, rollout.phase.name(), r.status.as_str(), r.percentage_complete, counts, hooks);
                }
                ctx.events.fleet(target.group, obs.now.as_secs_f64(), fleet_instances(&obs));
                let before = rollout.timeline.len();
                let decision = rollout.step(&obs);
                announce(ctx, target.group, rollout, before, &decision, &mut self.announced);
                // The state machine waits one poll_interval; while AWS throttles, the pace is slower.
                match decision {
                    Decision::Wait(d) if d == rollout.params.poll => Decision::Wait(interval.saturating_sub(began.elapsed())),
                    d => d,
                }
            }
            Err(e) if e.is_throttling() && self.throttled_since.is_none_or(|t| t.elapsed() < MAX_THROTTLED) => {
                let since = *self.throttled_since.get_or_insert_with(Instant::now);
                let delay = self.pace.throttled();
                ctx.events.warn(
                    target.group,
                    format!(
                        "AWS is throttling the watch ({e}); next look in {:.1}s, then every {:.1}s (throttled for {:.0}s)",
                        delay.as_secs_f64(),
                        self.pace.interval().as_secs_f64(),
                        since.elapsed().as_secs_f64()
                    ),
                );
                Decision::Wait(delay)
            }
            Err(e) if e.kind != ErrorKind::Denied && !e.is_throttling() && self.failures < MAX_OBSERVE_FAILURES => {
                self.failures += 1;
                ctx.events.warn(target.group, format!("could not observe the group (try {}): {e}", self.failures));
                Decision::Wait(self.pace.interval())
            }
            Err(e) => {
                let detail =
                    format!("lost sight of the group while refresh {} was in flight: {e}", rollout.watched_refresh().unwrap_or("?"));
                return Check::Ready(Outcome::Failed { reason: rollout.reason.clone(), detail });
            }
            }
        };
        loop {
            decision = match decision {
                Decision::Finish(outcome) => return Check::Ready(outcome),
                Decision::Wait(d) => return Check::Later(d, rollout.phase.name().as_str().to_string()),
                Decision::Act(action) => {
                    let result = act(ctx, target, &rollout.old, &action).await;
                    if let ActionResult::Started { refresh_id } = &result {
                        ctx.ledger.refresh_started(target.group, refresh_id, RefreshKind::Back);
                    }
                    let note = match &action {
                        Action::RollbackRefresh => "rolling back the instance refresh (RollbackInstanceRefresh)".to_string(),
                        Action::CancelRefresh => "cancelling the instance refresh before rolling back".to_string(),
                        Action::StartRollbackRefresh { version } => {
                            format!("starting a refresh back to launch-template version {version}")
                        }
                    };
                    let reason = rollout.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                    ctx.events.phase(target.group, Stage::Rollback, format!("{note}{reason}"));
                    self.announced = true;
                    rollout.on_action(&action, result, self.start.elapsed())
                }
            };
        }
    }
}

/// Phases the state machine entered on its own, without an action of ours: AWS rolling back by itself
/// (AutoRollback) and the final verification. They get a phase (a CI section, a report marker) too.
fn announce(ctx: &Ctx, group: &str, rollout: &Rollout, before: usize, decision: &Decision, announced: &mut bool) {
    if let (Some(reason), false, false) = (&rollout.reason, *announced, matches!(decision, Decision::Act(_))) {
        ctx.events.phase(group, Stage::Rollback, format!("rolling back: {reason}"));
        *announced = true;
    }
    for (_, name) in rollout.timeline.iter().skip(before) {
        if *name == PhaseName::Verifying {
            let release = if rollout.reason.is_some() { "the previous release" } else { "the new release" };
            ctx.events.phase(group, Stage::Verify, format!("checking every instance is in service and healthy on {release}"));
        }
    }
}

/// Carries out an action; a refresh back goes to `old` (for a mixed instances policy: the whole policy
/// as it was, override templates' versions included).
async fn act(ctx: &Ctx, target: &WatchTarget<'_>, old: &Release, action: &Action) -> ActionResult {
    let asg = &ctx.cloud.autoscaling;
    let result = match action {
        Action::RollbackRefresh => asg.rollback_instance_refresh(target.group).await,
        Action::CancelRefresh => asg.cancel_instance_refresh(target.group).await,
        Action::StartRollbackRefresh { version } => {
            debug_assert_eq!(*version, old.version, "a refresh back goes to the rollout's old release");
            let req = RefreshRequest { group: target.group.into(), desired: old.desired(target.template_id), prefs: target.rollback_prefs.clone() };
            asg.start_instance_refresh(&req).await
        }
    };
    match result {
        Ok(id) if *action == Action::CancelRefresh => {
            let _ = id;
            ActionResult::Cancelled
        }
        Ok(refresh_id) => ActionResult::Started { refresh_id },
        Err(e) => classify(e),
    }
}

fn classify(e: CloudError) -> ActionResult {
    match (e.kind, e.code.clone()) {
        (ErrorKind::Conflict | ErrorKind::Invalid | ErrorKind::Denied | ErrorKind::NotFound, Some(code)) => {
            ActionResult::Refused { code, message: e.message }
        }
        _ => ActionResult::Error { message: e.to_string() },
    }
}

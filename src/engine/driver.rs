//! The release driver: the one loop that carries a release plan (`core::release`) out. It asks the plan
//! what to do, has the job start, stop or undo groups, and watches every group in flight with one shared
//! observation per poll (`watch.rs`), reporting each group's end back to the plan until the plan says the
//! release is over. Like kube-runtime's controller: decisions are the plan's and the state machines',
//! the loop only observes, acts and sleeps (through the cloud's clock).

use async_trait::async_trait;

use super::watch::{Lane, Watch};
use super::Ctx;
use crate::cloud::Wait;
use crate::core::release::{Cause, GroupEnd, ReleasePlan, Step, Verdict};
use crate::core::rollout::{Outcome, RollbackReason};

/// How a group's start went.
pub enum Started {
    /// Its rollout is in flight: watch it.
    Lane(Box<Lane>),
    /// It ended without anything to watch (already on the release; could not start).
    Ended(GroupEnd),
}

/// What a release does to each group, beyond watching it: `deploy` and `rollback` each have one.
#[async_trait]
pub trait Job: Send {
    /// Starts these groups (a wave, or a restore's groups) together.
    async fn start(&mut self, ctx: &Ctx, groups: &[String]) -> Vec<(String, Started)>;
    /// The lane that moves a verified group back to where it was.
    fn undo(&mut self, ctx: &Ctx, group: &str, cause: &Cause) -> Lane;
    /// A lane reached its end (`None`: the clock does not wait — a dry run — and it ended unobserved).
    /// Returns what that means for the release.
    async fn ended(&mut self, ctx: &Ctx, lane: Lane, outcome: Option<Outcome>) -> GroupEnd;
}

/// Carries `plan` out with `job` until the plan finishes. `alarms`: the environment's (to name one that
/// stopped a refresh); `poll`: how often every group in flight is looked at.
pub async fn run(ctx: &Ctx, plan: &mut ReleasePlan, job: &mut dyn Job, alarms: &[String], poll: std::time::Duration) -> Verdict {
    // A release is under way from here to its verdict, between waves too: a signal goes through the plan.
    let _release = ctx.ledger.release();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut watch = Watch::new(poll);
    let mut stopped = false;
    loop {
        if let (Some(signal), false) = (ctx.stop.requested(), stopped) {
            stopped = true;
            plan.stop(signal);
        }
        let steps = plan.next();
        let idle = steps.is_empty();
        for step in steps {
            match step {
                Step::Finish(verdict) => return verdict,
                Step::Start(groups) => {
                    for (group, started) in job.start(ctx, &groups).await {
                        match started {
                            Started::Lane(lane) => {
                                plan.started(&group);
                                watching(ctx, &lane, poll);
                                lanes.push(*lane);
                            }
                            Started::Ended(end) => {
                                plan.started(&group);
                                plan.ended(&group, end);
                            }
                        }
                    }
                }
                Step::Stop(groups) => {
                    let reason = match plan.cause() {
                        Some(Cause::Stopped { signal }) => RollbackReason::Interrupted { signal: signal.clone() },
                        Some(Cause::Group { group }) => RollbackReason::Sibling { group: group.clone() },
                        None => RollbackReason::Requested,
                    };
                    lanes.iter_mut().filter(|l| groups.contains(&l.scope)).for_each(|l| l.stop(reason.clone()));
                }
                Step::Undo(groups) => {
                    let cause = plan.cause().cloned().unwrap_or(Cause::Stopped { signal: "stop".into() });
                    for group in groups {
                        let lane = job.undo(ctx, &group, &cause);
                        watching(ctx, &lane, poll);
                        lanes.push(lane);
                    }
                }
            }
        }
        if lanes.is_empty() {
            // The plan moved on (a wave whose groups all ended at once): ask it again. A plan that waits
            // with nothing in flight would wait forever: a bug, said as a release that is stuck.
            debug_assert!(!idle, "the release plan waits with nothing in flight: {:?}", plan.states());
            if idle {
                return Verdict::Stuck;
            }
            continue;
        }
        let round = watch.round(ctx, alarms, &mut lanes).await;
        for (i, outcome) in round.ended.into_iter().rev() {
            let lane = lanes.remove(i);
            let group = lane.scope.clone();
            ctx.place(lane.region.as_deref()).ledger.refresh_done(&lane.group);
            let end = job.ended(ctx, lane, Some(outcome)).await;
            plan.ended(&group, end);
        }
        if lanes.is_empty() || round.next.is_zero() {
            continue;
        }
        if !ctx.cloud.clock.sleep(round.next).await {
            // A clock that does not wait (a dry run): every watch was recorded and ends unobserved.
            for lane in std::mem::take(&mut lanes) {
                let group = lane.scope.clone();
                ctx.place(lane.region.as_deref()).ledger.refresh_done(&lane.group);
                let end = job.ended(ctx, lane, None).await;
                plan.ended(&group, end);
            }
        }
    }
}

/// A lane's watch begins (the clock hears of it: a dry run records it).
fn watching(ctx: &Ctx, lane: &Lane, poll: std::time::Duration) {
    ctx.cloud.clock.waiting(&Wait { what: lane.describe(), every: poll, timeout: lane.ceiling() });
}

//! The refresh's batch replacement, one tick at a time: which old instances may go and how many new ones may
//! launch under MinHealthyPercentage / MaxHealthyPercentage and checkpoints, which new ones failed, and when
//! the fleet is complete. Used for the forward refresh and for its rollback.

use tokio::time::{Duration, Instant};

use super::group_records::{GroupRec, Lifecycle, MemberRec, Phase, WarmState};
use super::state::State;
use crate::core::model::*;

/// AWS's default CheckpointDelay.
const DEFAULT_CHECKPOINT_DELAY: Duration = Duration::from_secs(3600);
/// StandbyInstances / ScaleInProtectedInstances `Wait`: "waits one hour ... Otherwise, the instance
/// refresh will fail" (RefreshPreferences).
const STUCK_WAIT: Duration = Duration::from_secs(3600);

pub(crate) enum Outcome {
    Working,
    Done,
    Failed(String),
}

/// The group as the current phase sees it at one tick.
#[derive(Default)]
pub(crate) struct Census {
    /// Members still to be replaced and in the group, with whether each is healthy.
    pub old: Vec<(String, bool)>,
    /// Members not to be replaced (launched by the phase, or already matching), not terminating.
    pub new_live: usize,
    /// Launched by the phase and replaced: healthy (every target group, under ELB checks) and warmed up.
    pub ready: usize,
    /// Launched by the phase, neither ready nor failed yet.
    pub in_flight: usize,
    /// Launched by the phase and failed, with why.
    pub failed: Vec<(String, String)>,
    /// Healthy capacity: healthy old members, ready new ones, healthy untouched ones.
    pub healthy: usize,
    /// Members to replace that are terminating but not gone yet (still draining or shutting down).
    pub leaving: usize,
    /// Members to replace that cannot go yet: in Standby (StandbyInstances `Wait`) or protected from
    /// scale in (ScaleInProtectedInstances `Wait`).
    pub stuck: Vec<String>,
    /// Of those, the ones in service (protected): they still count towards the capacity.
    pub stuck_live: usize,
}

enum Gate {
    Hold,
    /// Replace no more than this many before the next checkpoint (None: no checkpoint in the way).
    Limit(Option<usize>),
    Finished,
}

impl State {
    pub fn census(&self, idx: usize, t: Instant) -> Census {
        let r = &self.refreshes[idx];
        let mut c = Census::default();
        let (Some(p), Some(g)) = (&r.phase, self.groups.get(&r.group)) else {
            return c;
        };
        // AWS: the refresh's InstanceWarmup, else the group's DefaultInstanceWarmup, else its grace period.
        let warmup = r.prefs.instance_warmup.or(g.default_warmup).unwrap_or(g.grace);
        let refresh_protected = r.prefs.scale_in_protected_instances == Some(ProtectedInstances::Refresh);
        for m in &g.members {
            if m.lifecycle == Lifecycle::Terminating {
                c.leaving += usize::from(p.to_replace.contains(&m.id));
                continue;
            }
            if m.lifecycle == Lifecycle::Standby {
                if p.to_replace.contains(&m.id) {
                    c.stuck.push(m.id.clone());
                }
                continue;
            }
            let healthy = self.member_healthy(g, m);
            if p.to_replace.contains(&m.id) {
                if m.protected && !refresh_protected {
                    c.stuck.push(m.id.clone());
                    c.stuck_live += 1;
                } else {
                    c.old.push((m.id.clone(), healthy));
                }
                c.healthy += usize::from(healthy);
                continue;
            }
            c.new_live += 1;
            if !p.launched.contains(&m.id) {
                c.healthy += usize::from(healthy);
            } else if healthy && m.in_service_at.is_some_and(|s| self.wake.due(s + warmup, t)) {
                c.ready += 1;
                c.healthy += 1;
            } else if let Some(why) = self.failure(g, m, t) {
                c.failed.push((m.id.clone(), why));
            } else {
                c.in_flight += 1;
            }
        }
        c
    }

    /// Why a new instance counts as a failed replacement, if it does.
    fn failure(&self, g: &GroupRec, m: &MemberRec, t: Instant) -> Option<String> {
        let state = self.instances.get(&m.id).map(|i| i.state.clone());
        if !matches!(state, Some(InstanceState::Pending | InstanceState::Running)) {
            let state = state.map_or("gone".to_string(), |s| format!("{s:?}").to_lowercase());
            return Some(format!("instance {} is {state}", m.id));
        }
        let since = m.in_service_at?;
        if g.elb_health && m.grace_until.is_some_and(|until| self.wake.due(until, t)) {
            if let Some(tg) = self.unhealthy_in(g, &m.id) {
                return Some(format!(
                    "instance {} failed ELB health checks in target group {tg}",
                    m.id
                ));
            }
        }
        let timeout = self.timings.new_instance_timeout;
        self.wake.due(since + timeout, t).then(|| {
            format!(
                "instance {} was not healthy {} s after entering service",
                m.id,
                timeout.as_secs()
            )
        })
    }

    /// One tick of the phase of refresh `idx`. `forward` honours checkpoints (a rollback ignores them).
    pub fn rollout_step(&mut self, idx: usize, t: Instant, forward: bool) -> Outcome {
        let c = self.census(idx, t);
        let group = self.refreshes[idx].group.clone();
        for (id, _) in &c.failed {
            self.begin_terminate(&group, id, t);
        }
        if let Some((_, why)) = c.failed.last() {
            let p = self.phase_mut(idx);
            p.failures += c.failed.len() as u32;
            p.last_failure = Some(why.clone());
        }
        if let Some(failed) = self.too_many_failures(idx) {
            return failed;
        }
        let desired = self.groups[&group].desired.max(0) as usize;
        let total = self.phase_mut(idx).to_replace.len();
        let replaced = total.saturating_sub(c.old.len() + c.stuck.len());
        let new_live = c.new_live - c.failed.len();
        let r = &mut self.refreshes[idx];
        let done = c.ready.min(total);
        r.percentage = (done * 100).checked_div(total).map_or(100, |p| p as i32);
        r.to_update = (total - done) as i32;
        let settled =
            c.old.is_empty() && c.leaving == 0 && c.in_flight == 0 && c.failed.is_empty() && new_live + c.stuck_live >= desired;
        if settled && c.stuck.is_empty() {
            return self.warm_step(idx, t);
        }
        if settled {
            // Only Standby or protected instances are left (their preference is `Wait`): AWS waits an hour.
            let since = *self.phase_mut(idx).stuck_since.get_or_insert(t);
            let ids = c.stuck.join(", ");
            if self.wake.due(since + STUCK_WAIT, t) {
                return Outcome::Failed(format!("instances in Standby or protected from scale in were not returned within one hour ({ids})"));
            }
            self.refreshes[idx].reason = Some(format!("Waiting for instances in Standby or protected from scale in: {ids}"));
            return Outcome::Working;
        }
        let limit = if forward {
            match self.checkpoint_gate(idx, t, &c, total, replaced) {
                Gate::Hold => return Outcome::Working,
                Gate::Finished => return Outcome::Done,
                Gate::Limit(n) => n,
            }
        } else {
            None
        };
        let prefs = &self.refreshes[idx].prefs;
        let (min_healthy, max_total) = bounds(desired, prefs.min_healthy_percentage, prefs.max_healthy_percentage);

        // Terminate old instances: unhealthy ones freely (they are no capacity), healthy ones while the healthy
        // count stays at or above the minimum; never past the current checkpoint.
        let mut budget = c.healthy as i64 - min_healthy as i64;
        let mut room = limit.map_or(usize::MAX, |l| l.saturating_sub(replaced));
        let mut old = c.old.clone();
        old.sort_by_key(|(_, healthy)| *healthy);
        let mut terminated = 0;
        for (id, healthy) in old {
            if room == 0 || (healthy && budget <= 0) {
                break;
            }
            budget -= i64::from(healthy);
            room -= 1;
            terminated += 1;
            self.begin_terminate(&group, &id, t);
        }

        // Launch up to desired capacity (replacements, and refills after failures) under the MaxHealthyPercentage
        // ceiling and the checkpoint.
        let live_total = c.old.len() - terminated + new_live + c.stuck_live;
        // Before a checkpoint, `limit` replacements plus whatever the desired capacity grew by since the
        // refresh started (a scale-out launches the desired configuration: new capacity, not replacements).
        let grown = desired.saturating_sub(total);
        let launches = desired
            .saturating_sub(new_live + c.stuck_live)
            .min(max_total.saturating_sub(live_total))
            .min(limit.map_or(usize::MAX, |l| (l + grown).saturating_sub(c.ready + c.in_flight)));
        let p = &self.refreshes[idx]
            .phase
            .as_ref()
            .expect("a refresh past Pending has a phase");
        if p.retry_at.is_some_and(|at| !self.wake.due(at, t)) {
            return Outcome::Working;
        }
        let target = p.target.clone();
        for _ in 0..launches {
            let launched = self.pick_launch(&group, &target).ok_or_else(|| "no launch".to_string()).and_then(|l| self.launch_member(&group, &l, t));
            match launched {
                Ok(id) => {
                    self.phase_mut(idx).launched.insert(id);
                }
                Err(msg) => {
                    let retry = self.timings.launch_retry;
                    let p = self.phase_mut(idx);
                    p.failures += 1;
                    p.last_failure = Some(format!("launching a new EC2 instance failed: {msg}"));
                    p.retry_at = Some(t + retry);
                    return self.too_many_failures(idx).unwrap_or(Outcome::Working);
                }
            }
        }
        Outcome::Working
    }

    /// After the InService instances, the warm pool: every warm instance not on the target goes (the
    /// pool refills from the target, `warm.rs`); done once the pool is full, warmed and all on it.
    fn warm_step(&mut self, idx: usize, t: Instant) -> Outcome {
        let group = self.refreshes[idx].group.clone();
        let Some(w) = self.groups[&group].warm.as_ref() else { return Outcome::Done };
        let target: Vec<_> = self.refreshes[idx].phase.as_ref().map(|p| p.target.iter().map(|l| l.origin.clone()).collect()).unwrap_or_default();
        let g = &self.groups[&group];
        let size = w.size(g.max, g.desired);
        let stale: Vec<String> = w.live().filter(|m| !target.contains(&m.origin)).map(|m| m.id.clone()).collect();
        let done = w.live().filter(|m| target.contains(&m.origin) && m.state == WarmState::Warmed).count();
        let settled = stale.is_empty() && done >= size && w.members.iter().all(|m| m.state == WarmState::Warmed);
        let r = &mut self.refreshes[idx];
        r.warm_progress = Some(((done.min(size) * 100).checked_div(size).map_or(100, |p| p as i32), size.saturating_sub(done) as i32));
        stale.iter().for_each(|id| self.terminate_warm(&group, id, t));
        if settled { Outcome::Done } else { Outcome::Working }
    }

    fn phase_mut(&mut self, idx: usize) -> &mut Phase {
        self.refreshes[idx]
            .phase
            .as_mut()
            .expect("a refresh past Pending has a phase")
    }

    fn too_many_failures(&mut self, idx: usize) -> Option<Outcome> {
        let max = self.timings.max_failed_replacements;
        let p = self.phase_mut(idx);
        (p.failures >= max).then(|| {
            let last = p.last_failure.clone().unwrap_or_default();
            Outcome::Failed(format!(
                "{} replacement instances failed to launch or to pass health checks; last: {last}",
                p.failures
            ))
        })
    }

    /// Checkpoints: replace up to each percentage, wait CheckpointDelay, go on. A last checkpoint below 100
    /// ends the refresh there, as AWS documents ("the last number must be 100 to replace all instances").
    fn checkpoint_gate(&mut self, idx: usize, t: Instant, c: &Census, total: usize, replaced: usize) -> Gate {
        if self.refreshes[idx].prefs.checkpoints.is_empty() {
            return Gate::Limit(None);
        }
        let r = &mut self.refreshes[idx];
        if let Some(until) = r.checkpoint_until {
            if !self.wake.due(until, t) {
                return Gate::Hold;
            }
            r.checkpoint_until = None;
            r.checkpoint += 1;
            r.reason = None;
        }
        let Some(&pct) = r.prefs.checkpoints.get(r.checkpoint) else {
            return Gate::Finished;
        };
        let limit = (total * pct as usize).div_ceil(100);
        if pct < 100 && c.ready >= limit && replaced >= limit && c.in_flight == 0 && c.leaving == 0 {
            let delay = r.prefs.checkpoint_delay.unwrap_or(DEFAULT_CHECKPOINT_DELAY);
            r.checkpoint_until = Some(t + delay);
            r.reason = Some(format!("Waiting at checkpoint {pct}% for {} s.", delay.as_secs()));
            return Gate::Hold;
        }
        Gate::Limit((pct < 100).then_some(limit))
    }
}

/// (minimum healthy instances, maximum instances) for a group of `desired`. With MaxHealthyPercentage 100
/// AWS still replaces at least one instance at a time (so Min 100 / Max 100 goes one by one); above 100 the
/// ceiling leaves room for at least one extra instance.
fn bounds(desired: usize, min_pct: i32, max_pct: i32) -> (usize, usize) {
    let of = |pct: i32| (desired * pct.max(0) as usize).div_ceil(100);
    if max_pct <= 100 {
        let below = desired.saturating_sub(of(min_pct)).max(1);
        (desired.saturating_sub(below), desired)
    } else {
        (of(min_pct), of(max_pct).max(desired + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::bounds;

    #[test]
    fn bounds_follow_the_documented_percentages() {
        assert_eq!(bounds(4, 100, 200), (4, 8), "launch before terminating");
        assert_eq!(bounds(4, 100, 100), (3, 4), "one at a time");
        assert_eq!(
            bounds(4, 90, 100),
            (3, 4),
            "90% of 4 rounds up to 4, still one at a time"
        );
        assert_eq!(bounds(10, 50, 100), (5, 10));
        assert_eq!(bounds(4, 90, 110), (4, 5));
        assert_eq!(bounds(1, 100, 110), (1, 2));
    }
}

//! The rollout's side of the metric gate (`super::metric_gate`): which polls fetch the load balancer's
//! metrics, feeding the gate and adding its evidence to the health gate's, holding a verification until
//! the minutes the new release served are published, and what the rollout then says about them. A child of
//! `rollout.rs` (it reads the rollout's state); the decisions stay in `Rollout::step`.

use std::time::Duration;

use super::super::metric_gate::{MetricAsk, MetricGate};
use super::{Decision, Observation, Phase, Rollout, Which};

impl Rollout {
    /// The same rollout judging the new release on the load balancer's metrics too (`metric_gate`).
    pub fn with_metrics(mut self, gate: MetricGate) -> Self {
        self.metrics = Some(gate);
        self
    }

    /// Still judging the new release: going forward, nothing convicted yet.
    fn judging(&self) -> bool {
        self.reason.is_none() && matches!(self.phase, Phase::Refreshing { .. } | Phase::Verifying { release: Which::New, .. })
    }

    /// The load balancer metrics the next poll should fetch (at wall-clock `now_ms`), if any.
    pub fn metric_ask(&self, now_ms: i64) -> Option<MetricAsk> {
        self.metrics.as_ref().filter(|_| self.judging()).and_then(|m| m.wants(now_ms))
    }

    /// What the rollout has said since the last call (for the progress output).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Feeds the metric gate one poll; its evidence joins the health gate's. Returns how much it found.
    pub(super) fn judge_metrics(&mut self, obs: &Observation) -> usize {
        if !self.judging() {
            return 0;
        }
        let Some(m) = self.metrics.as_mut() else { return 0 };
        if let Some(start) = obs.refresh.as_ref().and_then(|r| r.start_time) {
            m.started_at(start * 1000);
        }
        let found = m.observe(obs.wall_ms, &obs.group, &obs.health, obs.metrics.as_ref(), obs.now.as_secs_f64());
        self.notes.extend(m.take_notes());
        let n = found.len();
        self.gate.add(found);
        n
    }

    /// A regular wait (one poll interval) while judging is cut short when the next minute of metrics is due
    /// sooner: the minute that convicts is then seen as it is published, not up to a poll later.
    pub(super) fn sooner_for_metrics(&self, decision: Decision, now_ms: i64) -> Decision {
        match decision {
            Decision::Wait(d) if d == self.params.poll && self.judging() => {
                let due = self.metrics.as_ref().and_then(|m| m.next_publication_in(now_ms));
                Decision::Wait(due.map_or(d, |ms| d.min(Duration::from_millis(ms.max(0) as u64))))
            }
            other => other,
        }
    }

    /// A verified fleet waits for the minutes the new release served to be published (bounded).
    pub(super) fn awaiting_metrics(&mut self, now_ms: i64) -> bool {
        let Some(m) = self.metrics.as_mut() else { return false };
        let wait = m.awaiting(now_ms);
        self.notes.extend(m.take_notes());
        wait
    }

    /// The gate's measures, said when the new release is verified.
    pub(super) fn metric_summary(&mut self) {
        if let Some(m) = self.metrics.as_mut() {
            self.notes.extend(m.take_notes());
            self.notes.extend(m.summary());
        }
    }
}

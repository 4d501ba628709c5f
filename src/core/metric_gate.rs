//! The metric gate of one rollout: what users got from the new release, read from the load balancer's
//! own per-minute metrics and turned into evidence for the health gate. Pure: the driver hands it each
//! poll's fleet, target health, wall-clock time and whatever GetMetricData returned; it remembers the
//! share of each target group's traffic the new instances carried at every poll, the datapoints, and what
//! it has judged, and returns evidence as data.
//!
//! - **Minutes**: CloudWatch stamps each datapoint with its period's start. The gate asks for 60-second
//!   periods and takes the grid from the timestamps it gets back (the smallest spacing between
//!   datapoints of one series, never more than 60 s): on AWS that is a minute, on an endpoint whose clock
//!   runs faster (a local AWS with scaled time) it is that endpoint's minute, and no setting of bakeroll's
//!   has to know. A minute counts as published once a datapoint at or after it has come back for its
//!   load balancer (ELB publishes minute by minute); a published minute without a datapoint had no
//!   requests.
//! - **Shares**: at every poll, the share of a target group's serving targets (healthy ones; all
//!   unhealthy ones when none is healthy, as the ALB fails open) that are new instances. A minute's share is
//!   the time-weighted mean over it of the share last seen. ALBs spread requests evenly over targets
//!   (round robin by default), so the share of targets is the share of requests.
//! - **Judging**: each newly published minute in which new instances carried requests is added to the
//!   target group's window (every such minute since the refresh began), and the window is judged against
//!   the baseline (`metric_verdict`): the target group's own `BASELINE_MINUTES` before the refresh, or the
//!   canary's reference target groups over the same minutes (`metric_plan`). Each such minute whose
//!   verdict is bad is one piece of evidence; `unhealthy_threshold` pieces convict, so one unlucky minute
//!   never does.
//! - **Publication**: a refresh that ends before the minutes the new release served are published is not
//!   yet verified: `awaiting` holds the verification until the minute in which the fleet became entirely
//!   new (or the verification began) is published, and while the latest verdict is bad (evidence not yet
//!   at the threshold), at most `PUBLISH_WAIT_MINUTES` minutes after that minute.

use std::collections::{BTreeMap, BTreeSet};

use super::gate::{Evidence, EvidenceKind};
use super::metric_plan::{Comparison, MetricPlan};
use super::metric_verdict::{
    error_verdict, latency_verdict, Counts, Judgement, Latencies, LatencyFinding, MetricEvidence, MetricParams, MetricsMode, RateFinding,
    LATENCY_MIN_SHARE,
};
use super::metrics::{Metric, MetricsSeen};
use super::model::{Group, TargetState};
use super::targets::{tg_name, HealthByGroup};

/// Minutes before the refresh that make a target group's own baseline.
pub const BASELINE_MINUTES: i64 = 10;
/// The longest the verification waits for publication, in minutes after the minute it waits for: the rest
/// of that minute, CloudWatch's delay for ELB metrics (a minute or two), and slack.
pub const PUBLISH_WAIT_MINUTES: i64 = 5;
/// A minute as AWS counts it: the grid assumed until the answers show one.
const AWS_MINUTE_MS: i64 = 60_000;

/// What the gate wants the next poll to ask: these (load balancer, target group) series, from `start_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAsk {
    pub series: Vec<(String, String)>,
    pub start_ms: i64,
}

/// What one target group's window holds.
#[derive(Debug, Clone, Default)]
struct Tally {
    judged_through: Option<i64>,
    window: Counts,
    window_latency: Latencies,
    reference: Counts,
    reference_latency: Latencies,
    error: Option<Judgement<RateFinding>>,
    latency: Option<Judgement<LatencyFinding>>,
}

impl Tally {
    /// The latest verdict convicts.
    fn bad(&self) -> bool {
        fn failed<T>(j: &Option<Judgement<T>>) -> bool {
            j.as_ref().is_some_and(|j| j.failed().is_some())
        }
        failed(&self.error) || failed(&self.latency)
    }
}

#[derive(Debug, Clone)]
pub struct MetricGate {
    params: MetricParams,
    plan: MetricPlan,
    /// Instances in the group before the refresh: not the new release.
    baseline: BTreeSet<String>,
    /// Wall-clock ms the refresh started.
    started_ms: i64,
    /// Per watched target group: (wall ms, share of new instances) each time it changed.
    shares: BTreeMap<String, Vec<(i64, f64)>>,
    points: BTreeMap<(String, Metric), BTreeMap<i64, f64>>,
    /// Per load balancer: the latest minute published.
    watermarks: BTreeMap<String, i64>,
    period: Option<i64>,
    /// CloudWatch's delay after a minute ends, as far as the answers tell: at least `delay.0` (a poll after
    /// the minute ended did not see it), at most `delay.1` (a poll saw it). See `learn_delay`.
    delay: (Option<i64>, Option<i64>),
    /// Per load balancer: when the latest answer that brought no new minute was asked.
    unseen_at: BTreeMap<String, i64>,
    answered: bool,
    tallies: BTreeMap<String, Tally>,
    /// When every watched target group first served from new instances only.
    full_at: Option<i64>,
    ready_at: Option<i64>,
    waiting_said: bool,
    settled: bool,
    disabled: Option<String>,
    failure_said: bool,
    notes: Vec<String>,
}

impl MetricGate {
    /// `baseline`: the group's instances before the refresh; `started_ms`: when the refresh started.
    pub fn new(params: MetricParams, plan: MetricPlan, baseline: impl IntoIterator<Item = String>, started_ms: i64) -> Self {
        Self {
            params,
            plan,
            baseline: baseline.into_iter().collect(),
            started_ms,
            shares: BTreeMap::new(),
            points: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            period: None,
            delay: (None, None),
            unseen_at: BTreeMap::new(),
            answered: false,
            tallies: BTreeMap::new(),
            full_at: None,
            ready_at: None,
            waiting_said: false,
            settled: false,
            disabled: None,
            failure_said: false,
            notes: Vec::new(),
        }
    }

    fn active(&self) -> bool {
        self.params.mode == MetricsMode::Auto && self.disabled.is_none() && !self.plan.watched.is_empty()
    }

    /// What GetMetricData returned at wall-clock `now` before the rollout began (the release's first look at
    /// every target group's recent minutes): the baseline and CloudWatch's grid, before the first poll.
    pub fn prime(&mut self, now: i64, seen: &MetricsSeen) {
        self.ingest(now, Some(seen));
    }

    /// The refresh really started earlier (a refresh an earlier run started, whose StartTime AWS reports).
    pub fn started_at(&mut self, ms: i64) {
        self.started_ms = self.started_ms.min(ms);
    }

    /// The grid of the answers so far, if any came with data.
    pub fn period_ms(&self) -> Option<i64> {
        self.period
    }

    /// What to ask at wall-clock `now` (None: nothing can have been published since the last answer).
    pub fn wants(&self, now: i64) -> Option<MetricAsk> {
        if !self.active() {
            return None;
        }
        let lbs: BTreeSet<&String> = self.plan.watched.iter().map(|w| &w.load_balancer).collect();
        if let Some(p) = self.period {
            // Minute m is published only after it ends, so nothing newer than the watermark's next minute
            // can show before watermark + 2 minutes: asking sooner would return what we have.
            if lbs.iter().all(|lb| self.watermarks.get(*lb).is_some_and(|wm| now < wm + 2 * p)) {
                return None;
            }
        }
        let p = self.period.unwrap_or(AWS_MINUTE_MS);
        let start = lbs
            .iter()
            .map(|lb| self.watermarks.get(*lb).map_or(self.started_ms - BASELINE_MINUTES * p, |wm| wm - 3 * p))
            .min()
            .unwrap_or(self.started_ms);
        let mut series = Vec::new();
        for w in &self.plan.watched {
            series.push((w.load_balancer.clone(), w.target_group.clone()));
            if let Comparison::Canary { reference } = &w.comparison {
                series.extend(reference.iter().map(|r| (w.load_balancer.clone(), r.clone())));
            }
        }
        Some(MetricAsk { series, start_ms: start })
    }

    /// How long from wall-clock `now` until the next minute is due to be published, when that comes before
    /// the next regular poll would: a poll then sees it at once rather than up to a poll interval later.
    /// Learnt from when minutes showed so far (None until then).
    pub fn next_publication_in(&self, now: i64) -> Option<i64> {
        if !self.active() {
            return None;
        }
        let (p, hi) = (self.period?, self.delay.1?);
        // While the delay is known only roughly, look half-way into what is left of the doubt: each minute
        // then halves it (a look that saw nothing raises the floor, one that saw it lowers the ceiling).
        let lag = match self.delay.0 {
            Some(lo) if hi - lo > 20 => (lo + hi) / 2,
            _ => hi + 5, // a few milliseconds late rather than early: timestamps are whole milliseconds
        };
        let due = self.plan.watched.iter().filter_map(|w| self.watermarks.get(&w.load_balancer)).map(|wm| wm + 2 * p + lag).min()?;
        (due > now).then_some(due - now)
    }

    /// What this answer (asked at `now`) tells about CloudWatch's delay: a load balancer's newest minute
    /// ended at `wm + p` and showed by `now`, after the last look that did not see it.
    fn learn_delay(&mut self, now: i64, before: &BTreeMap<String, i64>) {
        let Some(p) = self.period else { return };
        for (lb, wm) in &self.watermarks {
            if before.get(lb).is_none_or(|old| old >= wm) {
                self.unseen_at.insert(lb.clone(), now);
                continue;
            }
            let end = wm + p;
            let hi = (now - end).max(0);
            self.delay.1 = Some(self.delay.1.map_or(hi, |h| h.min(hi)));
            if let Some(lo) = self.unseen_at.get(lb).map(|t| t - end).filter(|lo| *lo >= 0) {
                self.delay.0 = Some(self.delay.0.map_or(lo, |l| l.max(lo)));
            }
            // A delay that varies (a floor above the ceiling): trust only the ceiling.
            if let (Some(lo), Some(hi)) = self.delay {
                if lo > hi {
                    self.delay.0 = None;
                }
            }
        }
    }

    /// One poll: the fleet's shares at wall-clock `now`, what the metric call returned (if one was made),
    /// then every newly published minute judged. Returns the evidence found (`at_secs`: the rollout's clock).
    pub fn observe(&mut self, now: i64, group: &Group, health: &HealthByGroup, seen: Option<&MetricsSeen>, at_secs: f64) -> Vec<Evidence> {
        if !self.active() {
            return vec![];
        }
        self.note_shares(now, group, health);
        self.ingest(now, seen);
        if self.disabled.is_some() {
            return vec![];
        }
        self.judge(now, at_secs)
    }

    fn note_shares(&mut self, now: i64, group: &Group, health: &HealthByGroup) {
        let members: BTreeSet<&str> = group.all_instances().map(|i| i.id.as_str()).collect();
        let mut all_new = true;
        for w in &self.plan.watched {
            let targets = health.get(&w.target_group).map(Vec::as_slice).unwrap_or_default();
            let healthy: Vec<&str> = targets
                .iter()
                .filter(|t| matches!(t.state, TargetState::Healthy | TargetState::Unavailable))
                .map(|t| t.target_id.as_str())
                .collect();
            let serving = if healthy.is_empty() {
                targets.iter().filter(|t| t.state == TargetState::Unhealthy).map(|t| t.target_id.as_str()).collect()
            } else {
                healthy
            };
            let new = serving.iter().filter(|id| members.contains(*id) && !self.baseline.contains(**id)).count();
            let share = if serving.is_empty() { 0.0 } else { new as f64 / serving.len() as f64 };
            all_new &= !serving.is_empty() && new == serving.len();
            let log = self.shares.entry(w.target_group.clone()).or_default();
            if log.last().is_none_or(|(_, s)| (*s - share).abs() > 1e-9) {
                log.push((now, share));
            }
        }
        if all_new && self.full_at.is_none() {
            self.full_at = Some(now);
        }
    }

    fn ingest(&mut self, now: i64, seen: Option<&MetricsSeen>) {
        match seen {
            None => {}
            Some(MetricsSeen::Failed { message, denied: true }) => {
                self.notes.push(format!("metrics unavailable from now on: GetMetricData was refused ({message}); the other evidence judges the release"));
                self.disabled = Some(message.clone());
            }
            Some(MetricsSeen::Failed { message, .. }) => {
                if !self.failure_said {
                    self.notes.push(format!("could not read the load balancer's metrics ({message}); asking again next poll"));
                    self.failure_said = true;
                }
            }
            Some(MetricsSeen::Data(series)) => {
                self.answered = true;
                let relevant: BTreeSet<&String> = self
                    .plan
                    .watched
                    .iter()
                    .flat_map(|w| {
                        let refs = match &w.comparison {
                            Comparison::Canary { reference } => reference.iter().collect(),
                            Comparison::Before => vec![],
                        };
                        std::iter::once(&w.target_group).chain(refs)
                    })
                    .collect();
                let before = self.watermarks.clone();
                for s in series.iter().filter(|s| relevant.contains(&s.key.target_group)) {
                    let store = self.points.entry((s.key.target_group.clone(), s.key.metric)).or_default();
                    store.extend(s.points.iter().copied());
                    if let Some(latest) = s.points.iter().map(|(t, _)| *t).max() {
                        let wm = self.watermarks.entry(s.key.load_balancer.clone()).or_insert(latest);
                        *wm = (*wm).max(latest);
                    }
                }
                let spacing = self.points.values().flat_map(|pts| pts.keys().zip(pts.keys().skip(1)).map(|(a, b)| b - a)).filter(|d| *d > 0).min();
                if !self.points.values().all(BTreeMap::is_empty) {
                    self.period = Some(spacing.unwrap_or(AWS_MINUTE_MS).min(AWS_MINUTE_MS));
                }
                self.learn_delay(now, &before);
            }
        }
    }

    fn value(&self, tg: &str, metric: Metric, minute: i64) -> Option<f64> {
        self.points.get(&(tg.to_string(), metric)).and_then(|p| p.get(&minute)).copied()
    }

    /// The time-weighted mean share of new instances in `tg` over [minute, minute + p).
    fn share_in(&self, tg: &str, minute: i64, p: i64) -> f64 {
        let Some(log) = self.shares.get(tg) else { return 0.0 };
        let end = minute + p;
        let mut current = log.iter().rev().find(|(at, _)| *at <= minute).map_or(0.0, |(_, s)| *s);
        let (mut t, mut total) = (minute, 0.0);
        for (at, s) in log.iter().filter(|(at, _)| *at > minute && *at < end) {
            total += current * (at - t) as f64;
            (t, current) = (*at, *s);
        }
        total += current * (end - t) as f64;
        total / p as f64
    }

    /// The target group's own minutes before the refresh.
    fn before(&self, tg: &str, p: i64) -> (Counts, Latencies) {
        let (mut c, mut l) = (Counts::default(), Latencies::default());
        let from = self.started_ms - BASELINE_MINUTES * p;
        if let Some(requests) = self.points.get(&(tg.to_string(), Metric::Requests)) {
            for (&m, &n) in requests.iter().filter(|(m, _)| **m >= from && **m + p <= self.started_ms) {
                c.add(n, self.value(tg, Metric::Errors, m).unwrap_or(0.0), 0.0);
                l.add(n, 0.0, self.value(tg, Metric::LatencyP99, m), self.value(tg, Metric::LatencyAverage, m));
            }
        }
        (c, l)
    }

    fn judge(&mut self, now: i64, at_secs: f64) -> Vec<Evidence> {
        let Some(p) = self.period else { return vec![] };
        let mut found = Vec::new();
        for w in self.plan.watched.clone() {
            let Some(&wm) = self.watermarks.get(&w.load_balancer) else { continue };
            let mut tally = self.tallies.remove(&w.target_group).unwrap_or_default();
            let refs: Vec<String> = match &w.comparison {
                Comparison::Canary { reference } => reference.clone(),
                Comparison::Before => vec![],
            };
            let after = tally.judged_through.unwrap_or(i64::MIN);
            // Published minutes not judged yet (BTreeMap::range panics on an empty inverted range).
            let minutes: BTreeSet<i64> = std::iter::once(&w.target_group)
                .chain(refs.iter())
                .filter_map(|tg| self.points.get(&(tg.clone(), Metric::Requests)))
                .flat_map(|pts| pts.iter().map(|(m, _)| *m).filter(|m| *m > after && *m <= wm))
                .collect();
            for m in minutes {
                tally.judged_through = Some(m);
                let share = self.share_in(&w.target_group, m, p);
                if share <= 0.0 {
                    continue;
                }
                let tg = &w.target_group;
                let n = self.value(tg, Metric::Requests, m).unwrap_or(0.0);
                let (p99, avg) = (self.value(tg, Metric::LatencyP99, m), self.value(tg, Metric::LatencyAverage, m));
                tally.window.add(n, self.value(tg, Metric::Errors, m).unwrap_or(0.0), share);
                let majority = share >= LATENCY_MIN_SHARE;
                if majority {
                    tally.window_latency.add(n, share, p99, avg);
                }
                for r in &refs {
                    let rn = self.value(r, Metric::Requests, m).unwrap_or(0.0);
                    tally.reference.add(rn, self.value(r, Metric::Errors, m).unwrap_or(0.0), 0.0);
                    if majority {
                        tally.reference_latency.add(rn, 0.0, self.value(r, Metric::LatencyP99, m), self.value(r, Metric::LatencyAverage, m));
                    }
                }
                let (base, base_latency) = match &w.comparison {
                    Comparison::Before => self.before(tg, p),
                    Comparison::Canary { .. } => (tally.reference, tally.reference_latency),
                };
                let error = error_verdict(&tally.window, &base, &self.params);
                let latency = latency_verdict(&tally.window_latency, &base_latency, &self.params);
                if n * share > 0.0 && (error.failed().is_some() || latency.failed().is_some()) {
                    found.push(evidence(tg, &w.comparison, &error, &latency, (m, now), at_secs));
                }
                (tally.error, tally.latency) = (Some(error), Some(latency));
            }
            self.tallies.insert(w.target_group.clone(), tally);
        }
        found
    }

    /// Whether the verification (fleet verified on the new release at wall-clock `now`) must wait for the
    /// minutes the new release served to be published. Says so once; gives up after the bound.
    pub fn awaiting(&mut self, now: i64) -> bool {
        if self.settled || !self.active() {
            return false;
        }
        let ready = *self.ready_at.get_or_insert(now);
        let needed = self.full_at.map_or(ready, |f| f.min(ready));
        let with_data: Vec<i64> = self.plan.watched.iter().filter_map(|w| self.watermarks.get(&w.load_balancer).copied()).collect();
        // A verdict that is bad now (evidence below the threshold yet) is no verification: the next minute
        // either adds to it or clears it.
        let standing = self.tallies.values().any(Tally::bad);
        let (deadline, published) = match self.period {
            Some(p) => (needed + PUBLISH_WAIT_MINUTES * p, !standing && with_data.iter().all(|wm| *wm > needed - p)),
            // Answers came, without a single datapoint: no requests, nothing will be published.
            None if self.answered => (now, true),
            None => (ready + PUBLISH_WAIT_MINUTES * AWS_MINUTE_MS, false),
        };
        if published {
            self.settled = true;
            return false;
        }
        if now > deadline {
            self.settled = true;
            self.notes.push(format!(
                "CloudWatch had not published the minutes the new release served after {PUBLISH_WAIT_MINUTES} minutes; verified on the other evidence"
            ));
            return false;
        }
        if !self.waiting_said {
            self.waiting_said = true;
            let tgs: Vec<&str> = self.plan.watched.iter().map(|w| tg_name(&w.target_group)).collect();
            self.notes.push(format!(
                "not yet verified: waiting for CloudWatch to publish the load balancer's metrics of the minutes the new release served ({}), at most {:.1}s more",
                tgs.join(", "),
                (deadline - now) as f64 / 1000.0
            ));
        }
        true
    }

    /// What the gate measured, per target group, for the end of a rollout.
    pub fn summary(&self) -> Vec<String> {
        if !self.active() {
            return vec![];
        }
        self.plan
            .watched
            .iter()
            .map(|w| {
                let against = w.comparison.against();
                let t = self.tallies.get(&w.target_group);
                let mut parts = Vec::new();
                match t.and_then(|t| t.error.as_ref()) {
                    Some(Judgement::Pass(f) | Judgement::Fail(f)) => parts.push(f.text(&against)),
                    Some(Judgement::NoEvidence(why)) => parts.push(format!("no verdict: {why}")),
                    None => parts.push("no verdict: no minute in which the new release served was published".into()),
                }
                if let Some(f) = t.and_then(|t| t.latency.as_ref()).and_then(Judgement::measured) {
                    parts.push(f.text(&against));
                }
                format!("metrics of {}: {}", tg_name(&w.target_group), parts.join("; "))
            })
            .collect()
    }

    /// What the gate has to say since last asked (waits, failures), for the progress output.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

/// A piece of evidence: the verdicts of the minute `when.0`, judged by the poll that began at `when.1`.
fn evidence(tg: &str, comparison: &Comparison, error: &Judgement<RateFinding>, latency: &Judgement<LatencyFinding>, when: (i64, i64), at_secs: f64) -> Evidence {
    let against = comparison.against();
    let mut texts = Vec::new();
    if let Some(f) = error.failed() {
        texts.push(f.text(&against));
    }
    if let Some(f) = latency.failed() {
        texts.push(f.text(&against));
    }
    let (name, reference) = match comparison {
        Comparison::Before => ("before", vec![]),
        Comparison::Canary { reference } => ("canary", reference.iter().map(|r| tg_name(r).to_string()).collect()),
    };
    let metric = MetricEvidence { minute_ms: when.0, seen_ms: when.1, comparison: name.into(), reference, error_rate: error.failed().copied(), latency: latency.failed().copied() };
    Evidence {
        kind: if error.failed().is_some() { EvidenceKind::ErrorRate } else { EvidenceKind::Latency },
        instance: String::new(),
        target_group: tg.to_string(),
        reason: Some(format!("{}: {}", tg_name(tg), texts.join("; "))),
        at_secs,
        metric: Some(metric),
    }
}

#[cfg(test)]
#[path = "metric_gate_tests.rs"]
mod tests;

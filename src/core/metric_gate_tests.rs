//! The metric gate over simulated minutes: a 3-instance group whose refresh starts at minute 10 and
//! replaces one instance every two minutes, an ALB sending `rpm` requests a minute spread evenly over the
//! healthy targets, CloudWatch publishing each minute two minutes after its start, a poll every 5 s.
//! Everything is expressed in minutes of `scale` (1.0: AWS; 0.01: a local AWS whose clock runs 100× faster),
//! so the same release must get the same verdicts at any scale.

use super::*;
use crate::core::metric_plan::Watched;
use crate::core::metrics::{Series, SeriesKey};
use crate::core::model::{GroupInstance, TargetHealth};

const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/shop-alb/0b";
const WEB: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-web/0a";
const REF: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-ref/0c";
const START_MINUTE: i64 = 10;

/// What the old and the new release answer.
#[derive(Clone, Copy)]
struct Sim {
    scale: f64,
    rpm: f64,
    old_rate: f64,
    new_rate: f64,
    old_p99: f64,
    new_p99: f64,
    /// The reference target group's rate (canary comparisons), on the old release throughout.
    ref_rate: f64,
}

impl Sim {
    fn new(new_rate: f64) -> Self {
        Self { scale: 1.0, rpm: 1000.0, old_rate: 0.002, new_rate, old_p99: 0.14, new_p99: 0.14, ref_rate: 0.002 }
    }
    fn minute(&self) -> i64 {
        (60_000.0 * self.scale).round() as i64
    }
    /// New instances (of 3) serving at wall time `t`.
    fn new_instances(&self, t: i64) -> usize {
        let m = t as f64 / self.minute() as f64;
        if m < 12.0 { 0 } else if m < 14.0 { 1 } else if m < 16.0 { 2 } else { 3 }
    }
    fn share_in_minute(&self, k: i64) -> f64 {
        let step = self.minute() / 12;
        (0..12).map(|i| self.new_instances(k * self.minute() + i * step) as f64 / 3.0).sum::<f64>() / 12.0
    }
    /// Every series, minutes 0 to the last one published at `t` (two minutes after its start).
    fn published(&self, t: i64, tgs: &[&str]) -> MetricsSeen {
        let last = t / self.minute() - 2;
        let mut series = Vec::new();
        for tg in tgs {
            let mut pts: BTreeMap<Metric, Vec<(i64, f64)>> = BTreeMap::new();
            for k in 0..=last {
                let w = if *tg == WEB { self.share_in_minute(k) } else { 0.0 };
                let rate = if *tg == WEB { (1.0 - w) * self.old_rate + w * self.new_rate } else { self.ref_rate };
                let p99 = (1.0 - w) * self.old_p99 + w * self.new_p99;
                let ts = k * self.minute();
                pts.entry(Metric::Requests).or_default().push((ts, self.rpm));
                let errors = (self.rpm * rate).round();
                if errors > 0.0 {
                    pts.entry(Metric::Errors).or_default().push((ts, errors));
                }
                pts.entry(Metric::LatencyP99).or_default().push((ts, p99));
                pts.entry(Metric::LatencyAverage).or_default().push((ts, p99 / 2.8));
            }
            for (metric, points) in pts {
                series.push(Series { key: SeriesKey { load_balancer: LB.into(), target_group: tg.to_string(), metric }, points });
            }
        }
        MetricsSeen::Data(series)
    }
}

/// The group at wall time `t`: `new` new instances and 3 − new old ones, all healthy in shop-web.
fn fleet(new: usize) -> (Group, HealthByGroup) {
    let ids: Vec<String> = (0..3).map(|i| if i < new { format!("i-new{i}") } else { format!("i-old{i}") }).collect();
    let group = Group {
        name: "shop-web".into(),
        target_group_arns: vec![WEB.into()],
        instances: ids.iter().map(|id| GroupInstance::in_service_healthy(id)).collect(),
        ..Default::default()
    };
    let targets =
        ids.iter().map(|id| TargetHealth { target_id: id.clone(), port: Some(80), state: TargetState::Healthy, reason: None, description: None }).collect();
    (group, HealthByGroup::from([(WEB.to_string(), targets)]))
}

fn gate(sim: &Sim, comparison: Comparison, params: MetricParams) -> MetricGate {
    let plan = MetricPlan { watched: vec![Watched { target_group: WEB.into(), load_balancer: LB.into(), comparison }], unavailable: vec![] };
    let baseline = (0..3).map(|i| format!("i-old{i}"));
    MetricGate::new(params, plan, baseline, START_MINUTE * sim.minute())
}

/// Polls from the refresh's start to minute `until`: every piece of evidence with the minute it came at.
fn run(sim: &Sim, comparison: Comparison, until: i64) -> (MetricGate, Vec<(f64, Evidence)>) {
    let mut g = gate(sim, comparison.clone(), MetricParams::default());
    let tgs: Vec<&str> = match &comparison {
        Comparison::Before => vec![WEB],
        Comparison::Canary { .. } => vec![WEB, REF],
    };
    let mut found = Vec::new();
    let step = sim.minute() / 12;
    let mut t = START_MINUTE * sim.minute();
    while t <= until * sim.minute() {
        let (group, health) = fleet(sim.new_instances(t));
        let seen = g.wants(t).map(|_| sim.published(t, &tgs));
        for e in g.observe(t, &group, &health, seen.as_ref(), 0.0) {
            found.push((t as f64 / sim.minute() as f64, e));
        }
        t += step;
    }
    (g, found)
}

#[test]
fn a_release_failing_its_users_is_evidence_every_published_minute_once_the_counts_show_it() {
    let (_, found) = run(&Sim::new(0.05), Comparison::Before, 24);
    assert!(found.len() >= 2, "{found:?}");
    let (minute, first) = &found[0];
    // The first new instance serves from minute 12; a third of 600 requests a minute at 5 % needs two or
    // three minutes, published two minutes later.
    assert!((14.0..=18.0).contains(minute), "first evidence at minute {minute}");
    assert_eq!(first.kind, EvidenceKind::ErrorRate);
    let reason = first.reason.clone().unwrap();
    assert!(reason.starts_with("shop-web: 5xx rate") && reason.contains("vs 0.2 % before") && reason.contains("p < 0.00"), "{reason}");
    // One piece per newly published minute: consecutive minutes, not consecutive polls.
    let minutes: Vec<i64> = found.iter().map(|(m, _)| *m as i64).collect();
    assert!(minutes.windows(2).all(|w| w[1] > w[0] || w[1] == w[0]), "{minutes:?}");
    assert!(found.len() as i64 <= 24 - 14 + 1, "at most one per published minute: {}", found.len());
    let m = found[0].1.metric.as_ref().unwrap();
    assert_eq!(m.comparison, "before");
    assert!(m.error_rate.unwrap().new_rate > 0.03, "{m:?}");
}

#[test]
fn a_release_as_good_as_the_old_one_is_never_evidence() {
    for rate in [0.002, 0.0022, 0.0018] {
        let (g, found) = run(&Sim::new(rate), Comparison::Before, 40);
        assert!(found.is_empty(), "{rate}: {found:?}");
        let summary = g.summary();
        assert!(summary[0].starts_with("metrics of shop-web: 5xx rate"), "{summary:?}");
    }
}

#[test]
fn the_verdicts_do_not_depend_on_how_fast_the_endpoints_clock_runs() {
    let at = |scale: f64| {
        let sim = Sim { scale, ..Sim::new(0.05) };
        let (g, found) = run(&sim, Comparison::Before, 24);
        let minutes: Vec<i64> = found.iter().map(|(m, _)| m.floor() as i64).collect();
        (minutes, g.period_ms())
    };
    let (aws, p_aws) = at(1.0);
    let (local, p_local) = at(0.01);
    assert_eq!((p_aws, p_local), (Some(60_000), Some(600)), "the grid read from the timestamps");
    assert_eq!(aws, local, "same evidence in the same minutes");
}

#[test]
fn a_latency_regression_alone_is_evidence() {
    let sim = Sim { new_p99: 0.42, ..Sim::new(0.002) };
    let (_, found) = run(&sim, Comparison::Before, 24);
    assert!(found.len() >= 2, "{found:?}");
    assert!(found.iter().all(|(_, e)| e.kind == EvidenceKind::Latency), "{found:?}");
    assert!(found[0].1.reason.as_deref().unwrap().contains("p99 latency"), "{found:?}");
}

#[test]
fn a_canary_is_judged_against_its_reference_over_the_same_minutes() {
    let canary = Comparison::Canary { reference: vec![REF.into()] };
    let (_, found) = run(&Sim::new(0.05), canary.clone(), 24);
    assert!(found.len() >= 2, "{found:?}");
    assert!(found[0].1.reason.as_deref().unwrap().contains("in shop-ref over the same minutes"), "{found:?}");
    // A bad day for everyone (the reference fails as much as the canary) is not the canary's fault.
    let (_, found) = run(&Sim { old_rate: 0.05, ref_rate: 0.05, ..Sim::new(0.05) }, canary, 24);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn too_few_requests_is_no_evidence_either_way() {
    let sim = Sim { rpm: 20.0, ..Sim::new(0.5) };
    let (g, found) = run(&sim, Comparison::Before, 20);
    assert!(found.is_empty(), "{found:?}");
    assert!(g.summary()[0].contains("too few requests"), "{:?}", g.summary());
}

#[test]
fn the_verification_waits_for_the_minutes_the_new_release_served_and_no_longer() {
    let sim = Sim::new(0.002);
    let mut g = gate(&sim, Comparison::Before, MetricParams::default());
    let m = sim.minute();
    // Polls until the fleet is all new at minute 16; the refresh "ends" at minute 16.5.
    let mut t = START_MINUTE * m;
    while t <= 33 * m / 2 {
        let (group, health) = fleet(sim.new_instances(t));
        let seen = g.wants(t).map(|_| sim.published(t, &[WEB]));
        g.observe(t, &group, &health, seen.as_ref(), 0.0);
        t += m / 12;
    }
    assert!(g.awaiting(t), "minute 16 is published only at minute 18");
    assert!(g.take_notes().iter().any(|n| n.contains("not yet verified")), "said on screen");
    let mut waited = 0;
    while g.awaiting(t) {
        let (group, health) = fleet(3);
        let seen = g.wants(t).map(|_| sim.published(t, &[WEB]));
        g.observe(t, &group, &health, seen.as_ref(), 0.0);
        t += m / 12;
        waited += 1;
    }
    assert!((18 * m..=19 * m).contains(&t), "released once minute 16 was published: at {}", t as f64 / m as f64);
    assert!(waited > 0);
    assert!(!g.awaiting(t), "settled");

    // Nothing published any more (traffic stopped): the wait ends at its bound, and says so.
    let mut g = gate(&sim, Comparison::Before, MetricParams::default());
    let t0 = 17 * m;
    let (group, health) = fleet(3);
    g.observe(t0, &group, &health, Some(&sim.published(t0, &[WEB])), 0.0);
    assert!(g.awaiting(t0));
    assert!(g.awaiting(t0 + 4 * m));
    assert!(!g.awaiting(t0 + 6 * m));
    assert!(g.take_notes().iter().any(|n| n.contains("had not published")), "said on screen");
}

#[test]
fn asks_only_when_a_new_minute_can_have_been_published_and_stops_when_refused() {
    let sim = Sim::new(0.002);
    let mut g = gate(&sim, Comparison::Before, MetricParams::default());
    let m = sim.minute();
    let t = 12 * m;
    let first = g.wants(t).expect("nothing known yet");
    assert_eq!(first.start_ms, START_MINUTE * m - BASELINE_MINUTES * m, "the baseline's ten minutes");
    assert_eq!(first.series, vec![(LB.to_string(), WEB.to_string())]);
    let (group, health) = fleet(0);
    // At minute 15, minutes up to 13 are published: minute 14 ends at 15 and cannot show before, and
    // asking again only starts three minutes before the latest (for datapoints that come late).
    let t = 15 * m;
    g.observe(t, &group, &health, Some(&sim.published(t, &[WEB])), 0.0);
    assert_eq!(g.wants(t - 1), None);
    assert_eq!(g.wants(t).map(|a| a.start_ms), Some(10 * m));

    let refused = MetricsSeen::Failed { message: "AccessDenied: cloudwatch:GetMetricData".into(), denied: true };
    assert!(g.observe(16 * m, &group, &health, Some(&refused), 0.0).is_empty());
    assert_eq!(g.wants(20 * m), None, "no more asking once refused");
    assert!(!g.awaiting(20 * m), "nothing to wait for");
    assert!(g.take_notes().iter().any(|n| n.contains("metrics unavailable from now on")));
}

#[test]
fn fail_open_traffic_goes_to_unhealthy_targets_when_none_is_healthy() {
    let sim = Sim::new(0.002);
    let mut g = gate(&sim, Comparison::Before, MetricParams::default());
    let (group, mut health) = fleet(1);
    for t in health.get_mut(WEB).unwrap() {
        t.state = if t.target_id.starts_with("i-new") { TargetState::Unhealthy } else { TargetState::Draining };
    }
    g.observe(0, &group, &health, None, 0.0);
    assert_eq!(g.share_in(WEB, 0, 60_000), 1.0, "only the unhealthy new target serves");
}

#[test]
fn the_next_look_comes_when_the_next_minute_is_due() {
    // The sim publishes minute k two minutes after its start: a minute after it ends.
    let sim = Sim::new(0.002);
    let mut g = gate(&sim, Comparison::Before, MetricParams::default());
    let m = sim.minute();
    let (group, health) = fleet(0);
    let look = |g: &mut MetricGate, t: i64| {
        g.observe(t, &group, &health, Some(&sim.published(t, &[WEB])), 0.0);
    };
    assert_eq!(g.next_publication_in(12 * m), None, "nothing learnt yet");
    look(&mut g, 12 * m);
    assert_eq!(g.next_publication_in(12 * m), None, "one answer tells no delay");
    // Minute 11 ended at 12: not seen at 12, seen at 13 + 1/12. The next look goes half-way into that doubt.
    let t = 13 * m + m / 12;
    look(&mut g, t);
    assert_eq!(g.next_publication_in(t), Some(13 * m + (m + m / 12) / 2 - t));
    // Minute 12 ended at 13: not seen at 13.75, seen at 14 + 10 ms: between 0.75 and 1 minute (+ 10 ms).
    look(&mut g, 14 * m - m / 4);
    look(&mut g, 14 * m + 10);
    assert_eq!(g.next_publication_in(14 * m + 10), Some(14 * m + (3 * m / 4 + m + 10) / 2 - (14 * m + 10)));
    // Not seen a millisecond before 15, seen at 15: known to the millisecond, so the next look comes just after.
    look(&mut g, 15 * m - 1);
    look(&mut g, 15 * m);
    assert_eq!(g.next_publication_in(15 * m), Some(m + 5), "minute 14 ends at 15 and shows at 16");
    assert_eq!(g.next_publication_in(16 * m + 10), None, "due already: the regular poll asks");
}

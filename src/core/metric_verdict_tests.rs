//! Table tests of the metric verdicts: counts against thresholds, too few requests, the weighting by the
//! new instances' share, latency with and without percentiles, and how findings read.

use super::*;

fn params() -> MetricParams {
    MetricParams::default()
}

/// Minutes the new instances served: `requests` in all, a `share` of them new, `errors` 5XX.
fn window(requests: f64, share: f64, errors: f64) -> Counts {
    Counts { requests, errors, new_requests: requests * share }
}

fn baseline(requests: f64, errors: f64) -> Counts {
    Counts { requests, errors, new_requests: 0.0 }
}

#[test]
fn error_rate_verdicts_on_counts() {
    // (what, window, baseline, margin, expected: "fail" | "pass" | "none")
    let cases: &[(&str, Counts, Counts, f64, &str)] = &[
        ("5 % against 0.2 %, whole fleet new", window(1840.0, 1.0, 92.0), baseline(6000.0, 12.0), 0.01, "fail"),
        ("the same rate as before", window(1840.0, 1.0, 4.0), baseline(6000.0, 12.0), 0.01, "pass"),
        ("10 % worse than before (0.22 %)", window(20_000.0, 1.0, 44.0), baseline(20_000.0, 40.0), 0.01, "pass"),
        ("10 % better than before", window(20_000.0, 1.0, 36.0), baseline(20_000.0, 40.0), 0.01, "pass"),
        ("no errors at all", window(5000.0, 1.0, 0.0), baseline(5000.0, 0.0), 0.01, "pass"),
        // 3 x 2 %: a 4 point increase, clear after 1 500 requests.
        ("3x of 2 %", window(1500.0, 1.0, 90.0), baseline(6000.0, 120.0), 0.01, "fail"),
        // 3 x 1 % is a 2 point increase: one margin above it needs thousands of requests to be sure of.
        ("3x of 1 %, 3 000 requests: not sure yet", window(3000.0, 1.0, 90.0), baseline(6000.0, 60.0), 0.01, "pass"),
        ("3x of 1 %, 6 000 requests", window(6000.0, 1.0, 180.0), baseline(6000.0, 60.0), 0.01, "fail"),
        // Significant but within the margin: at a million requests 0.2 % -> 0.5 % is no conviction ...
        ("0.3 points up at huge traffic", window(1e6, 1.0, 5000.0), baseline(1e6, 2000.0), 0.01, "pass"),
        // ... unless the user's margin is smaller than the increase.
        ("0.3 points up, margin 0.1 point", window(1e6, 1.0, 5000.0), baseline(1e6, 2000.0), 0.001, "fail"),
        ("a few errors on few requests", window(210.0, 1.0, 3.0), baseline(6000.0, 12.0), 0.01, "pass"),
        ("too few new requests", window(150.0, 1.0, 75.0), baseline(6000.0, 12.0), 0.01, "none"),
        ("too few baseline requests", window(2000.0, 1.0, 100.0), baseline(120.0, 0.0), 0.01, "none"),
        // Half the window's requests went to the new instances: too few of them, whatever the total.
        ("many requests, too few on the new release", window(390.0, 0.5, 40.0), baseline(6000.0, 12.0), 0.01, "none"),
    ];
    for (what, w, b, margin, want) in cases {
        let p = MetricParams { max_error_rate_increase: *margin, ..params() };
        let got = match error_verdict(w, b, &p) {
            Judgement::Fail(_) => "fail",
            Judgement::Pass(_) => "pass",
            Judgement::NoEvidence(_) => "none",
        };
        assert_eq!(got, *want, "{what}: {:?}", error_verdict(w, b, &p));
    }
}

#[test]
fn the_excess_is_divided_by_the_new_instances_share() {
    // 5 000 requests of which a fifth went to new instances answering 5 % (old ones 0.2 %): the group's
    // rate is 1.16 %, under a 1 point margin above 0.2 % as it stands, but the new release's is 5 %.
    let (old_part, new_part) = (4000.0 * 0.002, 1000.0 * 0.05);
    let w = window(5000.0, 0.2, old_part + new_part);
    let b = baseline(6000.0, 12.0);
    let Judgement::Fail(f) = error_verdict(&w, &b, &params()) else { panic!("{:?}", error_verdict(&w, &b, &params())) };
    assert!((f.new_rate - 0.05).abs() < 0.002, "{f:?}");
    assert!((f.new_requests - 1000.0).abs() < 1e-9, "{f:?}");
    // Unweighted, the same counts would pass: the weighting is what convicts.
    let unweighted = window(5000.0, 1.0, old_part + new_part);
    assert!(matches!(error_verdict(&unweighted, &b, &params()), Judgement::Pass(_)));
    // And a new release as good as the old one stays unconvicted at any share.
    for share in [0.05, 0.2, 0.5, 1.0] {
        let w = window(10_000.0, share, 10_000.0 * 0.002);
        assert!(matches!(error_verdict(&w, &b, &params()), Judgement::Pass(_)), "share {share}");
    }
}

#[test]
fn p_values_follow_the_normal_tail() {
    for (z, p) in [(0.0, 0.5), (1.6449, 0.05), (2.3263, 0.01), (3.0902, 0.001), (-1.6449, 0.95)] {
        assert!((upper_tail(z) - p).abs() < 1e-5, "z {z}: {}", upper_tail(z));
    }
    assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
}

fn lat(requests: f64, share: f64, p99: Option<f64>, avg: Option<f64>) -> Latencies {
    let mut l = Latencies::default();
    l.add(requests, share, p99, avg);
    l
}

#[test]
fn latency_verdicts() {
    let base = lat(6000.0, 0.0, Some(0.14), Some(0.05));
    let cases: &[(&str, Latencies, Latencies, &str, LatencyStat)] = &[
        ("p99 tripled", lat(1000.0, 1.0, Some(0.42), Some(0.15)), base, "fail", LatencyStat::P99),
        ("p99 up a fifth", lat(1000.0, 1.0, Some(0.168), Some(0.06)), base, "pass", LatencyStat::P99),
        ("p99 the same", lat(1000.0, 1.0, Some(0.14), Some(0.05)), base, "pass", LatencyStat::P99),
        // 10 ms -> 40 ms is 4x, but under the 50 ms floor nobody notices.
        ("fast service, under the floor", lat(1000.0, 1.0, Some(0.04), None), lat(6000.0, 0.0, Some(0.01), None), "pass", LatencyStat::P99),
        ("fast service, over the floor", lat(1000.0, 1.0, Some(0.09), None), lat(6000.0, 0.0, Some(0.01), None), "fail", LatencyStat::P99),
        // No percentiles: the average, corrected for the share (half the requests at 0.15 s, half at 0.05 s).
        ("average, half new, tripled", lat(2000.0, 0.5, None, Some(0.10)), lat(6000.0, 0.0, None, Some(0.05)), "fail", LatencyStat::Average),
        ("average, half new, the same", lat(2000.0, 0.5, None, Some(0.05)), lat(6000.0, 0.0, None, Some(0.05)), "pass", LatencyStat::Average),
    ];
    for (what, w, b, want, stat) in cases {
        let v = latency_verdict(w, b, &params());
        let got = match &v {
            Judgement::Fail(_) => "fail",
            Judgement::Pass(_) => "pass",
            Judgement::NoEvidence(_) => "none",
        };
        assert_eq!(got, *want, "{what}: {v:?}");
        assert_eq!(v.measured().map(|f| f.stat), Some(*stat), "{what}");
    }
    assert!(matches!(latency_verdict(&lat(100.0, 1.0, Some(1.0), None), &base, &params()), Judgement::NoEvidence(_)));
    assert!(matches!(latency_verdict(&lat(1000.0, 1.0, None, None), &lat(6000.0, 0.0, None, None), &params()), Judgement::NoEvidence(_)));
    let tripled = latency_verdict(&lat(2000.0, 0.5, None, Some(0.10)), &lat(6000.0, 0.0, None, Some(0.05)), &params());
    assert!((tripled.failed().unwrap().new_secs - 0.15).abs() < 1e-9, "{tripled:?}");
}

#[test]
fn findings_read_like_the_issue_says() {
    let f = RateFinding { new_rate: 0.041, old_rate: 0.002, new_requests: 1840.0, p_value: 0.0002 };
    assert_eq!(f.text("before"), "5xx rate 4.1 % on the new release vs 0.2 % before, 1 840 requests, p < 0.001");
    let l = LatencyFinding { stat: LatencyStat::P99, new_secs: 0.42, old_secs: 0.14, ratio: 3.0, new_requests: 1_234_567.0 };
    assert_eq!(l.text("in shop-web over the same minutes"), "p99 latency 420 ms on the new release vs 140 ms in shop-web over the same minutes (3.0×), 1 234 567 requests");
    assert_eq!(percent(0.0021), "0.21 %");
    assert_eq!(seconds(1.5), "1.50 s");
    assert_eq!(p_text(0.00001), "p < 0.0001");
    assert_eq!(count(999.0), "999");
}

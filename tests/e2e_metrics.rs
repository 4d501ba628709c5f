//! End-to-end: the metric gate with the real binary, the real AWS SDK (CloudWatch GetMetricData over RPC v2
//! CBOR, ELBv2 DescribeTargetGroups) and the local AWS's Application Load Balancer metrics, drawn per minute
//! of emulated time from the instances that serve (scripts/emulator/README.md): a release whose health
//! checks pass and whose requests fail 5 % of the time is rolled back (exit 3) with the metric named; one
//! with the same error rate as the old one ships (exit 0); a latency-only regression is rolled back; a
//! group behind a Network Load Balancer (no ALB metrics) ships with a note. Time scale 0.01: a metric minute
//! is 0.6 s, which bakeroll reads from CloudWatch's timestamps, not from any setting.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

/// The kinds of evidence that rolled the first group back.
fn evidence_kinds(s: &Value) -> Vec<String> {
    let failure = &s["deploy"]["groups"][0]["outcome"]["reason"]["failure"];
    failure["evidence"].as_array().unwrap_or(&vec![]).iter().filter_map(|e| e["kind"].as_str().map(str::to_string)).collect()
}

#[test]
fn a_release_failing_five_percent_of_its_requests_is_rolled_back_and_one_as_good_as_the_old_ships() {
    let aws = LocalAws::start("metrics-rate");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();

    // Healthy health checks (the release answers /health), 5 % of real requests answered 5XX.
    let out = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "--output", "json", "ship", "--commit", "a5a5a5a", "--tag", "local-aws:error-rate=0.05"]);
    assert_eq!(out.status.code(), Some(3), "rolled back, fleet verified on the previous release");
    let s = summary(&out);
    let kinds = evidence_kinds(&s);
    assert!(!kinds.is_empty() && kinds.iter().all(|k| k == "error-rate"), "only the metric held against it: {s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the new release failed its users"), "{stderr}");
    assert!(stderr.contains("5xx rate") && stderr.contains("on the new release vs") && stderr.contains("before"), "the metric is named: {stderr}");
    let first = &s["deploy"]["groups"][0]["outcome"]["reason"]["failure"]["evidence"][0];
    let rate = first["metric"]["error_rate"]["new_rate"].as_f64().unwrap();
    assert!((0.02..0.10).contains(&rate), "about 5 %: {first}");
    assert!(first["metric"]["error_rate"]["p_value"].as_f64().unwrap() < 0.001, "{first}");
    assert_eq!(s["api_calls"]["elasticloadbalancing:DescribeTargetGroups"], 1, "{s}");
    aws.assert_schema_valid(&[&s]);
    assert_fleet_on(&aws.inspect("shop-web"), &old);

    // The same error rate as the old release (the emulator's default, 0.2 %): ships, and says what it measured.
    let out = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "--output", "json", "ship", "--commit", "b5b5b5b", "--tag", "local-aws:error-rate=0.002"]);
    assert_eq!(out.status.code(), Some(0), "an as-good release is never rolled back by this gate");
    let s = summary(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics of shop-web: 5xx rate") && stderr.contains("p99 latency"), "{stderr}");
    assert!(s["api_calls"]["cloudwatch:GetMetricData"].as_u64() > Some(1), "{s}");
    assert_fleet_on(&aws.inspect("shop-web"), s["bake"]["ami_id"].as_str().unwrap());
}

#[test]
fn a_latency_only_regression_is_rolled_back() {
    let aws = LocalAws::start("metrics-latency");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();
    // Three times slower (mean 0.15 s against the default 0.05 s), no more errors, healthy health checks.
    let out = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "--output", "json", "ship", "--commit", "c5c5c5c", "--tag", "local-aws:latency=0.15"]);
    assert_eq!(out.status.code(), Some(3));
    let s = summary(&out);
    let kinds = evidence_kinds(&s);
    assert!(!kinds.is_empty() && kinds.iter().all(|k| k == "latency"), "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("p99 latency") && stderr.contains("on the new release vs"), "{stderr}");
    aws.assert_schema_valid(&[&s]);
    assert_fleet_on(&aws.inspect("shop-web"), &old);
}

/// pipeline/local.toml for another group (user_data made absolute, so the file can live anywhere).
fn pipeline_for(aws: &LocalAws, group: &str) -> String {
    let mut text = std::fs::read_to_string(aws.repo.join("pipeline/local.toml")).unwrap();
    let script = aws.repo.join("scripts/provision-demo.sh");
    text = text.replace("user_data = \"scripts/provision-demo.sh\"", &format!("user_data = \"{}\"", script.display()));
    text = text.replace("auto_scaling_groups = [\"shop-web\"]", &format!("auto_scaling_groups = [\"{group}\"]"));
    let path: PathBuf = aws.dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_group_behind_no_application_load_balancer_ships_with_a_note() {
    let aws = LocalAws::start("metrics-nlb");
    aws.seed();
    let made = aws.python()
        .arg(aws.repo.join("tests/support/nlb_stack.py"))
        .arg(aws.dir.join("seed.json"))
        .output()
        .unwrap();
    assert!(made.status.success(), "nlb_stack: {}", String::from_utf8_lossy(&made.stderr));
    let tcp = pipeline_for(&aws, "shop-tcp");
    // Even a release failing its requests: no ALB, no HTTP codes to read; its health checks pass.
    let out = aws.bakeroll(&["--pipeline", &tcp, "--output", "json", "ship", "--commit", "d5d5d5d", "--tag", "local-aws:error-rate=0.05"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics unavailable: target group shop-tcp is behind a Network Load Balancer (shop-nlb)") && stderr.contains("the other evidence judges"),
        "{stderr}"
    );
    let s = summary(&out);
    assert!(s["api_calls"].get("cloudwatch:GetMetricData").is_none(), "nothing to ask CloudWatch: {s}");
    assert_fleet_on(&aws.inspect("shop-tcp"), s["bake"]["ami_id"].as_str().unwrap());
}

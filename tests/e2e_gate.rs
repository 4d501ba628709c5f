//! End-to-end: the health gate's inputs the local AWS emulates — CloudWatch alarms in a refresh's
//! AlarmSpecification (bakeroll checks them before starting and names the one that stopped a refresh)
//! and launch lifecycle hooks (a slow but healthy hook is no failure; an ABANDON is evidence) — with
//! the real binary, the real AWS SDK (CloudWatch over RPC v2 CBOR) and an independent boto3 client.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

/// pipeline/local.toml with `extra` lines added to its environment, written beside the state dir
/// (user_data made absolute, so the file can live anywhere).
fn pipeline(aws: &LocalAws, name: &str, extra: &str, replace: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(aws.repo.join("pipeline/local.toml")).unwrap();
    let script = aws.repo.join("scripts/provision-demo.sh");
    text = text.replace("user_data = \"scripts/provision-demo.sh\"", &format!("user_data = \"{}\"", script.display()));
    text = text.replace("[environments.local]\n", &format!("[environments.local]\n{extra}\n"));
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in pipeline/local.toml");
        text = text.replace(from, to);
    }
    let path: PathBuf = aws.dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn world(aws: &LocalAws, args: &[&str]) -> Command {
    let mut c = aws.python();
    c.arg(aws.repo.join("tests/support/gate_world.py")).args(args);
    c
}

fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

#[test]
fn a_missing_alarm_refuses_the_deploy_and_an_alarm_in_alarm_is_named() {
    let aws = LocalAws::start("gate-alarms");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();
    assert_eq!(seed["alarm_names"][0], "shop-web-5xx", "{seed}");

    // An alarm that does not exist: exit 2 naming it, before anything is baked or changed.
    let missing = pipeline(&aws, "missing", "alarms = [\"shop-web-5xx\", \"shop-web-latnecy\"]", &[]);
    let before = aws.dump();
    let out = aws.bakeroll(&["--pipeline", &missing, "--output", "json", "deploy", "--ami", &old]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shop-web-latnecy") && stderr.contains("not found"), "{stderr}");
    assert!(!stderr.contains("shop-web-5xx,"), "only the missing alarm is named: {stderr}");
    assert_eq!(aws.dump(), before, "nothing changed");

    // The seeded alarm goes to ALARM while the refresh runs: AWS fails it and rolls it back, bakeroll
    // names the alarm in its text, its JSON summary and the exit code is 3.
    let alarmed = pipeline(&aws, "alarmed", "alarms = [\"shop-web-5xx\"]", &[]);
    let mut trip = world(&aws, &["alarm-when", "shop-web", "InProgress", "shop-web-5xx"]).spawn().unwrap();
    let out = aws.bakeroll(&["--pipeline", &alarmed, "--output", "json", "ship", "--commit", "a1a1a1a"]);
    assert!(trip.wait().unwrap().success(), "the alarm was set");
    assert_eq!(out.status.code(), Some(3), "rolled back, fleet verified on the previous release");
    let s = summary(&out);
    let reason = &s["deploy"]["groups"][0]["outcome"]["reason"];
    assert_eq!(reason["kind"], "alarm", "{s}");
    assert_eq!(reason["alarms"], serde_json::json!(["shop-web-5xx"]), "{s}");
    assert_eq!(reason["rolled_back_by_aws"], true, "{s}");
    assert!(s["api_calls"]["cloudwatch:DescribeAlarms"].as_u64() >= Some(2), "preflight and the naming: {s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CloudWatch alarm shop-web-5xx in ALARM"), "{stderr}");
    aws.assert_schema_valid(&[&s]);
    assert_fleet_on(&aws.inspect("shop-web"), &old);
}

#[test]
fn a_slow_launch_hook_is_no_failure_and_an_abandoned_launch_is_evidence() {
    let aws = LocalAws::start("gate-hooks");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();
    // Every new instance waits on a hook. health_grace 2 s real = 200 AWS s; each new instance's
    // hook completes after 400 AWS s, which a grace counted from launch would call a failure.
    let short = pipeline(&aws, "short-grace", "", &[("health_grace = \"20s\"", "health_grace = \"2s\"")]);
    assert!(world(&aws, &["hook", "shop-web", "3600", "CONTINUE"]).status().unwrap().success());
    let out = aws.bakeroll(&[
        "--pipeline", &short, "--output", "json", "--events", &aws.dir.join("slow.ndjson").to_string_lossy(), "ship", "--commit",
        "b0b0b0b", "--tag", "local-aws:lifecycle=continue-after:400",
    ]);
    assert_eq!(out.status.code(), Some(0), "a healthy release behind a slow hook deploys");
    let s = summary(&out);
    let ami = s["bake"]["ami_id"].as_str().unwrap().to_string();
    assert_fleet_on(&aws.inspect("shop-web"), &ami);
    let events = std::fs::read_to_string(aws.dir.join("slow.ndjson")).unwrap();
    assert!(
        events.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).any(|e| e["waiting_on_hook"].as_u64() > Some(0)),
        "progress showed instances waiting on the hook"
    );

    // A release whose instances' launches are abandoned: bakeroll rolls back on that evidence. The
    // previous release's instances (launched by the rollback) are let go by the hook's default after 60 AWS s.
    // Each launch is abandoned 60 AWS s in (0.6 s real): the refresh fails on AWS's side only after three
    // rounds of two, so a poll delayed by a loaded machine (a CI run once saw 1 s between two) still sees
    // the first abandoned launches before AWS's own rollback; at 20 AWS s it sometimes did not.
    assert!(world(&aws, &["hook", "shop-web", "60", "CONTINUE"]).status().unwrap().success());
    let out = aws.bakeroll(&[
        "--pipeline", "pipeline/local.toml", "--output", "json", "ship", "--commit", "c0c0c0c", "--tag",
        "local-aws:lifecycle=abandon-after:60",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let s = summary(&out);
    let failure = &s["deploy"]["groups"][0]["outcome"]["reason"]["failure"];
    let evidence = failure["evidence"].as_array().unwrap_or_else(|| panic!("bakeroll's own rollback, on evidence: {s}"));
    let kinds: Vec<&str> = evidence.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.len() >= 2 && kinds.iter().all(|k| *k == "abandoned"), "{s}");
    assert_eq!(s["api_calls"]["autoscaling:RollbackInstanceRefresh"], 1, "bakeroll's own rollback: {s}");
    aws.assert_schema_valid(&[&s]);
    assert_fleet_on(&aws.inspect("shop-web"), &ami);
    assert_ne!(ami, old);
}

//! End-to-end: the fast subset of the reliability matrix (the whole matrix is `scripts/reliability/run`,
//! its results RELIABILITY.md). The real binary ships through `scripts/faultproxy`, with one fault of
//! each kind at one step of `ship` — throttling, server errors, a connection reset after AWS acted, an
//! answer held past the attempt timeout, SIGTERM and SIGKILL while a call is in flight — and two ships of
//! one environment start together. Each test asserts the end state read from the local AWS (the fleet,
//! what was created, what is left behind), not only the exit code.

mod support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::faultproxy::FaultProxy;
use support::{assert_fleet_on, assert_nothing_left, LocalAws};

const PIPELINE: &str = "pipeline/local.toml";
/// Seconds one HTTP attempt may take (BAKEROLL_HTTP_ATTEMPT_TIMEOUT): a held answer goes past it.
const ATTEMPT_TIMEOUT: &str = "2";

fn ship(aws: &LocalAws, proxy: &FaultProxy, commit: &str, extra: &[&str]) -> Command {
    let mut args = vec!["--pipeline", PIPELINE, "--no-progress", "ship", "--commit", commit];
    args.extend_from_slice(extra);
    let mut c = aws.command(&args);
    c.env("AWS_ENDPOINT_URL", &proxy.endpoint).env("BAKEROLL_HTTP_ATTEMPT_TIMEOUT", ATTEMPT_TIMEOUT);
    c
}

fn run(mut c: Command) -> (Option<i32>, String) {
    let out: Output = c.output().expect("run bakeroll");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- bakeroll exit {:?}\n{stderr}", out.status.code());
    (out.status.code(), stderr)
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn bakeroll")
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- bakeroll exit {:?}\n{stderr}", out.status.code());
    (out.status.code(), stderr)
}

/// Sends `signal` to bakeroll once `operation` is held in the proxy (and has reached the local AWS).
fn signal_while_held(proxy: &FaultProxy, child: &mut Child, operation: &str, signal: &str) {
    proxy.wait_held(operation, || child.try_wait().unwrap().is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
}

fn seeded(name: &str, rules: &[&str]) -> (LocalAws, FaultProxy, String) {
    let aws = LocalAws::start(name);
    let seed = aws.seed();
    let proxy = FaultProxy::start(&aws, rules);
    (aws, proxy, seed["base_ami"].as_str().unwrap().to_string())
}

/// The one image baked for `commit` (a second one would be a leak).
fn image_of(state: &Value, commit: &str) -> String {
    let name = format!("shop-{commit}");
    let images: Vec<&Value> = state["images"].as_array().unwrap().iter().filter(|i| i["name"] == name.as_str()).collect();
    assert_eq!(images.len(), 1, "one image for {commit}: {state}");
    assert_eq!(images[0]["state"], "available", "{state}");
    images[0]["id"].as_str().unwrap().to_string()
}

fn arrival(call: &Value) -> SystemTime {
    humantime::parse_rfc3339(call["time"].as_str().unwrap()).expect("an RFC 3339 arrival time")
}

#[test]
fn throttled_refresh_start_is_ridden_out_within_the_sdk_backoff() {
    let (aws, proxy, _) = seeded("rel-throttle", &["StartInstanceRefresh=throttle@1-3"]);
    let (code, stderr) = run(ship(&aws, &proxy, "relthr1", &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let state = aws.inspect("shop-web");
    assert_fleet_on(&state, &image_of(&state, "relthr1"));
    assert_eq!(state["refreshes"].as_array().unwrap().len(), 1, "{state}");
    assert_nothing_left(&state);
    let calls = proxy.calls("StartInstanceRefresh");
    let faults: Vec<&Value> = calls.iter().map(|c| &c["fault"]).collect();
    assert_eq!(faults, [&Value::from("throttle"), &Value::from("throttle"), &Value::from("throttle"), &Value::Null]);
    // Standard retries back off 1, 2, 4 s at most (full jitter); adaptive mode waited ~18 s per retry.
    let waited = arrival(&calls[3]).duration_since(arrival(&calls[0])).unwrap();
    assert!(waited < Duration::from_secs(12), "three throttles cost {waited:?}");
}

#[test]
fn server_errors_on_create_image_make_one_image() {
    let (aws, proxy, _) = seeded("rel-5xx", &["CreateImage=http500@1", "CreateImage=http503@2"]);
    let (code, stderr) = run(ship(&aws, &proxy, "rel5xx1", &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let state = aws.inspect("shop-web");
    assert_fleet_on(&state, &image_of(&state, "rel5xx1"));
    assert_nothing_left(&state);
    assert_eq!(proxy.calls("CreateImage").len(), 3, "two server errors, then the image");
}

#[test]
fn a_launch_whose_answer_is_lost_makes_one_build_instance() {
    let (aws, proxy, _) = seeded("rel-reset", &["RunInstances=reset-before@1", "RunInstances=reset-after@2"]);
    let (code, stderr) = run(ship(&aws, &proxy, "relrst1", &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let calls = proxy.calls("RunInstances");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1]["upstream_status"], 200, "the second attempt reached AWS and launched, its answer lost");
    let state = aws.inspect("shop-web");
    assert_eq!(state["build_instances"].as_array().unwrap().len(), 1, "the retry (same ClientToken) got the same instance: {state}");
    assert_fleet_on(&state, &image_of(&state, "relrst1"));
    assert_nothing_left(&state);
}

#[test]
fn a_version_creation_past_the_attempt_timeout_makes_one_version() {
    let (aws, proxy, _) = seeded("rel-timeout", &["CreateLaunchTemplateVersion=delay:4:response@1"]);
    let (code, stderr) = run(ship(&aws, &proxy, "reltmo1", &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let calls = proxy.calls("CreateLaunchTemplateVersion");
    // The held answer was forwarded first: the timed-out attempt made the version, the retry (same
    // ClientToken) got that one back. Without the token there would be three versions.
    assert_eq!(calls.len(), 2, "timed out once, retried once: {calls:?}");
    let state = aws.inspect("shop-web");
    assert_eq!(state["lt_versions"].as_array().unwrap().len(), 2, "the seed's and one new version: {state}");
    assert_fleet_on(&state, &image_of(&state, "reltmo1"));
    assert_nothing_left(&state);
}

#[test]
fn sigterm_while_the_build_instance_launches_terminates_it() {
    let (aws, proxy, old) = seeded("rel-term-launch", &["RunInstances=delay:1.5:response@1"]);
    let mut child = spawn(ship(&aws, &proxy, "reltrm1", &[]));
    signal_while_held(&proxy, &mut child, "RunInstances", "-TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    let state = aws.inspect("shop-web");
    let builds = state["build_instances"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "AWS launched it while bakeroll got the signal: {state}");
    assert!(stderr.contains(&format!("build instance {} terminated", builds[0]["id"].as_str().unwrap())), "{stderr}");
    assert_nothing_left(&state);
    assert_fleet_on(&state, &old);
}

#[test]
fn sigterm_while_the_version_is_created_deletes_it_again() {
    let (aws, proxy, old) = seeded("rel-term-version", &["CreateLaunchTemplateVersion=delay:1.5:response@1"]);
    let mut child = spawn(ship(&aws, &proxy, "reltrm2", &[]));
    signal_while_held(&proxy, &mut child, "CreateLaunchTemplateVersion", "-TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("launch-template version 2 was created and deleted again"), "{stderr}");
    let state = aws.inspect("shop-web");
    assert_eq!(state["lt_versions"].as_array().unwrap().len(), 1, "no version nothing rolled out: {state}");
    assert!(state["refreshes"].as_array().unwrap().is_empty(), "{state}");
    assert_nothing_left(&state);
    assert_fleet_on(&state, &old);
}

#[test]
fn sigkill_during_the_rollback_then_the_same_command_ends_verified_on_the_previous_release() {
    let (aws, proxy, old) = seeded("rel-kill-rollback", &["RollbackInstanceRefresh=delay:1.5:response@1"]);
    // The console's default grace (300 s): AWS does not replace the failing instances before bakeroll's
    // gate has seen them fail, so bakeroll's rollback call is the one in flight.
    // And a 1 200 s deregistration delay (12 s real), most of what the rollback waits for: the re-run
    // (2 s of lock settling, then preflight) finds the rollback still running, which is the case this
    // test is about. (A rollback that ends between ship's preflight and the deploy's own is a narrower
    // race, recorded as a known gap in the closing note of the stop that found it.)
    let grace = "import boto3; boto3.client('autoscaling').update_auto_scaling_group(AutoScalingGroupName='shop-web', HealthCheckGracePeriod=300); \
        elb = boto3.client('elbv2'); \
        [elb.modify_target_group_attributes(TargetGroupArn=t['TargetGroupArn'], Attributes=[{'Key': 'deregistration_delay.timeout_seconds', 'Value': '1200'}]) \
        for t in elb.describe_target_groups()['TargetGroups']]";
    assert!(aws.python().args(["-c", grace]).status().unwrap().success());
    let broken = ["--tag", "local-aws:health=unhealthy"];
    let mut child = spawn(ship(&aws, &proxy, "relkil1", &broken));
    signal_while_held(&proxy, &mut child, "RollbackInstanceRefresh", "-KILL");
    let (code, _) = finish(child);
    assert_eq!(code, None, "killed");
    proxy.rules(&[]);
    let (code, stderr) = run(ship(&aws, &proxy, "relkil1", &broken));
    assert_eq!(code, Some(3), "the re-run watches the dead run's rollback to its end: {stderr}");
    assert!(stderr.contains("already rolling back"), "{stderr}");
    let state = aws.inspect("shop-web");
    assert_fleet_on(&state, &old);
    assert_eq!(state["refreshes"].as_array().unwrap().len(), 1, "watched, not deployed again: {state}");
    assert_nothing_left(&state);
}

/// Two ships of one environment started together: exactly one proceeds, the other exits 2 naming the
/// holder before it bakes anything.
fn two_ships_at_once(name: &str, commits: [&str; 2]) {
    let aws = LocalAws::start(name);
    aws.seed();
    let children: Vec<Child> =
        commits.iter().map(|c| spawn(aws.command(&["--pipeline", PIPELINE, "--no-progress", "ship", "--commit", c]))).collect();
    let outcomes: Vec<(Option<i32>, String)> = children.into_iter().map(finish).collect();
    let codes: Vec<Option<i32>> = outcomes.iter().map(|(c, _)| *c).collect();
    let winner = codes.iter().position(|c| *c == Some(0)).unwrap_or_else(|| panic!("nobody deployed: {codes:?}"));
    let loser = 1 - winner;
    assert_eq!(codes[loser], Some(2), "{outcomes:?}");
    let said = &outcomes[loser].1;
    assert!(said.contains("another deploy of environment local holds group shop-web") && said.contains("pid"), "{said}");
    let state = aws.inspect("shop-web");
    assert_eq!(state["build_instances"].as_array().unwrap().len(), 1, "one build instance: {state}");
    let marked = state["lt_versions"].as_array().unwrap().iter().filter(|v| v["description"].as_str().is_some_and(|d| d.starts_with("bakeroll:release"))).count();
    assert_eq!(marked, 1, "one launch-template version: {state}");
    assert_eq!(state["refreshes"].as_array().unwrap().len(), 1, "{state}");
    assert_fleet_on(&state, &image_of(&state, commits[winner]));
    assert_nothing_left(&state);
}

#[test]
fn two_ships_of_the_same_commit_at_once() {
    two_ships_at_once("rel-two-same", ["relsame", "relsame"]);
}

#[test]
fn two_ships_of_different_commits_at_once() {
    two_ships_at_once("rel-two-diff", ["reldif1", "reldif2"]);
}

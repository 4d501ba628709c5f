//! End-to-end: a cancelled GitLab job sends SIGTERM. A bake must terminate its build instance; a deploy
//! must roll its refresh back and exit 130 only once the fleet is verified on the previous release; a
//! rollback under way is never undone; a second signal exits at once saying what is still running.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::LocalAws;

fn spawn(aws: &LocalAws, args: &[&str]) -> Child {
    aws.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn bakeroll")
}

fn wait_for(aws: &LocalAws, what: &str, mut ok: impl FnMut(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let state = aws.inspect("shop-web");
        if ok(&state) {
            return state;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}: {state}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `Next:` line of an error's rendering.
fn next_line(stderr: &str) -> String {
    stderr.lines().find_map(|l| l.trim().strip_prefix("Next: ")).unwrap_or_else(|| panic!("no Next: line in {stderr}")).to_string()
}

/// After a rollback that was verified there is nothing to undo: the advice must not be a rollback
/// (from a group already back, `rollback --to previous` goes one release further back).
fn assert_nothing_to_undo(stderr: &str) {
    let next = next_line(stderr);
    assert!(next.starts_with("nothing to undo"), "{next}");
    assert!(!next.contains("bakeroll rollback"), "{next}");
}

fn term_and_wait(child: Child) -> (Option<i32>, String) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    (out.status.code(), stderr)
}

#[test]
fn sigterm_during_bake_terminates_the_build_instance() {
    let aws = LocalAws::start("sig-bake");
    aws.seed();
    // Provisioning that never powers off, so the bake is waiting when the signal comes.
    std::fs::write(aws.dir.join("provision.sh"), "#!/bin/sh\necho provisioning\n# local-aws:fail-provisioning\n").unwrap();
    let pipeline = std::fs::read_to_string(aws.repo.join("pipeline/local.toml"))
        .unwrap()
        .replace("user_data = \"scripts/provision-demo.sh\"", "user_data = \"provision.sh\"");
    let path = aws.dir.join("stuck.toml");
    std::fs::write(&path, pipeline).unwrap();

    let child = spawn(&aws, &["--pipeline", path.to_str().unwrap(), "bake", "--commit", "stuck1"]);
    wait_for(&aws, "a running build instance", |s| s["build_instances"].as_array().unwrap().iter().any(|b| b["state"] == "running"));
    let (code, stderr) = term_and_wait(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(stderr.contains("terminated"), "the State line says what was cleaned up: {stderr}");
    let state = aws.inspect("shop-web");
    for b in state["build_instances"].as_array().unwrap() {
        assert!(matches!(b["state"].as_str(), Some("shutting-down" | "terminated")), "{state}");
    }
}

#[test]
fn sigterm_during_deploy_rolls_the_refresh_back() {
    let aws = LocalAws::start("sig-deploy");
    aws.seed();
    let baked = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "bake", "--commit", "sig1"]);
    assert_eq!(baked.status.code(), Some(0));
    let ami = String::from_utf8_lossy(&baked.stdout).trim().to_string();

    let child = spawn(&aws, &["--pipeline", "pipeline/local.toml", "deploy", "--ami", &ami]);
    wait_for(&aws, "a refresh in progress", |s| s["refreshes"].as_array().unwrap().iter().any(|r| r["status"] == "InProgress"));
    let (code, stderr) = term_and_wait(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("verified healthy"), "exit 130 comes after the rollback is verified: {stderr}");
    assert_nothing_to_undo(&stderr);
    // No waiting here: when bakeroll exits, the fleet is already back.
    let state = aws.inspect("shop-web");
    assert_eq!(state["refreshes"][0]["status"], "RollbackSuccessful", "{state}");
    assert_on_version_1(&state);
}

fn assert_on_version_1(state: &Value) {
    let old = state["lt_versions"].as_array().unwrap().iter().find(|v| v["number"] == 1).unwrap()["image"].clone();
    let in_service: Vec<&Value> = state["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] == "InService").collect();
    assert_eq!(in_service.len(), 3, "{state}");
    for i in in_service {
        assert_eq!(i["image"], old, "{state}");
    }
}

#[test]
fn sigterm_during_bakerolls_own_rollback_lets_it_finish() {
    let aws = LocalAws::start("sig-rollback");
    aws.seed();
    let pipeline = "pipeline/local.toml";
    let baked = aws.bakeroll(&["--pipeline", pipeline, "bake", "--commit", "sigbad1", "--tag", "local-aws:health=unhealthy"]);
    assert_eq!(baked.status.code(), Some(0));
    let ami = String::from_utf8_lossy(&baked.stdout).trim().to_string();

    let child = spawn(&aws, &["--pipeline", pipeline, "deploy", "--ami", &ami]);
    wait_for(&aws, "bakeroll's rollback", |s| s["refreshes"][0]["status"] == "RollbackInProgress");
    let (code, stderr) = term_and_wait(child);
    assert_eq!(code, Some(130), "{stderr}");
    let state = aws.inspect("shop-web");
    assert_eq!(state["refreshes"].as_array().unwrap().len(), 1, "no refresh back to the bad release: {state}");
    assert_eq!(state["refreshes"][0]["status"], "RollbackSuccessful", "the rollback finished before the exit: {state}");
    assert_on_version_1(&state);
    assert!(stderr.contains("verified healthy"), "{stderr}");
    assert_nothing_to_undo(&stderr);
}

#[test]
fn a_second_signal_exits_at_once_naming_what_still_runs() {
    let aws = LocalAws::start("sig-twice");
    aws.seed();
    let baked = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "bake", "--commit", "sig2"]);
    assert_eq!(baked.status.code(), Some(0));
    let ami = String::from_utf8_lossy(&baked.stdout).trim().to_string();
    let child = spawn(&aws, &["--pipeline", "pipeline/local.toml", "deploy", "--ami", &ami]);
    wait_for(&aws, "a refresh in progress", |s| s["refreshes"].as_array().unwrap().iter().any(|r| r["status"] == "InProgress"));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("again: exited at once") && stderr.contains("still running"), "{stderr}");
    // The advice names the release the group ran before, explicitly; followed once AWS is done, it plans
    // exactly that release — not the one before it.
    let next = next_line(&stderr);
    let old = aws.inspect("shop-web")["lt_versions"].as_array().unwrap().iter().find(|v| v["number"] == 1).unwrap()["image"].as_str().unwrap().to_string();
    let advised = format!("bakeroll rollback --env local --to {old}");
    assert!(next.contains(&format!("`{advised}`")), "{next}");
    wait_for(&aws, "the refresh to end", |s| s["refreshes"].as_array().unwrap().iter().all(|r| !matches!(r["status"].as_str(), Some("Pending" | "InProgress" | "Baking" | "RollbackInProgress" | "Cancelling"))));
    let dry = aws.bakeroll(&["--pipeline", "pipeline/local.toml", "--output", "json", "rollback", "--env", "local", "--to", &old, "--dry-run"]);
    let summary: Value = serde_json::from_slice(&dry.stdout).unwrap();
    for g in summary["rollback"]["groups"].as_array().unwrap() {
        assert_eq!(g["to"]["ami"], old, "following the advice goes to the release the group ran before: {summary}");
    }
}

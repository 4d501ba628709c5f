//! End-to-end: a cancelled GitLab job sends SIGTERM. A bake must terminate its build instance and a
//! deploy must start the rollback of its refresh in flight, then exit 130 saying what it did.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::LocalAws;

fn spawn(aws: &LocalAws, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bakeroll"))
        .current_dir(&aws.repo)
        .args(args)
        .envs(aws.env.iter().map(|(k, v)| (k, v)))
        .env_remove("CI_COMMIT_SHA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bakeroll")
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
    assert!(stderr.contains("rollback of refresh"), "{stderr}");
    let state = wait_for(&aws, "the rollback to finish", |s| s["refreshes"][0]["status"] == "RollbackSuccessful");
    let old = state["lt_versions"].as_array().unwrap().iter().find(|v| v["number"] == 1).unwrap()["image"].clone();
    for i in state["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] == "InService") {
        assert_eq!(i["image"], old, "{state}");
    }
}

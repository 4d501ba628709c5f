//! End-to-end release management: the real binary against the local AWS. After ship A then B,
//! `rollback` returns every instance to A and `status` says so; `rollback --to <A's commit>` does the
//! same after a third release; `history` tells every release's outcome, including one rolled back
//! automatically; `prune` keeps what is in use and the rollback target and deletes the rest with their
//! snapshots; rollback refuses a pruned or unknown target by name; `gc` terminates the build instance a
//! SIGKILLed bake left behind.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

const PIPELINE: &str = "pipeline/local.toml";

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn ami_of(state: &Value, commit: &str) -> String {
    let images = state["images"].as_array().unwrap();
    let image = images.iter().find(|i| i["name"] == format!("shop-{commit}")).unwrap_or_else(|| panic!("no image for {commit}: {state}"));
    image["id"].as_str().unwrap().to_string()
}

/// moto's state once it stops changing by itself (instances replaced by the last ship still draining).
fn settled_dump(aws: &LocalAws) -> Value {
    let mut last = aws.dump();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        let next = aws.dump();
        if next == last {
            return next;
        }
        last = next;
    }
    panic!("the local AWS never settled");
}

fn ship(aws: &LocalAws, commit: &str, extra: &[&str]) -> Option<i32> {
    let mut args = vec!["--pipeline", PIPELINE, "ship", "--commit", commit];
    args.extend_from_slice(extra);
    aws.bakeroll(&args).status.code()
}

#[test]
fn rollback_status_history_and_prune_over_five_releases() {
    let aws = LocalAws::start("releases");
    let seed = aws.seed();
    let base = seed["base_ami"].as_str().unwrap().to_string();
    assert_eq!(ship(&aws, "aaaaaaa1", &[]), Some(0));
    assert_eq!(ship(&aws, "bbbbbbb2", &[]), Some(0));
    let a = ami_of(&aws.inspect("shop-web"), "aaaaaaa1");

    // rollback: back to A, verified, exit 0.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "rollback"]);
    assert_eq!(out.status.code(), Some(0));
    let summary = json(&out);
    assert_eq!((summary["command"].as_str(), summary["outcome"].as_str(), summary["exit_code"].as_i64()), (Some("rollback"), Some("deployed"), Some(0)));
    assert_eq!(summary["release"]["commit"], "aaaaaaa1");
    let plan = &summary["rollback"]["groups"][0];
    assert_eq!((plan["from"]["version"].as_i64(), plan["to"]["version"].as_i64(), plan["new_version"].as_bool()), (Some(3), Some(2), Some(false)), "{summary}");
    assert_fleet_on(&aws.inspect("shop-web"), &a);

    // status says so, in JSON and in text.
    let status = json(&aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "status"]));
    let g = &status["groups"][0];
    assert_eq!((g["release"]["ami"].as_str(), g["release"]["commit"].as_str(), g["release"]["version"].as_i64()), (Some(a.as_str()), Some("aaaaaaa1"), Some(2)), "{status}");
    assert_eq!(g["healthy"], true, "{status}");
    assert_eq!(g["images"], serde_json::json!([{ "ami": a, "commit": "aaaaaaa1", "instances": 3 }]));
    assert!(g["refresh"].is_null());
    let text = aws.bakeroll(&["--pipeline", PIPELINE, "status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("3 on {a} (aaaaaaa1)")));

    // A third release, then rollback --to A's commit.
    assert_eq!(ship(&aws, "ccccccc3", &[]), Some(0));
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "rollback", "--to", "aaaaaaa1"]);
    assert_eq!(out.status.code(), Some(0));
    assert_fleet_on(&aws.inspect("shop-web"), &a);

    // A release that rolls back automatically.
    assert_eq!(ship(&aws, "ddddddd4", &["--tag", "local-aws:health=unhealthy"]), Some(3));
    assert_fleet_on(&aws.inspect("shop-web"), &a);

    let history = json(&aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "history"]));
    let releases = history["groups"][0]["releases"].as_array().unwrap();
    let got: Vec<(Option<&str>, &str)> = releases.iter().map(|r| (r["commit"].as_str(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(got, [
        (Some("ddddddd4"), "rolled-back"),
        (Some("ccccccc3"), "rolled-back"),
        (Some("bbbbbbb2"), "rolled-back"),
        (Some("aaaaaaa1"), "deployed"),
        (None, "superseded"),
    ], "{history}");
    assert!(releases[0]["detail"].as_str().unwrap().contains("RollbackSuccessful"), "{history}");
    assert_eq!(releases[4]["ami"], base.as_str());
    let limited = json(&aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "history", "--limit", "2"]));
    assert_eq!(limited["groups"][0]["releases"].as_array().unwrap().len(), 2);
    assert_eq!(limited["groups"][0]["more"], 3);
    let text = String::from_utf8_lossy(&aws.bakeroll(&["--pipeline", PIPELINE, "history"]).stdout).to_string();
    assert!(text.lines().any(|l| l.contains("ddddddd4") && l.contains("rolled-back")), "{text}");

    // One more good release: A becomes its rollback target.
    assert_eq!(ship(&aws, "eeeeeee5", &[]), Some(0));

    // Dry runs plan their writes and leave moto's whole state as it was.
    let settled = settled_dump(&aws);
    let dry = |args: &[&str]| {
        let mut all = vec!["--pipeline", PIPELINE, "--output", "json"];
        all.extend_from_slice(args);
        let out = aws.bakeroll(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let summary = json(&out);
        assert_eq!((summary["dry_run"].as_bool(), summary["outcome"].as_str()), (Some(true), Some("planned")), "{summary}");
        let writes: Vec<String> = summary["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "write")
            .map(|s| s["action"].as_str().unwrap().to_string())
            .collect();
        (summary, writes)
    };
    let (dry_rollback, writes) = dry(&["rollback", "--dry-run"]);
    assert!(writes.contains(&"autoscaling:StartInstanceRefresh".to_string()), "{dry_rollback}");
    let (dry_prune, writes) = dry(&["prune", "--keep", "0", "--dry-run"]);
    assert_eq!(writes.iter().filter(|w| *w == "ec2:DeregisterImage").count(), 3, "{dry_prune}");
    assert!(dry_prune.get("deleted").is_none(), "{dry_prune}");
    let (dry_gc, _) = dry(&["gc", "--older-than", "0s", "--dry-run"]);
    assert!(settled == aws.dump(), "a dry run changed the local AWS");
    aws.assert_schema_valid(&[&dry_rollback, &dry_prune, &dry_gc]);
    let before = aws.inspect("shop-web");
    let e = ami_of(&before, "eeeeeee5");
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "prune", "--keep", "0"]);
    assert_eq!(out.status.code(), Some(0));
    let plan = json(&out);
    assert_eq!(plan["executed"], false);
    assert_eq!(aws.inspect("shop-web")["images"], before["images"], "without --yes nothing is deleted");
    let doomed: Vec<String> = ["bbbbbbb2", "ccccccc3", "ddddddd4"].iter().map(|c| ami_of(&before, c)).collect();
    let doomed_snaps: Vec<String> = before["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| doomed.contains(&i["id"].as_str().unwrap().to_string()))
        .flat_map(|i| i["snapshots"].as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    assert_eq!(doomed_snaps.len(), 3, "{before}");

    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "prune", "--keep", "0", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    let pruned = json(&out);
    let kept: Vec<&str> = pruned["keep"].as_array().unwrap().iter().map(|k| k["ami"].as_str().unwrap()).collect();
    assert_eq!(kept, [e.as_str(), a.as_str()], "{pruned}");
    assert_eq!(pruned["orphan_snapshots"], serde_json::json!([]), "{pruned}");
    assert!(pruned["deleted"]["errors"].as_array().unwrap().is_empty(), "{pruned}");
    let why_a = pruned["keep"][1]["reasons"].to_string();
    assert!(why_a.contains("rollback target"), "{why_a}");
    let after = aws.inspect("shop-web");
    let left: Vec<&str> = after["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(left.contains(&a.as_str()) && left.contains(&e.as_str()), "{after}");
    assert!(doomed.iter().all(|d| !left.contains(&d.as_str())), "{after}");
    let snaps_left: Vec<&str> = after["snapshots"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(doomed_snaps.iter().all(|s| !snaps_left.contains(&s.as_str())), "snapshots deleted: {doomed_snaps:?} / {snaps_left:?}");
    assert_eq!(snaps_left.len(), 2, "A's and E's snapshots stay: {snaps_left:?}");
    assert_fleet_on(&after, &e);

    // A pruned release and an unknown one are refused by name; nothing changes.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "rollback", "--to", "ccccccc3"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ccccccc3") && stderr.contains(&doomed[1]) && stderr.contains("deregistered"), "{stderr}");
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "rollback", "--to", "fffffff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fffffff"));
    let refused = json(&out);
    assert_eq!((refused["outcome"].as_str(), refused["exit_code"].as_i64()), (Some("not-started"), Some(2)));
    assert!(refused["error"]["message"].as_str().unwrap().contains("fffffff"), "{refused}");
    assert_eq!(aws.inspect("shop-web")["refreshes"], after["refreshes"], "no refresh started");

    // Every summary fits the published schema (docs/summary.schema.json).
    aws.assert_schema_valid(&[&summary, &status, &history, &limited, &plan, &pruned, &refused]);
}

#[test]
fn gc_terminates_the_build_instance_a_killed_bake_left_behind() {
    let aws = LocalAws::start("gc");
    aws.seed();
    // A pipeline whose provisioning never finishes, in a temp dir (its user_data resolves there).
    let dir = aws.dir.join("repo");
    std::fs::create_dir_all(dir.join("pipeline")).unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(dir.join("scripts/hang.sh"), "#!/bin/bash\n# local-aws:fail-provisioning\necho never done\n").unwrap();
    let local = std::fs::read_to_string(aws.repo.join(PIPELINE)).unwrap();
    let text = local.replace("scripts/provision-demo.sh", "scripts/hang.sh").replace("region = \"us-east-1\"", "region = \"us-east-1\"\nname = \"gc-e2e\"");
    let pipeline = dir.join("pipeline/gc.toml");
    std::fs::write(&pipeline, text).unwrap();
    let pipeline = pipeline.to_str().unwrap();

    let mut bake = aws.bakeroll_spawn(&["--pipeline", pipeline, "bake", "--commit", "dead0001"]);
    let started = Instant::now();
    let leaked = loop {
        let live: Vec<String> = aws.inspect("shop-web")["build_instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| matches!(b["state"].as_str(), Some("pending" | "running")))
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        if let Some(id) = live.first() {
            break id.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no build instance appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    bake.kill().expect("SIGKILL the bake");
    bake.wait().unwrap();
    let still = aws.inspect("shop-web");
    let left = still["build_instances"].as_array().unwrap().iter().find(|b| b["id"] == leaked.as_str()).unwrap();
    assert!(matches!(left["state"].as_str(), Some("pending" | "running")), "the killed bake left {leaked} running: {still}");

    // Without --yes: listed, not touched.
    let out = aws.bakeroll(&["--pipeline", pipeline, "--output", "json", "gc", "--older-than", "0s"]);
    assert_eq!(out.status.code(), Some(0));
    let plan = json(&out);
    assert_eq!(plan["build_instances"]["terminate"][0]["id"], leaked.as_str(), "{plan}");
    assert_eq!(plan["build_instances"]["terminate"][0]["commit"], "dead0001");
    // The default threshold (2h) spares it: it is seconds old.
    let out = aws.bakeroll(&["--pipeline", pipeline, "--output", "json", "gc"]);
    assert_eq!(json(&out)["build_instances"]["terminate"], serde_json::json!([]));

    let out = aws.bakeroll(&["--pipeline", pipeline, "--output", "json", "gc", "--older-than", "0s", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    let done = json(&out);
    assert_eq!(done["terminated"], serde_json::json!([leaked]));
    aws.assert_schema_valid(&[&plan, &done]);
    let after = aws.inspect("shop-web");
    let build = after["build_instances"].as_array().unwrap().iter().find(|b| b["id"] == leaked.as_str()).unwrap();
    assert!(matches!(build["state"].as_str(), Some("shutting-down" | "terminated")), "{after}");
    // The fleet's own instances were never candidates.
    assert_eq!(after["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] == "InService").count(), 3);
}

//! End-to-end: one release across three groups in two waves on the local AWS (`seed --shape tiers`:
//! shop-canary, then shop-web and shop-worker together), with the real binary. A good ship puts every
//! group on the release wave by wave; a release only the worker tier's target group rejects is rolled
//! back everywhere — wave 2, then the canary — and exits 3 with every group verified on the previous release.

mod support;

use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

const PIPELINE: &str = "pipeline/local-tiers.toml";
const GROUPS: [&str; 3] = ["shop-canary", "shop-web", "shop-worker"];

/// The events of a run, one JSON object per line.
fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Index of the first event about `scope` in `phase` (and whose detail contains `text`).
fn first(events: &[Value], scope: &str, phase: &str, text: &str) -> usize {
    events
        .iter()
        .position(|e| e["scope"] == scope && e["phase"] == phase && e["detail"].as_str().is_some_and(|d| d.contains(text)))
        .unwrap_or_else(|| panic!("no {phase} event of {scope} with {text:?}"))
}

fn last(events: &[Value], scope: &str) -> usize {
    events.iter().rposition(|e| e["scope"] == scope).unwrap_or_else(|| panic!("no event of {scope}"))
}

#[test]
fn a_release_goes_out_in_waves_and_comes_back_from_all_of_them() {
    let aws = LocalAws::start("waves");
    let seed = aws.seed_shapes(&["tiers"]);
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();

    // A good release: the canary first, then the web and worker tiers together.
    let good_events = dir.path().join("good.ndjson");
    let good_events_arg = good_events.to_str().unwrap();
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "--events", good_events_arg, "ship", "--commit", "a11ce01"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcome"], "deployed");
    let ami = summary["bake"]["ami_id"].as_str().unwrap().to_string();
    let groups = summary["deploy"]["groups"].as_array().unwrap();
    let waves: Vec<(&str, u64)> = groups.iter().map(|g| (g["group"].as_str().unwrap(), g["wave"].as_u64().unwrap())).collect();
    assert_eq!(waves, [("shop-canary", 1), ("shop-web", 2), ("shop-worker", 2)]);
    for g in GROUPS {
        assert_fleet_on(&aws.inspect(g), &ami);
    }
    let ev = events(&good_events);
    let canary_done = first(&ev, "shop-canary", "default-version", "");
    for g in ["shop-web", "shop-worker"] {
        assert!(first(&ev, g, "refresh", "starting instance refresh") > canary_done, "{g} started before the canary was verified");
        assert!(ev.iter().filter(|e| e["scope"] == g).all(|e| e["wave"] == 2), "every event of {g} carries wave 2");
    }
    // The two tiers of wave 2 were in flight together: each started before the other's last event.
    assert!(first(&ev, "shop-web", "refresh", "starting") < last(&ev, "shop-worker"));
    assert!(first(&ev, "shop-worker", "refresh", "starting") < last(&ev, "shop-web"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[shop-worker (wave 2)]"), "CI lines name the wave: {stderr}");
    aws.assert_schema_valid(&[&summary]);

    // A release only the worker tier's target group rejects: everything comes back to the good release.
    let bad_events = dir.path().join("bad.ndjson");
    let bad_events_arg = bad_events.to_str().unwrap();
    let report = dir.path().join("bad.html");
    let out = aws.bakeroll(&[
        "--pipeline", PIPELINE, "--output", "json", "--events", bad_events_arg, "--report", report.to_str().unwrap(),
        "ship", "--commit", "ba0ba01", "--tag", "local-aws:health:shop-worker=unhealthy",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcome"], "rolled-back");
    for g in summary["deploy"]["groups"].as_array().unwrap() {
        assert_eq!(g["state"], "restored", "{g}");
    }
    assert_eq!(summary["deploy"]["groups"][2]["outcome"]["reason"]["kind"], "unhealthy");
    for g in GROUPS {
        let state = aws.inspect(g);
        assert_fleet_on(&state, &ami);
        assert_ne!(ami, base);
    }
    // Wave 2 came back before the canary was moved back.
    let ev = events(&bad_events);
    let canary_back = first(&ev, "shop-canary", "undo", "moving shop-canary back");
    for g in ["shop-web", "shop-worker"] {
        let rolled = ev.iter().rposition(|e| e["scope"] == g && e["phase"] == "verify").expect("wave 2 verified back");
        assert!(canary_back > rolled, "the canary went back before {g} was verified back");
    }
    assert_eq!(aws.inspect("shop-canary")["refreshes"].as_array().unwrap().len(), 3, "release, release, refresh back");
    // The report reads the same story wave by wave: the canary's wave, then the tiers', where it stopped.
    let html = std::fs::read_to_string(&report).unwrap();
    let order = ["id=\"wave-1\"", "data-group=\"shop-canary\" data-wave=\"1\"", "id=\"wave-2\" data-wave=\"2\" data-stopped=\"true\"", "data-group=\"shop-web\" data-wave=\"2\"", "data-group=\"shop-worker\" data-wave=\"2\""];
    let at: Vec<usize> = order.iter().map(|n| html.find(n).unwrap_or_else(|| panic!("{n} is not in the report"))).collect();
    assert!(at.windows(2).all(|p| p[0] < p[1]), "{order:?} out of order in the report: {at:?}");
    assert!(html.contains("wave 1 of 2 · restored · rolled out +") && html.contains("the release stopped here: shop-worker was rolled back"), "{html}");
    for g in GROUPS {
        assert!(html.contains(&format!("id=\"rollback-marker-{g}\"")), "{g} has no rollback marker in the report");
    }
    let error = &summary["error"];
    assert!(error["state"].as_str().unwrap().contains("shop-canary back on"), "{error}");
    assert!(error["next"].as_str().unwrap().starts_with("nothing to undo"), "{error}");
    aws.assert_schema_valid(&[&summary]);
}

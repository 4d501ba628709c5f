//! End-to-end: the real binary, with the real AWS SDK, against the local AWS over HTTP. A good ship
//! lands every instance on the new AMI; a ship whose AMI fails health checks exits 3 with every
//! instance back on the previous image and healthy.

mod support;

use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

const PIPELINE: &str = "pipeline/local.toml";

fn image_named<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["images"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("no image {name}: {state}"))
}

#[test]
fn ship_rolls_the_fleet_onto_the_new_ami() {
    let aws = LocalAws::start("ship-ok");
    let seed = aws.seed();
    let before = aws.inspect("shop-web");
    let v1 = before["lt_versions"].as_array().unwrap().iter().find(|v| v["number"] == 1).unwrap().clone();

    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "c0ffee1"]);
    assert_eq!(out.status.code(), Some(0));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(summary["schema"], "bakeroll.summary/v1");
    assert_eq!(summary["outcome"], "deployed");
    assert_eq!(summary["exit_code"], 0);
    assert!(summary["api_calls"]["autoscaling:StartInstanceRefresh"].as_u64() == Some(1), "{summary}");
    // Every call of the run, the deploy lock's release (after the deploy) included.
    assert_eq!(summary["api_calls"]["autoscaling:DeleteTags"], 1, "{summary}");

    let state = aws.inspect("shop-web");
    let image = image_named(&state, "shop-c0ffee1");
    let ami = image["id"].as_str().unwrap();
    assert_eq!(summary["bake"]["ami_id"], ami);
    assert_fleet_on(&state, ami);
    // Provenance on the image and on every snapshot.
    assert_eq!(image["tags"]["bakeroll:commit"], "c0ffee1");
    assert_eq!(image["tags"]["bakeroll:source-ami"], summary["bake"]["source"]);
    assert_eq!(summary["bake"]["source"], seed["base_ami"], "the filter's newest match, as the seed chose it");
    let snaps = image["snapshots"].as_object().unwrap();
    assert!(!snaps.is_empty());
    for (id, tags) in snaps {
        assert_eq!(tags["bakeroll:commit"], "c0ffee1", "snapshot {id}");
    }
    // The new version is a copy of the old one with only the image changed, and is now the default.
    let versions = state["lt_versions"].as_array().unwrap();
    let new = versions.iter().find(|v| v["image"] == ami).expect("a version with the new image");
    assert_eq!(new["instance_type"], v1["instance_type"], "SourceVersion copied");
    assert!(new["description"].as_str().unwrap().contains("commit=c0ffee1"));
    assert_eq!(new["default"], true);
    // The build instance is gone.
    let builds = state["build_instances"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{state}");
    assert!(matches!(builds[0]["state"].as_str(), Some("terminated" | "shutting-down")), "{state}");

    // A retried job for the same commit reuses the image and changes nothing.
    let again = aws.bakeroll(&["--pipeline", PIPELINE, "ship", "--commit", "c0ffee1"]);
    assert_eq!(again.status.code(), Some(0));
    let after = aws.inspect("shop-web");
    assert_eq!(after["images"].as_array().unwrap().len(), state["images"].as_array().unwrap().len());
    assert_eq!(after["refreshes"].as_array().unwrap().len(), state["refreshes"].as_array().unwrap().len());
}

#[test]
fn ship_of_an_unhealthy_build_rolls_back_and_exits_3() {
    let aws = LocalAws::start("ship-bad");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();

    let out = aws.bakeroll(&[
        "--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "badbad1", "--tag", "local-aws:health=unhealthy",
    ]);
    assert_eq!(out.status.code(), Some(3), "exit 3 = rolled back, fleet healthy on the previous release");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcome"], "rolled-back");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(stderr.contains("State:"), "{stderr}");

    let state = aws.inspect("shop-web");
    assert_fleet_on(&state, &old);
    assert_eq!(state["launch_template"]["Version"], "1", "the group stays on the old version");
}

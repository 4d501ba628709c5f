//! End-to-end: production in two regions of a second account, on the local AWS, with the real binary.
//! The image is baked in us-east-1 by the caller's account, copied to ap-southeast-1, shared with account
//! 222222222222 and deployed there through its role (AssumeRole); a release only the second region's
//! target group rejects is rolled back in both regions (exit 3), and a role that cannot be assumed stops
//! the run before anything changes (exit 5 naming the role).

mod support;

use serde_json::Value;
use support::LocalAws;

const PIPELINE: &str = "pipeline/local-regions.toml";
const NORTH: &str = "222222222222/us-east-1";
const SOUTH: &str = "222222222222/ap-southeast-1";

fn fleet(aws: &LocalAws, seed: &std::path::Path, key: &str) -> Value {
    let out = aws.helper("regional.py", &[seed.to_str().unwrap(), key, "fleet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_on(fleet: &Value, image: &str) {
    let images = fleet["images"].as_array().unwrap();
    assert!(fleet["healthy"] == true && !images.is_empty() && images.iter().all(|i| i == image), "not all healthy on {image}: {fleet}");
}

#[test]
fn production_in_two_regions_of_another_account() {
    let aws = LocalAws::start("regions");
    aws.seed();
    aws.seed_with(&["--account", "222222222222"]);
    let seed = aws.seed_with(&["--account", "222222222222", "--region", "ap-southeast-1"]);
    let seed_path = aws.dir.join("seed.json");
    let south_base = seed["stacks"][SOUTH]["base_ami"].as_str().map(str::to_string);
    let out = aws.helper("regional.py", &[seed_path.to_str().unwrap(), SOUTH, "reject", "shop-web-south"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A role that cannot be assumed: exit 5 naming it, before anything changes.
    let denied = LocalAws::start_with("regions-denied", &[("LOCAL_AWS_DENY", "sts:AssumeRole")]);
    denied.seed();
    let before = denied.settled_dump();
    let out = denied.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "den1ed1"]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["error"]["message"].as_str().unwrap().contains("sts:AssumeRole"), "{summary}");
    assert!(summary["error"]["causes"].to_string().contains("arn:aws:iam::222222222222:role/bakeroll-deploy"), "{summary}");
    assert!(support::differing(&before, &denied.settled_dump()).is_empty(), "nothing changed");
    drop(denied);

    // A good release: baked here, copied, shared, deployed in us-east-1 then ap-southeast-1.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "--no-progress", "ship", "--commit", "c0ffee2", "--dotenv", "/dev/null"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let source = summary["bake"]["ami_id"].as_str().unwrap().to_string();
    let copy = summary["deploy"]["images"]["ap-southeast-1"].as_str().unwrap().to_string();
    assert_eq!(summary["deploy"]["images"]["us-east-1"], source.as_str());
    assert_ne!(copy, source, "ap-southeast-1 runs its own copy");
    assert_eq!(summary["api_calls"]["ec2:CopyImage"], 1, "every region's calls are counted: {summary}");
    assert_eq!(summary["api_calls"]["sts:AssumeRole"], 1, "{summary}");
    let groups: Vec<(&str, &str, &str)> = summary["deploy"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["group"].as_str().unwrap(), g["region"].as_str().unwrap(), g["account"].as_str().unwrap()))
        .collect();
    assert_eq!(groups, [("shop-web@us-east-1", "us-east-1", "222222222222"), ("shop-web@ap-southeast-1", "ap-southeast-1", "222222222222")]);
    assert_on(&fleet(&aws, &seed_path, NORTH), &source);
    assert_on(&fleet(&aws, &seed_path, SOUTH), &copy);
    assert_ne!(south_base.as_deref(), Some(copy.as_str()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[shop-web@ap-southeast-1 (wave 2)]"), "lines name the region: {stderr}");
    aws.assert_schema_valid(&[&summary]);

    // status and history read each region through the deploy role.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen: Vec<(&str, bool)> = status["groups"].as_array().unwrap().iter().map(|g| (g["group"].as_str().unwrap(), g["healthy"] == true)).collect();
    assert_eq!(seen, [("shop-web@us-east-1", true), ("shop-web@ap-southeast-1", true)], "{status}");
    assert_eq!(status["groups"][1]["release"]["ami"], copy.as_str());
    // The copy is judged by its source's marks (tags do not cross regions or accounts).
    assert!(status["groups"][1]["marks"]["verified"]["production"].is_string(), "{status}");
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "history"]);
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history["groups"][1]["releases"][0]["commit"], "c0ffee2", "{history}");

    // A release only ap-southeast-1's target group rejects: both regions back on c0ffee2, exit 3.
    let out = aws.bakeroll(&[
        "--pipeline", PIPELINE, "--output", "json", "--no-progress",
        "ship", "--commit", "ba0ba02", "--tag", "local-aws:health:shop-web-south=unhealthy",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let bad: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bad["outcome"], "rolled-back");
    for g in bad["deploy"]["groups"].as_array().unwrap() {
        assert_eq!(g["state"], "restored", "{g}");
    }
    assert_on(&fleet(&aws, &seed_path, NORTH), &source);
    assert_on(&fleet(&aws, &seed_path, SOUTH), &copy);
    aws.assert_schema_valid(&[&bad]);

    // prune (without --yes: the decision) in both regions, each region's groups read through the role:
    // the copy ap-southeast-1's group runs is kept there, and its source at home, which its group runs too.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "prune", "--keep", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let prune: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = |ami: &str| prune["keep"].as_array().unwrap().iter().find(|k| k["ami"] == ami).cloned();
    let south = kept(&copy).unwrap_or_else(|| panic!("the copy in use is kept: {prune}"));
    assert_eq!(south["region"], "ap-southeast-1");
    assert!(south["reasons"].to_string().contains("in use by group shop-web@ap-southeast-1"), "{south}");
    assert_eq!(south["source"], source.as_str());
    let home = kept(&source).unwrap_or_else(|| panic!("the source is kept: {prune}"));
    assert!(home.get("region").is_none() && home["reasons"].to_string().contains("in use by group shop-web@us-east-1"), "{home}");
    aws.assert_schema_valid(&[&prune]);
}

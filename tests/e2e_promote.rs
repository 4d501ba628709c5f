//! End-to-end promotion and revocation: the real binary against the local AWS, with staging (the seeded
//! `shop-web`) and production (`shop-web-production`, `requires_verified_in = ["staging"]`,
//! pipeline/local-promote.toml). Production refuses a commit staging has not verified (before any bake),
//! then takes it once staging has; a revoked release is refused naming its reason, a new release deploys
//! while the revoked one runs, and `rollback` steps over it; EC2 deregistration protection is on the
//! image each group runs and on its rollback target, and `prune` removes it only from what it deletes.
//! Every assert on images reads EC2 with boto3 (an independent client).

mod support;


use serde_json::Value;
use support::{assert_fleet_on, LocalAws};

const PIPELINE: &str = "pipeline/local-promote.toml";
const PRODUCTION: &str = "shop-web-production";

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn run(aws: &LocalAws, env: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["--pipeline", PIPELINE, "--env", env, "--output", "json"];
    all.extend_from_slice(args);
    let out = aws.bakeroll(&all);
    (out.status.code(), json(&out), String::from_utf8_lossy(&out.stderr).to_string())
}

/// This account's images as EC2 describes them: id → { name, state, protection, tags }.
fn images(aws: &LocalAws) -> Value {
    let script = r#"
import json, boto3
out = {}
for i in boto3.client("ec2").describe_images(Owners=["self"])["Images"]:
    out[i["ImageId"]] = {"name": i.get("Name"), "state": i["State"], "protection": i.get("DeregistrationProtection"),
                         "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])}}
print(json.dumps(out))
"#;
    let out = aws.python().args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "describe-images: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ami_named(images: &Value, commit: &str) -> Option<String> {
    images.as_object().unwrap().iter().find(|(_, i)| i["name"] == format!("shop-{commit}")).map(|(id, _)| id.clone())
}

fn protection(images: &Value, ami: &str) -> String {
    images[ami]["protection"].as_str().unwrap_or("absent").to_string()
}

#[test]
fn production_takes_what_staging_proved_revoked_releases_are_refused_and_rollback_targets_are_protected() {
    let aws = LocalAws::start("promote");
    let seed = aws.seed();
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let out = aws.python()
        .arg(aws.repo.join("tests/support/second_stack.py"))
        .arg(aws.dir.join("seed.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "second stack: {}", String::from_utf8_lossy(&out.stderr));

    // A commit staging never saw: production refuses it before any bake, saying why and what to do.
    let (code, summary, stderr) = run(&aws, "production", &["ship", "--commit", "aaaaaaa1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("commit aaaaaaa1 may not be deployed to production: it is not baked yet, so it cannot have been verified in staging"), "{stderr}");
    assert!(stderr.contains("Next: ship commit aaaaaaa1 to staging first (`bakeroll --env staging ship --commit aaaaaaa1`)"), "{stderr}");
    assert_eq!((summary["outcome"].as_str(), summary["deploy"]["promotion"]["verdict"].as_str()), (Some("not-started"), Some("refused")), "{summary}");
    assert_eq!(ami_named(&images(&aws), "aaaaaaa1"), None, "nothing was baked");
    // Reads, and the deploy lock taken and given back: no EC2 write.
    assert!(summary["api_calls"].as_object().unwrap().keys().all(|k| k.contains(":Describe") || k.starts_with("autoscaling:")), "{summary}");

    // Staging ships A: verified there, marked so, and production then takes the same image.
    let (code, staged, stderr) = run(&aws, "staging", &["ship", "--commit", "aaaaaaa1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let a = staged["release"]["ami"].as_str().unwrap().to_string();
    assert_eq!((staged["deploy"]["mark"]["key"].as_str(), staged["deploy"]["mark"]["kind"].as_str()), (Some("bakeroll:verified:staging"), Some("verified")), "{staged}");
    let seen = images(&aws);
    assert_eq!(seen[&a]["tags"]["bakeroll:verified:staging"], staged["deploy"]["mark"]["at"], "{seen}");
    let (code, promoted, stderr) = run(&aws, "production", &["deploy", "--commit", "aaaaaaa1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(promoted["deploy"]["promotion"]["verdict"], "allowed", "{promoted}");
    assert!(stderr.contains(&format!("may go to production: verified in staging at {}", seen[&a]["tags"]["bakeroll:verified:staging"].as_str().unwrap())), "{stderr}");
    assert_fleet_on(&aws.inspect(PRODUCTION), &a);
    aws.assert_schema_valid(&[&summary, &staged, &promoted]);

    // B to staging: B runs, A is its rollback target; both protected, without cooldown.
    let (code, shipped_b, stderr) = run(&aws, "staging", &["ship", "--commit", "bbbbbbb2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let b = shipped_b["release"]["ami"].as_str().unwrap().to_string();
    let seen = images(&aws);
    assert_eq!((protection(&seen, &a), protection(&seen, &b)), ("enabled-without-cooldown".into(), "enabled-without-cooldown".into()), "{seen}");
    let protected: Vec<(&str, &str)> = shipped_b["deploy"]["protected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["ami"].as_str().unwrap(), p["reasons"][0].as_str().unwrap()))
        .collect();
    assert!(protected.contains(&(b.as_str(), "run by group shop-web")), "{protected:?}");
    assert!(protected.iter().any(|(ami, why)| *ami == a && why.starts_with("rollback target of group shop-web")), "{protected:?}");
    let status = run(&aws, "staging", &["status"]).1;
    assert_eq!(status["groups"][0]["rollback_target"]["release"]["ami"], a.as_str(), "{status}");
    assert_eq!((status["groups"][0]["protected"].as_bool(), status["groups"][0]["rollback_target"]["protected"].as_bool()), (Some(true), Some(true)), "{status}");

    // B is found bad: revoked. Deploys refuse it, naming the reason; nothing changes.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "revoke", "bbbbbbb2", "--reason", "corrupts orders"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("revoked {b} (commit bbbbbbb2) at ")));
    assert!(images(&aws)[&b]["tags"]["bakeroll:revoked"].as_str().unwrap().ends_with(" corrupts orders"));
    let (code, refused, stderr) = run(&aws, "production", &["deploy", "--ami", &b]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("it was revoked at ") && stderr.contains(": corrupts orders"), "{stderr}");
    assert_eq!(refused["deploy"]["promotion"]["overridden"], serde_json::json!(["revoked"]), "{refused}");
    assert_fleet_on(&aws.inspect(PRODUCTION), &a);

    // The way out: a new release while the revoked one runs.
    let (code, _, stderr) = run(&aws, "staging", &["ship", "--commit", "ccccccc3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let c = ami_named(&images(&aws), "ccccccc3").unwrap();
    // history shows the revocation and where each release was verified.
    let history = run(&aws, "staging", &["history"]).1;
    let releases = history["groups"][0]["releases"].as_array().unwrap();
    let of = |commit: &str| releases.iter().find(|r| r["commit"] == commit).unwrap_or_else(|| panic!("{commit} in {history}"));
    assert_eq!(of("bbbbbbb2")["marks"]["revoked"]["reason"], "corrupts orders", "{history}");
    assert!(of("aaaaaaa1")["marks"]["verified"]["staging"].is_string(), "{history}");

    // rollback steps over the revoked B, and says so in its opening line; --to B needs --force.
    let (code, _, stderr) = run(&aws, "staging", &["rollback", "--to", "bbbbbbb2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("was revoked") && stderr.contains("--force"), "{stderr}");
    let (code, rolled, stderr) = run(&aws, "staging", &["rollback"]);
    assert_eq!(code, Some(0), "{stderr}");
    let headline = rolled["headline"].as_str().unwrap();
    assert!(headline.contains(&format!("to aaaaaaa1 ({a}, version 2): the release deployed before version 4, skipping version 3 (bbbbbbb2): revoked at ")), "{headline}");
    assert!(stderr.contains("skipping version 3 (bbbbbbb2)"), "said as it opens: {stderr}");
    assert_fleet_on(&aws.inspect("shop-web"), &a);

    // prune: keeps what runs (A), the templates' $Latest (C) and, B being revoked, no rollback target
    // beyond the base image (not this pipeline's). It turns protection off only on B, which it deletes.
    let (code, pruned, stderr) = run(&aws, "staging", &["prune", "--keep", "0", "--yes"]);
    assert_eq!(code, Some(0), "{stderr}");
    let deleted: Vec<&str> = pruned["delete"].as_array().unwrap().iter().map(|d| d["ami"].as_str().unwrap()).collect();
    assert_eq!(deleted, [b.as_str()], "{pruned}");
    assert_eq!(pruned["delete"][0]["protected"], true, "{pruned}");
    assert_eq!(pruned["api_calls"]["ec2:DisableImageDeregistrationProtection"], 1, "{pruned}");
    let seen = images(&aws);
    assert!(!seen.as_object().unwrap().contains_key(&b), "B deregistered: {seen}");
    assert_eq!((protection(&seen, &a), protection(&seen, &c)), ("enabled-without-cooldown".into(), "enabled-without-cooldown".into()), "{seen}");
    assert!(!seen.as_object().unwrap().contains_key(&base), "the base image is amazon's, never this account's");

    // A revocation lifted: DeleteTags on the local AWS, read back; the release deploys again.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "revoke", &c, "--reason", "a mistake"]);
    assert_eq!(out.status.code(), Some(0));
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "revoke", "--restore", "ccccccc3"]);
    assert_eq!(out.status.code(), Some(0));
    let restored = json(&out);
    assert_eq!((restored["revoke"]["revoked"].is_null(), restored["revoke"]["was"]["reason"].as_str()), (true, Some("a mistake")), "{restored}");
    assert!(images(&aws)[&c]["tags"].get("bakeroll:revoked").is_none());
    aws.assert_schema_valid(&[&restored, &pruned, &rolled]);
}

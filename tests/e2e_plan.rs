//! End-to-end dry runs: the real binary against the local AWS. bake, deploy, ship and plan with
//! `--dry-run` leave moto's whole state as it was and print the plan (text) or give it as data (JSON);
//! a principal lacking permissions gets exit 5 naming each refused action. `iam-policy` prints a
//! policy that grants every call the runs made (the harness checks every JSON summary against it).

mod support;

use serde_json::Value;
use support::LocalAws;

const PIPELINE: &str = "pipeline/local.toml";

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn writes(summary: &Value) -> Vec<String> {
    summary["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "write")
        .map(|s| s["action"].as_str().unwrap().to_string())
        .collect()
}

fn permission_of(summary: &Value, action: &str) -> String {
    let steps = summary["plan"]["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["action"] == action).unwrap_or_else(|| panic!("no {action} in {summary}"));
    step["permission"].as_str().unwrap().to_string()
}


#[test]
fn dry_runs_change_nothing_and_give_the_plan() {
    let aws = LocalAws::start("plan-dry");
    aws.seed();
    // A real bake, so that `deploy --commit` has a release to plan.
    let baked = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "bake", "--commit", "c0ffee1"]);
    assert_eq!(baked.status.code(), Some(0));
    let before = aws.settled_dump();

    let bake = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "bake", "--commit", "beef001", "--dry-run"]);
    assert_eq!(bake.status.code(), Some(0));
    let s = json(&bake);
    assert_eq!((s["dry_run"].as_bool(), s["outcome"].as_str(), s["exit_code"].as_i64()), (Some(true), Some("planned"), Some(0)));
    assert_eq!(s["bake"]["ami_id"], "ami-(planned)");
    assert_eq!(writes(&s), ["ec2:RunInstances", "ec2:CreateImage", "ec2:CreateTags", "ec2:TerminateInstances"]);
    assert_eq!(permission_of(&s, "ec2:RunInstances"), "allowed", "proved by EC2 DryRun");
    assert_eq!(permission_of(&s, "ec2:CreateImage"), "allowed");

    let deploy = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "deploy", "--commit", "c0ffee1", "--dry-run"]);
    assert_eq!(deploy.status.code(), Some(0));
    let s = json(&deploy);
    // The release, then its mark on the image and the image's deregistration protection (the rollback
    // target, the base image, is amazon's: left to its owner).
    assert_eq!(
        writes(&s),
        ["ec2:CreateLaunchTemplateVersion", "autoscaling:StartInstanceRefresh", "ec2:ModifyLaunchTemplate", "ec2:CreateTags", "ec2:EnableImageDeregistrationProtection"]
    );
    assert_eq!(permission_of(&s, "ec2:EnableImageDeregistrationProtection"), "allowed", "proved by EC2 DryRun");
    assert_eq!(permission_of(&s, "autoscaling:StartInstanceRefresh"), "unverified", "Auto Scaling has no DryRun");
    let resources = s["plan"]["resources"].as_array().unwrap();
    assert!(resources.iter().any(|r| r["resource"] == "launch-template-version" && r["id"].as_str().unwrap().ends_with("version 2")), "{resources:?}");
    assert!(s["plan"]["steps"].as_array().unwrap().iter().any(|st| st["kind"] == "wait" && st["what"].as_str().unwrap().contains("roll back")));

    let ship = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "beef001", "--dry-run"]);
    assert_eq!(ship.status.code(), Some(0));
    let s = json(&ship);
    assert_eq!(writes(&s).len(), 9, "bake's four, then version, refresh, default, mark, protection: {:?}", writes(&s));
    assert_eq!(s["plan"]["permissions"]["denied"], serde_json::json!([]));

    let plan = aws.bakeroll(&["--pipeline", PIPELINE, "plan", "--commit", "beef001"]);
    assert_eq!(plan.status.code(), Some(0));
    let text = String::from_utf8_lossy(&plan.stdout);
    for expected in ["Dry run of", "ec2:RunInstances", "autoscaling:StartInstanceRefresh", "Resources it would create", "DENIED: none"] {
        assert!(text.contains(expected), "{expected} missing from the plan:\n{text}");
    }

    aws.assert_schema_valid(&[&json(&bake), &json(&deploy), &s]);
    let after = aws.dump();
    assert!(before == after, "a dry run changed the local AWS: {:?}", support::differing(&before, &after));
}

#[test]
fn a_dry_run_without_permissions_names_them_and_exits_5() {
    let aws = LocalAws::start_with("plan-deny", &[("LOCAL_AWS_DENY", "ec2:CreateImage,ec2:ModifyLaunchTemplate")]);
    aws.seed();
    let before = aws.settled_dump();

    let out = aws.bakeroll(&["--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "beef001", "--dry-run"]);
    assert_eq!(out.status.code(), Some(5), "exit 5 = permission denied");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("permission denied for ec2:CreateImage"), "{stderr}");
    assert!(stderr.contains("also denied: ec2:ModifyLaunchTemplate"), "{stderr}");
    let s = json(&out);
    assert_eq!(s["plan"]["permissions"]["denied"], serde_json::json!(["ec2:CreateImage", "ec2:ModifyLaunchTemplate"]));
    assert_eq!(s["error"]["state"], "nothing was changed (dry run)");
    assert_eq!(s["outcome"], "not-started");
    aws.assert_schema_valid(&[&s]);

    // In text mode the plan is still printed, with the refused step marked.
    let out = aws.bakeroll(&["--pipeline", PIPELINE, "bake", "--commit", "beef001", "--dry-run"]);
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("permission: DENIED") && text.contains("DENIED: ec2:CreateImage"), "{text}");

    assert!(before == aws.dump(), "a refused dry run changed the local AWS");
}

#[test]
fn iam_policy_is_valid_json_scoped_to_the_pipeline() {
    // No AWS needed: the policy comes from the pipeline file and the code's action table.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bakeroll"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--pipeline", "pipeline/bakeroll.toml", "--env", "production", "iam-policy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let policy: Value = serde_json::from_slice(&out.stdout).expect("a JSON policy document on stdout");
    assert_eq!(policy["Version"], "2012-10-17");
    let groups = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "Groups").unwrap();
    let text = groups["Resource"].to_string();
    assert!(text.contains("autoScalingGroupName/") && !text.contains("staging"), "only the chosen environment's groups: {text}");
}

fn iam_policy(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bakeroll")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap()
}

/// An environment deploying through another account's role: the caller's policy (bake, copy, share,
/// assume), the role's own policy (its groups) and its trust policy, each printable alone with --role.
#[test]
fn iam_policy_per_account_with_a_deploy_role() {
    const ROLE: &str = "arn:aws:iam::222222222222:role/bakeroll-deploy";
    let out = iam_policy(&["--pipeline", "pipeline/local-regions.toml", "--output", "json", "iam-policy"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = json(&out);
    let actions = |doc: &Value| -> Vec<String> {
        let mut v: Vec<String> = doc["Statement"].as_array().unwrap().iter().flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default()).filter_map(|a| a.as_str().map(String::from)).collect();
        v.sort();
        v
    };
    let caller = actions(&s["policy"]);
    assert!(caller.contains(&"ec2:CopyImage".into()) && caller.contains(&"sts:AssumeRole".into()), "{caller:?}");
    assert!(!caller.contains(&"autoscaling:StartInstanceRefresh".into()), "production's groups are the role's: {caller:?}");
    let role = &s["deploy_roles"][0];
    assert_eq!((role["role_arn"].as_str(), role["account"].as_str()), (Some(ROLE), Some("222222222222")));
    let deploys = actions(&role["policy"]);
    assert!(deploys.contains(&"autoscaling:StartInstanceRefresh".into()) && !deploys.contains(&"ec2:CopyImage".into()), "{deploys:?}");
    assert_eq!(role["trust_policy"]["Statement"][0]["Action"], "sts:AssumeRole");

    // --role: that role's policy alone, as one document; --trust: its trust policy, trusting --principal.
    let out = iam_policy(&["--pipeline", "pipeline/local-regions.toml", "iam-policy", "--role", ROLE]);
    let alone: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(actions(&alone), deploys);
    let out = iam_policy(&["--pipeline", "pipeline/local-regions.toml", "iam-policy", "--role", ROLE, "--trust", "--principal", "arn:aws:iam::111111111111:role/ci"]);
    let trust: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::111111111111:role/ci");
    // A role no environment names: usage error, exit 2, naming what the file has.
    let out = iam_policy(&["--pipeline", "pipeline/local-regions.toml", "iam-policy", "--role", "arn:aws:iam::333333333333:role/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(ROLE), "{}", String::from_utf8_lossy(&out.stderr));
}

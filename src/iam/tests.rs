//! The generated policy: valid IAM JSON, every action of the table granted, and scoped as documented.

use super::*;
use crate::cloud::actions::{self, ALL};

fn input() -> PolicyInput {
    PolicyInput {
        pipeline: "shop".into(),
        region: Some("eu-west-1".into()),
        groups: vec!["shop-staging".into(), "shop-prod".into()],
        instance_profile: None,
    }
}

fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
    doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no {sid} in {doc:#}"))
}

/// The shapes IAM accepts for what we generate (IAM's policy grammar, restricted to what we use).
#[test]
fn the_document_is_valid_iam_json() {
    let doc = generate(&PolicyInput { instance_profile: Some("shop-build".into()), ..input() }).document;
    assert_eq!(doc["Version"], "2012-10-17");
    let statements = doc["Statement"].as_array().unwrap();
    let mut sids = std::collections::BTreeSet::new();
    for s in statements {
        let sid = s["Sid"].as_str().unwrap();
        assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "Sid {sid} must be alphanumeric");
        assert!(sids.insert(sid), "Sid {sid} repeated");
        assert_eq!(s["Effect"], "Allow");
        for a in s["Action"].as_array().unwrap() {
            let (service, op) = a.as_str().unwrap().split_once(':').unwrap();
            assert!(!service.is_empty() && !op.contains('*'), "exact action names only: {a}");
        }
        for r in s["Resource"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(r == "*" || (r.starts_with("arn:aws:") && r.split(':').count() >= 6), "resource {r}");
        }
        if let Some(c) = s.get("Condition") {
            for (op, keys) in c.as_object().unwrap() {
                assert!(["StringEquals", "ArnLike"].contains(&op.as_str()), "operator {op}");
                assert!(keys.as_object().is_some_and(|k| !k.is_empty()));
            }
        }
    }
    // Round-trips as JSON text (what `iam-policy` prints).
    let text = serde_json::to_string_pretty(&doc).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
}

#[test]
fn every_action_in_the_table_is_granted() {
    let doc = generate(&input()).document;
    let allowed = allowed_actions(&doc);
    for a in ALL {
        assert!(allowed.iter().any(|x| x == a.name), "{} missing from {allowed:?}", a.name);
    }
    // And nothing the code cannot call, apart from the documented dependent action.
    for x in &allowed {
        assert!(actions::lookup(x).is_some(), "{x} granted but never called");
    }
}

#[test]
fn destructive_actions_are_scoped_to_the_pipelines_own_resources() {
    let doc = generate(&input()).document;
    let build = statement(&doc, "BuildInstances");
    assert!(build["Action"].as_array().unwrap().contains(&json!("ec2:TerminateInstances")));
    assert_eq!(build["Condition"]["StringEquals"]["aws:ResourceTag/bakeroll:role"], "build-instance");
    assert_eq!(build["Condition"]["StringEquals"]["aws:ResourceTag/bakeroll:pipeline"], "shop");
    assert_eq!(build["Resource"], json!(["arn:aws:ec2:eu-west-1:*:instance/*"]));

    let images = statement(&doc, "PipelineImages");
    assert_eq!(
        images["Action"],
        json!(["ec2:DeregisterImage", "ec2:DeleteTags", "ec2:EnableImageDeregistrationProtection", "ec2:DisableImageDeregistrationProtection"])
    );
    assert_eq!(images["Resource"], json!(["arn:aws:ec2:eu-west-1::image/*"]));
    assert_eq!(images["Condition"]["StringEquals"]["aws:ResourceTag/bakeroll:pipeline"], "shop");

    let groups = statement(&doc, "Groups");
    assert_eq!(
        groups["Resource"],
        json!([
            "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/shop-staging",
            "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/shop-prod"
        ])
    );
    let mut acts: Vec<&str> = groups["Action"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    acts.sort_unstable();
    assert_eq!(
        acts,
        [
            "autoscaling:CancelInstanceRefresh",
            "autoscaling:CreateOrUpdateTags",
            "autoscaling:DeleteTags",
            "autoscaling:RollbackInstanceRefresh",
            "autoscaling:StartInstanceRefresh",
            "autoscaling:UpdateAutoScalingGroup"
        ]
    );
}

#[test]
fn tags_are_created_only_while_creating_or_on_our_snapshots_and_images() {
    let doc = generate(&input()).document;
    let on_create = statement(&doc, "TagOnCreate");
    assert_eq!(on_create["Condition"]["StringEquals"]["ec2:CreateAction"], json!(["RunInstances", "CreateImage"]));
    let snaps = statement(&doc, "TagSnapshots");
    assert_eq!(snaps["Resource"], json!(["arn:aws:ec2:eu-west-1::snapshot/*"]));
    assert_eq!(snaps["Condition"]["StringEquals"]["aws:RequestTag/bakeroll:pipeline"], "shop");
    // The release marks and revocations: only on images that already carry the pipeline's tag.
    let marks = statement(&doc, "MarkImages");
    assert_eq!((marks["Action"].clone(), marks["Resource"].clone()), (json!(["ec2:CreateTags"]), json!(["arn:aws:ec2:eu-west-1::image/*"])));
    assert_eq!(marks["Condition"]["StringEquals"]["aws:ResourceTag/bakeroll:pipeline"], "shop");
    let launch = statement(&doc, "LaunchBuildInstance");
    assert_eq!(launch["Condition"]["StringEquals"]["aws:RequestTag/bakeroll:role"], "build-instance");
}

#[test]
fn pass_role_only_with_an_instance_profile_and_any_region_without_one() {
    let doc = generate(&PolicyInput { region: None, ..input() }).document;
    assert!(!doc.to_string().contains("iam:PassRole"));
    assert_eq!(statement(&doc, "BuildInstances")["Resource"], json!(["arn:aws:ec2:*:*:instance/*"]));

    let arn = "arn:aws:iam::123456789012:instance-profile/ci/shop-build";
    let g = generate(&PolicyInput { instance_profile: Some(arn.into()), ..input() });
    let pass = statement(&g.document, "PassBuildInstanceRole");
    assert_eq!(pass["Resource"], json!(["arn:aws:iam::*:role/shop-build"]));
    assert_eq!(pass["Condition"]["StringEquals"]["iam:PassedToService"], "ec2.amazonaws.com");
    assert!(g.notes.iter().any(|n| n.contains("shop-build")), "the assumption is said: {:?}", g.notes);
}

#[test]
fn groups_that_change_launch_templates_bring_run_instances_on_templates() {
    let doc = generate(&input()).document;
    let s = statement(&doc, "UseLaunchTemplates");
    assert_eq!(s["Action"], json!(["ec2:RunInstances"]));
    assert_eq!(s["Condition"]["ArnLike"]["ec2:LaunchTemplate"], "arn:aws:ec2:eu-west-1:*:launch-template/*");
}

//! The generated policy: valid IAM JSON, every action of the table granted, and scoped as documented.

use super::*;
use crate::cloud::actions::{self, ALL};

fn input() -> PolicyInput {
    PolicyInput {
        pipeline: "shop".into(),
        region: Some("eu-west-1".into()),
        groups: vec!["shop-staging".into(), "shop-prod".into()],
        instance_profile: None,
        roles: vec![],
        identity: Identity::Caller { deploys: true },
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

/// One authorisation AWS makes for a call: the action, one resource it touches, and the request's
/// context keys (resource tags, request tags, `ec2:CreateAction`, `ec2:LaunchTemplate`).
struct Request {
    action: &'static str,
    resource: String,
    context: Vec<(&'static str, String)>,
}

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "arn:aws:iam::222222222222:role/bakeroll-deploy";

fn ec2(resource: &str) -> String {
    // Images and snapshots carry no account in their ARN.
    let account = if resource.starts_with("image/") || resource.starts_with("snapshot/") { "" } else { ACCOUNT };
    format!("arn:aws:ec2:eu-west-1:{account}:{resource}")
}

fn group(name: &str) -> String {
    format!("arn:aws:autoscaling:eu-west-1:{ACCOUNT}:autoScalingGroup:5f6e7a1c-0000-4000-8000-000000000001:autoScalingGroupName/{name}")
}

fn req(action: &'static str, resource: String, context: &[(&'static str, &str)]) -> Request {
    Request { action, resource, context: context.iter().map(|(k, v)| (*k, v.to_string())).collect() }
}

/// The authorisations behind each call bakeroll makes for pipeline `pipeline` (the Service Authorization
/// Reference's resource types and condition keys of each action), written per action name — not derived
/// from the action table's scopes, which is what `generate` reads.
fn calls_of(action: &'static str, pipeline: &str) -> Vec<Request> {
    let ours = [("aws:ResourceTag/bakeroll:pipeline", pipeline)];
    let build = [("aws:ResourceTag/bakeroll:role", "build-instance"), ("aws:ResourceTag/bakeroll:pipeline", pipeline)];
    let launching = [("aws:RequestTag/bakeroll:role", "build-instance"), ("aws:RequestTag/bakeroll:pipeline", pipeline)];
    let baking = [("aws:RequestTag/bakeroll:pipeline", pipeline)];
    match action {
        "ec2:GetConsoleOutput" | "ec2:TerminateInstances" => vec![req(action, ec2("instance/i-0b1"), &build)],
        "ec2:RunInstances" => {
            let mut v: Vec<Request> = ["instance/i-0new", "volume/vol-0new"].iter().map(|r| req(action, ec2(r), &launching)).collect();
            for from in ["image/ami-0base", "subnet/subnet-0a", "security-group/sg-0a", "network-interface/eni-0new"] {
                v.push(req(action, ec2(from), &launching));
            }
            // Auto Scaling's check when a group is pointed at a template version: may the caller launch with it?
            v.push(req(action, ec2("instance/*"), &[("ec2:LaunchTemplate", &ec2("launch-template/lt-0a"))]));
            v
        }
        "ec2:CreateImage" => ["instance/i-0b1", "image/ami-0new", "snapshot/snap-0new"].iter().map(|r| req(action, ec2(r), &baking)).collect(),
        "ec2:CreateTags" => vec![
            req(action, ec2("instance/i-0new"), &[("ec2:CreateAction", "RunInstances")]),
            req(action, ec2("volume/vol-0new"), &[("ec2:CreateAction", "RunInstances")]),
            req(action, ec2("image/ami-0new"), &[("ec2:CreateAction", "CreateImage")]),
            req(action, ec2("image/ami-0copy"), &[("ec2:CreateAction", "CopyImage")]),
            req(action, ec2("snapshot/snap-0new"), &baking),
        ],
        "ec2:DeregisterImage" | "ec2:ModifyImageAttribute" | "ec2:DeleteTags" | "ec2:EnableImageDeregistrationProtection" | "ec2:DisableImageDeregistrationProtection" => {
            vec![req(action, ec2("image/ami-0old"), &ours)]
        }
        "ec2:ModifySnapshotAttribute" => vec![req(action, ec2("snapshot/snap-0old"), &ours)],
        // A copy: the source image (any), the new image and snapshot tagged with the pipeline as they are made.
        "ec2:CopyImage" => vec![req(action, ec2("image/ami-0new"), &baking), req(action, ec2("snapshot/snap-0new"), &baking)],
        "sts:AssumeRole" => vec![req(action, ROLE.into(), &[])],
        "ec2:DeleteSnapshot" => vec![req(action, ec2("snapshot/snap-0old"), &ours)],
        "ec2:CreateLaunchTemplateVersion" | "ec2:ModifyLaunchTemplate" | "ec2:CreateLaunchTemplate" | "ec2:DeleteLaunchTemplateVersions" => {
            vec![req(action, ec2("launch-template/lt-0a"), &[])]
        }
        a if a.starts_with("autoscaling:") && !a.starts_with("autoscaling:Describe") => vec![req(action, group("shop-prod"), &[])],
        a if a.contains(":Describe") || a == "cloudwatch:GetMetricData" => vec![req(action, "*".into(), &[])],
        _ => vec![],
    }
}

/// `*` and `?` wildcards, as IAM matches Action, Resource and ArnLike values.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len()).filter(|i| text.is_char_boundary(*i)).any(|i| glob(&pattern[1..], &text[i..])),
        Some(c) => text.chars().next().is_some_and(|t| (c == '?' || c == t) && glob(&pattern[c.len_utf8()..], &text[t.len_utf8()..])),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map_or_else(|| v.as_str().into_iter().collect(), |a| a.iter().filter_map(Value::as_str).collect())
}

/// Whether an identity policy of Allow statements allows `r` (IAM's evaluation for what we generate:
/// Action, Resource, and every condition key present in the request with a matching value).
fn allows(doc: &Value, r: &Request) -> bool {
    doc["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).iter().any(|a| glob(a, r.action))
            && strings(&s["Resource"]).iter().any(|p| glob(p, &r.resource))
            && s.get("Condition").and_then(Value::as_object).into_iter().flatten().all(|(op, keys)| {
                keys.as_object().unwrap().iter().all(|(key, want)| {
                    r.context.iter().filter(|(k, _)| k == key).any(|(_, got)| {
                        strings(want).iter().any(|w| if op == "ArnLike" { glob(w, got) } else { w == got })
                    })
                })
            })
    })
}

#[test]
fn every_call_bakeroll_makes_is_allowed_and_none_on_another_pipelines_resources() {
    // With a deploy role, so that AssumeRole is granted too (without one it is left out).
    let doc = generate(&PolicyInput { roles: vec![ROLE.into()], ..input() }).document;
    assert_eq!(statement(&doc, "AssumeDeployRoles")["Resource"], json!([ROLE]));
    assert!(!allowed_actions(&generate(&input()).document).contains(&"sts:AssumeRole".to_string()), "no role, no AssumeRole");
    for a in ALL {
        let calls = calls_of(a.name, "shop");
        assert!(!calls.is_empty(), "{}: say above which resources and keys AWS authorises it on", a.name);
        for r in &calls {
            assert!(allows(&doc, r), "{} on {} with {:?} is refused by {doc:#}", r.action, r.resource, r.context);
        }
    }
    // The same destructive calls on another pipeline's resources, or on a group of no environment: refused.
    for action in ["ec2:TerminateInstances", "ec2:GetConsoleOutput", "ec2:DeregisterImage", "ec2:DeleteSnapshot"] {
        for r in calls_of(action, "other") {
            assert!(!allows(&doc, &r), "{action} on {} of pipeline `other` is allowed", r.resource);
        }
    }
    let launch_for_other = calls_of("ec2:RunInstances", "other").into_iter().find(|r| r.resource.contains("instance/i-")).unwrap();
    assert!(!allows(&doc, &launch_for_other), "a build instance tagged for another pipeline may be launched");
    let unowned = req("ec2:TerminateInstances", ec2("instance/i-0web"), &[("aws:ResourceTag/bakeroll:pipeline", "shop")]);
    assert!(!allows(&doc, &unowned), "an instance of the pipeline that is no build instance may be terminated");
    for action in ["autoscaling:StartInstanceRefresh", "autoscaling:UpdateAutoScalingGroup", "autoscaling:CreateOrUpdateTags"] {
        assert!(!allows(&doc, &req(action, group("billing-prod"), &[])), "{action} on a group of no environment is allowed");
    }
    // And nothing the code cannot call, apart from the documented dependent action.
    for x in &allowed_actions(&doc) {
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
        json!(["ec2:DeregisterImage", "ec2:ModifyImageAttribute", "ec2:DeleteTags", "ec2:EnableImageDeregistrationProtection", "ec2:DisableImageDeregistrationProtection"])
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
    assert_eq!(on_create["Condition"]["StringEquals"]["ec2:CreateAction"], json!(["RunInstances", "CreateImage", "CopyImage"]));
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

/// With a deploy role, each identity gets what it calls and nothing more: the caller bakes, copies,
/// shares, marks and assumes the role; the role deploys its groups; neither gets the other's writes.
#[test]
fn a_deploy_role_gets_the_deploy_calls_and_the_caller_the_rest() {
    let caller = allowed_actions(&generate(&PolicyInput { roles: vec![ROLE.into()], identity: Identity::Caller { deploys: false }, ..input() }).document);
    let role = allowed_actions(&generate(&PolicyInput { identity: Identity::DeployRole, ..input() }).document);
    for a in ALL {
        let name = a.name.to_string();
        let (in_caller, in_role) = (caller.contains(&name), role.contains(&name));
        match a.account {
            // The role's RunInstances is only UseLaunchTemplates' (Auto Scaling checks it may launch the template).
            actions::Account::Bake => assert!(in_caller && (!in_role || name == "ec2:RunInstances"), "{name}: the bake account's"),
            actions::Account::Deploy => assert!(!in_caller && in_role, "{name}: the deploy account's"),
            actions::Account::Both => assert!(in_caller && in_role, "{name}: both"),
        }
    }
    for (name, account) in [("ec2:CopyImage", "bake"), ("ec2:ModifyImageAttribute", "bake"), ("sts:AssumeRole", "bake"), ("autoscaling:StartInstanceRefresh", "deploy"), ("ec2:CreateLaunchTemplateVersion", "deploy")] {
        let list = if account == "bake" { &caller } else { &role };
        assert!(list.contains(&name.to_string()), "{name} belongs to the {account} account");
    }
    // Launching from a template is the deploy side's; passing the build instance's role is the caller's.
    let doc = generate(&PolicyInput { identity: Identity::DeployRole, instance_profile: Some("shop-build".into()), ..input() }).document;
    let sids: Vec<&str> = doc["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert!(sids.contains(&"UseLaunchTemplates") && !sids.contains(&"PassBuildInstanceRole") && !sids.contains(&"AssumeDeployRoles"), "{sids:?}");
}

#[test]
fn the_trust_policy_names_the_caller_and_the_external_id() {
    let t = trust_policy(Some("arn:aws:iam::111111111111:role/ci"), Some("shop-ext"));
    let s = &t.document["Statement"][0];
    assert_eq!((s["Principal"]["AWS"].as_str(), s["Action"].as_str()), (Some("arn:aws:iam::111111111111:role/ci"), Some("sts:AssumeRole")));
    assert_eq!(s["Condition"]["StringEquals"]["sts:ExternalId"], "shop-ext");
    assert!(t.notes.is_empty());
    let t = trust_policy(None, None);
    assert!(t.document["Statement"][0].get("Condition").is_none());
    assert!(t.document["Statement"][0]["Principal"]["AWS"].as_str().unwrap().contains("BAKE_ACCOUNT_ID"));
    assert!(t.notes.iter().any(|n| n.contains("--principal")), "{:?}", t.notes);
}

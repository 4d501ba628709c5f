//! Groups with a MixedInstancesPolicy in the fake cloud: a deploy passes the whole policy (overrides and
//! distribution unchanged, new template versions) as the refresh's desired configuration, gives an
//! override's own template a version with the same image — or refuses one of another architecture —
//! and a bad release rolls back to the previous policy, natively and with a refresh back; `rollback`,
//! `status`, `history` and `prune` understand the policy.

use std::time::Duration;

use bakeroll::core::model::{Configuration, Distribution, Override, TemplateRef};
use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::{deploy, DeployReport, DeployRequest};
use bakeroll::engine::releases::{require_group, status};
use bakeroll::error::{exit, Error};
use bakeroll::fake::{Health, ImageSpec};

use crate::releases::{baked, roll_back};
use crate::{world, World};

fn types(names: &[&str]) -> Vec<Override> {
    names.iter().map(|t| Override { instance_type: Some(t.to_string()), ..Default::default() }).collect()
}

fn distribution() -> Distribution {
    Distribution { on_demand_base_capacity: Some(1), on_demand_percentage_above_base_capacity: Some(0), spot_allocation_strategy: Some("price-capacity-optimized".into()), ..Default::default() }
}

/// shop-web on a mixed instances policy over its template (t3.micro, t3a.micro) and, optionally, an
/// override with a template of its own launching `own`'s image as c6i.large.
fn mixed(own: Option<ImageSpec>) -> (World, Option<String>) {
    let w = world();
    let mut overrides = types(&["t3.micro", "t3a.micro"]);
    let own_id = own.map(|spec| {
        let image = w.fake.add_image(spec);
        let id = w.fake.add_template("shop-web-large", &image, "c6i.large");
        overrides.push(Override { instance_type: Some("c6i.large".into()), template: Some(TemplateRef { id: id.clone(), name: String::new(), version: "1".into() }), ..Default::default() });
        id
    });
    w.fake.use_mixed_policy("shop-web", overrides, Some(distribution()));
    (w, own_id)
}

async fn run(w: &World, ami: &str) -> (DeployReport, Result<(), Error>) {
    let req = DeployRequest { env: "prod".into(), image_id: ami.into(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() };
    deploy(&w.ctx, &w.env(), &req).await
}

fn policy(w: &World) -> bakeroll::core::model::MixedPolicy {
    match w.fake.group_source("shop-web") {
        Some(Configuration::Mixed(p)) => p,
        other => panic!("not a mixed group: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_deploy_passes_the_whole_policy_with_new_versions_and_the_override_template_gets_the_image_too() {
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-large")));
    let own = own.unwrap();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    let g = &report.groups[0];
    assert!(g.mixed_instances);
    assert_eq!((g.old_version, g.new_version), (1, Some(2)));
    assert_eq!(g.override_templates.len(), 1);
    assert_eq!((g.override_templates[0].template_id.as_str(), g.override_templates[0].new_version), (own.as_str(), 2));
    assert_eq!(w.fake.template_version(&own, 2).and_then(|v| v.image_id), Some(ami.clone()), "the override's template launches the release");
    assert_eq!(w.fake.template_version(&own, 2).and_then(|v| v.instance_type).as_deref(), Some("c6i.large"), "copied from its version 1");
    // The refresh carried the whole policy: same overrides and distribution, new versions; the group has it now.
    let desired = w.fake.refreshes("shop-web")[0].desired.clone();
    let Some(Configuration::Mixed(sent)) = desired else { panic!("the desired configuration is a policy: {desired:?}") };
    assert_eq!(sent.distribution, Some(distribution()));
    assert_eq!(sent.overrides.iter().map(|o| o.instance_type.clone().unwrap()).collect::<Vec<_>>(), ["t3.micro", "t3a.micro", "c6i.large"]);
    assert_eq!(sent.template.version, "2");
    assert_eq!(sent.overrides[2].template.as_ref().map(|t| t.version.as_str()), Some("2"));
    let now = policy(&w);
    assert_eq!((now.template.version.as_str(), now.distribution.clone()), ("2", Some(distribution())));
    assert!(w.fake.group("shop-web").unwrap().launch_template.is_none(), "still a policy, not a plain template");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami.clone(); 3]);
    let types: Vec<String> = w.fake.group_instances("shop-web").iter().filter_map(|(id, ..)| w.fake.instance_type(id)).collect();
    assert!(types.iter().any(|t| t == "c6i.large"), "the override's own template launched: {types:?}");

    // status and history read the policy; prune keeps the override template's image.
    let state = require_group(&w.ctx, "prod", "shop-web").await.unwrap();
    let st = status(&w.ctx, &state, Default::default()).await.unwrap();
    assert!(st.healthy, "{:?}", st.problems);
    let m = st.mixed_instances.expect("status shows the policy");
    assert_eq!(m.instance_types, ["t3.micro", "t3a.micro", "c6i.large"]);
    assert_eq!(m.override_templates, [format!("{own} version 2")]);
    assert_eq!(state.history()[0].version, 2);
    let plan = crate::prune_plan(&w.ctx, 0).await;
    assert!(plan.decision.delete.iter().all(|d| d.ami != ami), "the running release stays");
}

#[tokio::test(start_paused = true)]
async fn an_override_of_another_architecture_is_refused_before_anything_changes() {
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-arm").architecture("arm64")));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    let text = err.to_string();
    assert!(text.contains("c6i.large") && text.contains(own.as_deref().unwrap()) && text.contains("arm64"), "{text}");
    assert!(w.mutations().is_empty(), "nothing changed: {:?}", w.mutations());
    assert_eq!(w.fake.template_version(&w.stack.template_id, 2), None);
}

fn reason(report: &DeployReport) -> RollbackReason {
    match report.groups[0].outcome.clone() {
        Some(Outcome::RolledBack { reason }) => reason,
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_bad_release_rolls_back_to_the_previous_policy() {
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-large")));
    let before = policy(&w);
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let (report, result) = run(&w, &bad).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert!(matches!(reason(&report), RollbackReason::Unhealthy { .. }));
    assert_eq!(policy(&w), before, "the group keeps its policy: versions 1, overrides and distribution");
    // Back on what the policy launched: the template's image, and the override template's own.
    let own_image = w.fake.template_version(own.as_deref().unwrap(), 1).and_then(|v| v.image_id).unwrap();
    let images = w.fake.in_service_images("shop-web");
    assert_eq!(images.len(), 3);
    assert!(images.iter().all(|i| *i == w.stack.image_id || *i == own_image), "{images:?}");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_ended_by_someone_else_is_rolled_back_with_the_previous_policy_whole() {
    let (w, _) = mixed(None);
    let before = policy(&w);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let watcher = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = DeployRequest { env: "prod".into(), image_id: ami.clone(), commit: None, force: false, targets: Default::default(), images: Default::default() };
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    w.until_refresh("shop-web", "InProgress").await;
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert!(w.fake.cancel_refresh_externally("shop-web"));
    let (report, result) = watcher.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert_eq!(report.groups[0].refresh_ids.len(), 2);
    let back = w.fake.refreshes("shop-web")[0].desired.clone();
    assert_eq!(back, Some(Configuration::Mixed(before.clone())), "the refresh back carried the old policy whole");
    assert_eq!(policy(&w), before);
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn bakeroll_rollback_takes_a_mixed_group_back_to_the_previous_release() {
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-large")));
    let own = own.unwrap();
    let a = baked(&w, "aaaaaaa", Health::Healthy).await;
    run(&w, &a).await.1.expect("A deployed");
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    run(&w, &b).await.1.expect("B deployed");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![b.clone(); 3]);
    let (report, result) = roll_back(&w, "previous").await;
    result.expect("rolled back");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![a.clone(); 3]);
    let p = policy(&w);
    assert_eq!(p.template.version, "2", "A's version of the policy's template");
    let v = p.overrides[2].template.as_ref().unwrap().version.parse::<i64>().unwrap();
    assert_eq!(w.fake.template_version(&own, v).and_then(|v| v.image_id), Some(a), "the override's template launches A again");
    assert!(report.unwrap().groups[0].deploy.as_ref().unwrap().mixed_instances);
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_of_a_mixed_group_plans_both_templates_and_the_whole_policy_and_changes_nothing() {
    use bakeroll::cli::dry_run::context;
    use bakeroll::cloud::dry_run::{DryRun, StepKind};
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-large")));
    let own = own.unwrap();
    let before = policy(&w);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let req = DeployRequest { env: "prod".into(), image_id: ami, commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() };
    deploy(&ctx, &w.env(), &req).await.1.expect("planned");
    let writes: Vec<_> = plan.steps().into_iter().filter(|s| s.kind == StepKind::Write).collect();
    let versions: Vec<String> = writes
        .iter()
        .filter(|s| s.action.as_deref() == Some("ec2:CreateLaunchTemplateVersion"))
        .map(|s| s.args["template_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, [w.stack.template_id.clone(), own.clone()], "a new version of the policy's template and of the override's");
    let refresh = writes.iter().find(|s| s.action.as_deref() == Some("autoscaling:StartInstanceRefresh")).expect("the refresh is planned");
    assert_eq!(refresh.args["mixed_instances_policy"], true);
    assert_eq!(refresh.args["override_templates"][0]["template_id"], own.as_str());
    assert_eq!(refresh.args["override_templates"][0]["version"], "2");
    assert_eq!(policy(&w), before);
    assert_eq!(w.fake.template_version(&own, 2), None, "nothing was created");
    assert!(w.fake.refreshes("shop-web").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_the_override_templates_version_is_created_deletes_both_new_versions() {
    let (w, own) = mixed(Some(ImageSpec::named("shop-web-v1-large")));
    let own = own.unwrap();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    w.fake.set_latency("ec2:CreateLaunchTemplateVersion", Duration::from_secs(10));
    let (ctx, env) = (w.ctx.clone(), w.env());
    let req = DeployRequest { env: "prod".into(), image_id: ami.clone(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() };
    let deploying = tokio::spawn(async move { deploy(&ctx, &env, &req).await });
    // The policy's template got its version (10 s); the override's is being created.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(w.fake.template_version(&w.stack.template_id, 2).is_some(), "the first version exists by now");
    w.ctx.stop.request("SIGTERM");
    let (_, result) = deploying.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::INTERRUPTED, "{err:?}");
    let state = err.state().unwrap();
    assert!(state.contains("launch-template version 2 was created and deleted again"), "{state}");
    assert!(state.contains(&format!("version 2 of override template {own} was created and deleted again")), "{state}");
    assert!(w.fake.template_version(&w.stack.template_id, 2).is_none(), "the policy's template has no unused version");
    assert!(w.fake.template_version(&own, 2).is_none(), "the override's template has no unused version");
    assert_eq!(w.calls("ec2:DeleteLaunchTemplateVersions"), 2);
    assert!(w.fake.refreshes("shop-web").is_empty(), "no refresh started");
}

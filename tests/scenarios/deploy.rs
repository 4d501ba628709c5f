//! Deploy scenarios for one group: the happy path with zero capacity loss, every way the health gate
//! and the refresh can fail, and the rollback that itself fails.

use std::time::Duration;

use bakeroll::cloud::ErrorKind;
use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::{deploy, DeployReport};
use bakeroll::error::{exit, Error};
use bakeroll::fake::{Health, ImageSpec};

use crate::{request, run, world, world_with, World, PIPELINE};

fn new_image(w: &World, name: &str) -> String {
    w.fake.add_image(ImageSpec::named(name))
}



fn reason(report: &DeployReport) -> RollbackReason {
    match report.groups[0].outcome.clone() {
        Some(Outcome::RolledBack { reason }) => reason,
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn happy_path_replaces_every_instance_without_capacity_loss() {
    let w = world();
    let ami = new_image(&w, "shop-c1");
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami.clone(); 3]);
    assert!(w.fake.min_in_service_healthy_seen("shop-web").unwrap() >= 3, "Min 100 / Max 200 never dips");
    let g = &report.groups[0];
    assert_eq!((g.old_version, g.new_version), (1, Some(2)));
    let v2 = w.fake.template_version(&w.stack.template_id, 2).expect("version 2");
    assert_eq!(v2.image_id.as_deref(), Some(ami.as_str()));
    assert_eq!(v2.instance_type.as_deref(), Some("t3.micro"), "copied from version 1");
    assert!(v2.description.unwrap().contains("commit=c1"));
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.unwrap().version, "2", "applied on success");
    assert_eq!(w.calls("ec2:ModifyLaunchTemplate"), 1, "new version made default");
}

#[tokio::test(start_paused = true)]
async fn unhealthy_at_first_checkpoint_rolls_back_natively() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let (report, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    assert!(matches!(reason(&report), RollbackReason::Unhealthy { .. }));
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1);
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
    assert_eq!(w.fake.refreshes("shop-web")[0].status.as_str(), "RollbackSuccessful");
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.unwrap().version, "1");
    assert!(err.state().unwrap().contains("verified healthy"), "{:?}", err.state());
}

#[tokio::test(start_paused = true)]
async fn unhealthy_during_bake_time_rolls_back() {
    // EC2 health checks: Auto Scaling ignores target health (as on AWS), so only bakeroll's gate can
    // notice the application breaking while the refresh bakes.
    let w = crate::world_of(PIPELINE, bakeroll::fake::StackSpec::new("shop-web").ec2_health_check());
    let ami = new_image(&w, "shop-c1");
    let watcher = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = request(&ami);
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    w.until_refresh("shop-web", "Baking").await;
    for (id, image, _) in w.fake.group_instances("shop-web") {
        if image == ami {
            w.fake.set_instance_health(&id, Health::Unhealthy);
        }
    }
    let (report, result) = watcher.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert!(matches!(reason(&report), RollbackReason::Unhealthy { .. }));
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1, "Baking is still rollbackable");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn target_stuck_initial_past_grace_rolls_back() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-stuck").health(Health::StuckInitial));
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    match reason(&report) {
        RollbackReason::Unhealthy { failure } => assert!(failure.to_string().contains("initial"), "{failure}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

async fn ended_externally(end: impl Fn(&World)) -> (World, DeployReport, Result<(), Error>) {
    let w = world();
    let ami = new_image(&w, "shop-c1");
    let watcher = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = request(&ami);
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    w.until_refresh("shop-web", "InProgress").await;
    tokio::time::sleep(Duration::from_secs(90)).await;
    end(&w);
    let (report, result) = watcher.await.unwrap();
    (w, report, result)
}

#[tokio::test(start_paused = true)]
async fn refresh_cancelled_externally_is_rolled_back_with_a_new_refresh() {
    let (w, report, result) = ended_externally(|w| assert!(w.fake.cancel_refresh_externally("shop-web"))).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert!(matches!(reason(&report), RollbackReason::RefreshEnded { ref status, .. } if status == "Cancelled"));
    assert_eq!(report.groups[0].refresh_ids.len(), 2, "the deploy's refresh and the one going back");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn refresh_failed_externally_is_rolled_back() {
    let (w, report, result) = ended_externally(|w| assert!(w.fake.fail_refresh_externally("shop-web", "alarm fired"))).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    // With AutoRollback on, AWS rolls a failed refresh back itself; either path must end verified.
    assert!(matches!(
        reason(&report),
        RollbackReason::RefreshEnded { .. } | RollbackReason::AwsRollback { .. }
    ));
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn rollback_that_fails_exits_4_with_the_refresh_named() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    w.fake.fail_always("autoscaling:RollbackInstanceRefresh", ErrorKind::Other, "InternalFailure");
    let (report, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::NEEDS_HUMAN, "{err}");
    let state = err.state().unwrap();
    assert!(state.contains("NOT VERIFIED"), "{state}");
    assert!(state.contains(&report.groups[0].refresh_ids[0]), "{state}");
}

#[tokio::test(start_paused = true)]
async fn mixed_health_across_target_groups_rolls_back_naming_the_bad_one() {
    let w = world_with(PIPELINE, 2);
    let ami = new_image(&w, "shop-c1");
    w.fake.set_image_health_in(&ami, &w.stack.target_group_arns[1], Health::Unhealthy);
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    match reason(&report) {
        RollbackReason::Unhealthy { failure } => assert!(failure.to_string().contains("shop-web-tg2"), "{failure}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn preflight_refuses_without_changing_anything() {
    // EC2 health checks, so Auto Scaling does not replace the broken instance before the deploy looks.
    let w = crate::world_of(PIPELINE, bakeroll::fake::StackSpec::new("shop-web").ec2_health_check());
    let ami = new_image(&w, "shop-c1");
    // Unknown AMI.
    let (_, r) = run(&w, "ami-00000000000000000").await;
    assert_eq!(r.unwrap_err().exit_code(), exit::USAGE);
    // A fleet that is already broken: wait until the load balancer says so (before Auto Scaling replaces it).
    let victim = w.stack.instance_ids[0].clone();
    w.fake.set_instance_health(&victim, Health::Unhealthy);
    let tg = w.stack.target_group_arns[0].clone();
    let broken = |w: &World| {
        w.fake.target_states(&tg).iter().any(|(id, s)| *id == victim && *s == bakeroll::core::model::TargetState::Unhealthy)
    };
    for _ in 0..120 {
        if broken(&w) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(broken(&w), "the load balancer never saw {victim} fail: {:?}", w.fake.target_states(&tg));
    let (_, r) = run(&w, &ami).await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains(&victim), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert!(w.mutations().is_empty(), "{:?}", w.mutations());
}

#[tokio::test(start_paused = true)]
async fn unknown_group_is_named() {
    let w = world_with(&PIPELINE.replace("[\"shop-web\"]", "[\"shop-wbe\"]"), 1);
    let ami = new_image(&w, "shop-c1");
    let (_, r) = run(&w, &ami).await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("shop-wbe"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn denied_refresh_exits_5_after_creating_only_a_version() {
    let w = world();
    let ami = new_image(&w, "shop-c1");
    w.fake.deny("autoscaling:StartInstanceRefresh");
    let (_, r) = run(&w, &ami).await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code(), exit::DENIED, "{err}");
    assert!(err.state().unwrap().contains("version 2 created but unused"), "{:?}", err.state());
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn group_on_latest_is_pinned_then_deployed() {
    let w = world();
    // A second stack, on $Latest, in the same fake region.
    w.fake.add_stack(bakeroll::fake::StackSpec::new("shop-api").version_ref("$Latest"));
    let env_text = PIPELINE.replace("[\"shop-web\"]", "[\"shop-api\"]");
    let pipeline = bakeroll::config::Loaded::parse(std::path::Path::new("pipeline/x.toml"), &env_text).unwrap();
    let ctx = bakeroll::engine::Ctx { pipeline, ..w.ctx.clone() };
    let env = ctx.pipeline.settings(None).unwrap();
    let ami = new_image(&w, "shop-c1");
    let (report, result) = deploy(&ctx, &env, &request(&ami)).await;
    result.expect("deployed");
    assert_eq!(report.groups[0].pinned_from.as_deref(), Some("$Latest"));
    assert_eq!(w.fake.in_service_images("shop-api"), vec![ami; 3]);
}

/// A pipeline that names no region (the SDK's chain decides) deploys: nothing is copied or shared, and
/// nothing asks for the bake region's name.
#[tokio::test(start_paused = true)]
async fn a_pipeline_without_a_region_deploys() {
    let w = world_with(&PIPELINE.replace("region = \"us-east-1\"\n", ""), 1);
    assert!(w.ctx.pipeline.pipeline.region.is_none());
    let ami = new_image(&w, "shop-c1");
    let (_, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
    assert_eq!(w.calls("ec2:CopyImage"), 0);
}

//! A deploy that is interrupted, crashes, or loses an answer still ends on a healthy, known release: a
//! stop request rolls the refresh back and verifies (but never undoes a rollback under way), a re-run
//! after a crash attaches to the refresh the dead run started or finishes an unwatched success, and a
//! lost StartInstanceRefresh answer is recognised as our own refresh, not reported as a failure.

use std::time::Duration;

use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::error::exit;
use bakeroll::fake::{Health, ImageSpec, StackSpec};

use crate::{request, spawn, world, world_of, PIPELINE};



#[tokio::test(start_paused = true)]
async fn a_stop_during_the_refresh_rolls_it_back_and_verifies() {
    let w = world();
    let old = w.fake.in_service_images("shop-web");
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let deploying = spawn(&w, &ami);
    w.until_refresh("shop-web", "InProgress").await;
    w.ctx.stop.request("SIGTERM");
    let (report, result) = deploying.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::INTERRUPTED, "rolled back and verified, then reported as interrupted");
    match &report.groups[0].outcome {
        Some(Outcome::RolledBack { reason: RollbackReason::Interrupted { signal } }) => assert_eq!(signal, "SIGTERM"),
        other => panic!("expected an interrupted rollback, got {other:?}"),
    }
    assert_eq!(w.fake.in_service_images("shop-web"), old, "back on the previous release");
    assert_eq!(w.fake.refreshes("shop-web")[0].status.as_str(), "RollbackSuccessful");
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_our_rollback_lets_the_rollback_finish() {
    let w = world();
    let old = w.fake.in_service_images("shop-web");
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let deploying = spawn(&w, &bad);
    w.until_refresh("shop-web", "RollbackInProgress").await;
    w.ctx.stop.request("SIGTERM");
    let (_, result) = deploying.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::INTERRUPTED, "the rollback verified, then reported as interrupted");
    assert_eq!(w.fake.in_service_images("shop-web"), old, "the rollback was not itself undone");
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1, "one rollback, never a rollback of the rollback");
    assert_eq!(w.fake.refreshes("shop-web").len(), 1, "no refresh back to the bad release");
}

#[tokio::test(start_paused = true)]
async fn a_stop_before_the_refresh_starts_leaves_the_group_unchanged() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    w.ctx.stop.request("SIGINT");
    let (_, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::INTERRUPTED);
    assert!(err.state().unwrap().contains("SIGINT"), "{err:?}");
    assert!(w.fake.refreshes("shop-web").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_a_crash_during_the_rollback_watches_the_rollback_to_a_verified_end() {
    let w = world();
    let old = w.fake.in_service_images("shop-web");
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let crashed = spawn(&w, &bad);
    w.until_refresh("shop-web", "RollbackInProgress").await;
    crashed.abort(); // SIGKILL during the rollback: the rollback goes on alone
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&bad)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "not exit 2 'a refresh is in flight': it is ours, rolling back: {err:?}");
    assert!(err.to_string().contains("already rolling back"), "{err}");
    assert_eq!(w.fake.in_service_images("shop-web"), old, "verified on the previous release when the re-run exits");
    assert_eq!(w.fake.refreshes("shop-web").len(), 1, "watched, not a second refresh");
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1, "the dead run's rollback, not another");
    assert!(matches!(report.groups[0].outcome, Some(Outcome::RolledBack { .. })), "{:?}", report.groups[0].outcome);
}

#[tokio::test(start_paused = true)]
async fn a_rerun_finds_someone_elses_rollback_in_flight_and_refuses() {
    let w = world();
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let crashed = spawn(&w, &bad);
    w.until_refresh("shop-web", "RollbackInProgress").await;
    crashed.abort();
    // Another release's deploy: the rolling-back refresh is not its own.
    let other = w.fake.add_image(ImageSpec::named("shop-c2"));
    let req = DeployRequest { commit: Some("c2".into()), ..request(&other) };
    let (_, result) = deploy(&w.ctx, &w.env(), &req).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err:?}");
    assert!(err.to_string().contains("RollbackInProgress"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_the_version_is_created_deletes_it_again() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let template = w.fake.group("shop-web").unwrap().launch_template.unwrap().id;
    w.fake.set_latency("ec2:CreateLaunchTemplateVersion", Duration::from_secs(10));
    let deploying = spawn(&w, &ami);
    tokio::time::sleep(Duration::from_secs(5)).await; // the version is being created
    w.ctx.stop.request("SIGTERM");
    let (_, result) = deploying.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::INTERRUPTED);
    assert!(err.state().unwrap().contains("launch-template version 2 was created and deleted again"), "{err:?}");
    assert!(w.fake.template_version(&template, 2).is_none(), "no version left that nothing rolled out");
    assert_eq!(w.calls("ec2:DeleteLaunchTemplateVersions"), 1);
    assert!(w.fake.refreshes("shop-web").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_a_crash_mid_refresh_attaches_to_it() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let crashed = spawn(&w, &ami);
    w.until_refresh("shop-web", "InProgress").await;
    crashed.abort(); // SIGKILL: no cleanup, the refresh goes on alone
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("the re-run watches the dead run's refresh to a verified end");
    assert_eq!(w.fake.refreshes("shop-web").len(), 1, "attached, not a second refresh");
    assert_eq!(report.groups[0].refresh_ids, [w.fake.refreshes("shop-web")[0].id.clone()]);
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
    assert_eq!(w.calls("ec2:CreateLaunchTemplateVersion"), 1, "the version is not made twice");
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_an_unwatched_success_verifies_and_sets_the_default() {
    let w = world();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let crashed = spawn(&w, &ami);
    w.until_refresh("shop-web", "InProgress").await;
    crashed.abort();
    w.until_refresh("shop-web", "Successful").await;
    assert_eq!(w.fake.default_version(&w.stack.template_id), Some(1), "the dead run never set it");
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("verified");
    assert!(report.groups[0].already_deployed);
    assert_eq!(report.groups[0].outcome, Some(Outcome::Deployed));
    assert_eq!(w.fake.default_version(&w.stack.template_id), Some(2), "the re-run made version 2 the default");
    assert_eq!(w.fake.refreshes("shop-web").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_start_answer_is_our_refresh_and_is_watched() {
    let w = world();
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    w.fake.lose_next_answer("autoscaling:StartInstanceRefresh");
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&bad)).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK, "gated and rolled back, not a false 'AWS call failed'");
    assert_eq!(w.fake.refreshes("shop-web").len(), 1, "adopted, not started twice");
    assert!(matches!(report.groups[0].outcome, Some(Outcome::RolledBack { .. })), "{:?}", report.groups[0].outcome);
    assert!(w.events().iter().any(|e| format!("{e:?}").contains("adopting")), "the adoption is said");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_is_not_ours_is_named_and_nothing_changes() {
    let w = world();
    let a = w.fake.add_image(ImageSpec::named("shop-a"));
    let b = w.fake.add_image(ImageSpec::named("shop-b"));
    let first = spawn(&w, &a);
    w.until_refresh("shop-web", "InProgress").await;
    let (_, second) = deploy(&w.ctx, &w.env(), &DeployRequest { commit: Some("c2".into()), ..request(&b) }).await;
    let err = second.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    let text = err.to_string();
    let holder = &w.fake.refreshes("shop-web")[0].id;
    assert!(text.contains(holder.as_str()) && text.contains("commit c1") && text.contains(&a), "names the holder: {text}");
    first.await.unwrap().1.expect("the first deploy is untouched");
    assert_eq!(w.calls("ec2:CreateLaunchTemplateVersion"), 1, "the refused deploy made no version");
}

#[tokio::test(start_paused = true)]
async fn a_group_without_target_groups_is_refused_unless_ec2_health_is_chosen() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web").target_groups(0));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("health = \"ec2\""), "{err}");
    assert!(w.fake.refreshes("shop-web").is_empty());

    let ec2 = world_of(&PIPELINE.replace("timeout = \"60m\"", "timeout = \"60m\"\nhealth = \"ec2\""), StackSpec::new("shop-web").target_groups(0));
    let ami = ec2.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = deploy(&ec2.ctx, &ec2.env(), &request(&ami)).await;
    result.expect("deployed on EC2 health checks, as asked");
    tokio::time::sleep(Duration::ZERO).await;
}

//! Refresh failure, cancel and rollback: AutoRollback, manual rollback (also while Baking), what cannot be
//! rolled back, external cancel/failure, alarms, stuck and mixed health, and a rollback that fails.

use super::*;
use crate::cloud::ErrorKind;

fn unhealthy_deploy_spec() -> (StackSpec, ImageSpec) {
    (
        StackSpec::new("shop-web").instances(4).target_groups(2),
        ImageSpec::named("shop-web-v2").health(Health::Unhealthy),
    )
}

#[tokio::test(start_paused = true)]
async fn unhealthy_image_with_auto_rollback_restores_the_old_fleet() {
    let (stack, image) = unhealthy_deploy_spec();
    let d = Deploy::new(stack, image).await;
    let mut p = prefs(100, 200);
    p.auto_rollback = true;
    d.start(p).await;
    let r = until(3600, || {
        Some(d.latest()).filter(|r| r.status == RefreshStatus::RollbackInProgress)
    })
    .await;
    assert!(
        r.rollback_reason
            .as_deref()
            .unwrap()
            .starts_with("Instance refresh failed"),
        "{r:?}"
    );
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::RollbackSuccessful);
    assert!(
        done.status_reason
            .as_deref()
            .unwrap()
            .contains("failed ELB health checks"),
        "{done:?}"
    );
    assert_eq!(d.fleet_images(), vec![d.stack.image_id.clone(); 4]);
    assert_eq!(d.version_of_group(), "1");
    assert_eq!(d.fake.min_in_service_healthy_seen("shop-web"), Some(4));
}

#[tokio::test(start_paused = true)]
async fn unhealthy_image_without_rollback_fails_where_it_stands() {
    let (stack, image) = unhealthy_deploy_spec();
    let d = Deploy::new(stack, image).await;
    d.start(prefs(100, 100)).await;
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::Failed);
    assert!(
        done.status_reason
            .as_deref()
            .unwrap()
            .starts_with("3 replacement instances failed"),
        "{done:?}"
    );
    assert_eq!(done.rollback_reason, None);
    assert_eq!(d.version_of_group(), "1");
    sleep(300).await; // Auto Scaling refills the hole from the group's own (old) template.
    assert_eq!(d.fleet_images(), vec![d.stack.image_id.clone(); 4]);
}

#[tokio::test(start_paused = true)]
async fn manual_rollback_mid_refresh_replaces_the_new_instances() {
    let d = Deploy::standard().await;
    let id = d.start(prefs(100, 100)).await;
    until(3600, || d.latest().percentage_complete.filter(|p| *p >= 50)).await;
    assert_eq!(
        d.cloud.autoscaling.rollback_instance_refresh("shop-web").await.unwrap(),
        id
    );
    assert_eq!(d.latest().status, RefreshStatus::RollbackInProgress);
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::RollbackSuccessful);
    assert_eq!(done.rollback_reason.as_deref(), Some("Rollback requested by user."));
    assert_eq!(d.fleet_images(), vec![d.stack.image_id.clone(); 4]);
    assert_eq!(d.fake.min_in_service_healthy_seen("shop-web"), Some(3));
    let e = d
        .cloud
        .autoscaling
        .rollback_instance_refresh("shop-web")
        .await
        .unwrap_err();
    assert!(e.is("ActiveInstanceRefreshNotFound") && e.kind == ErrorKind::Conflict);
}

#[tokio::test(start_paused = true)]
async fn a_baking_refresh_can_still_be_rolled_back() {
    let d = Deploy::standard().await;
    let mut p = prefs(100, 200);
    p.bake_time = Some(Duration::from_secs(3600));
    d.start(p).await;
    until(3600, || Some(d.latest()).filter(|r| r.status == RefreshStatus::Baking)).await;
    d.cloud.autoscaling.rollback_instance_refresh("shop-web").await.unwrap();
    assert_eq!(d.finished().await.status, RefreshStatus::RollbackSuccessful);
    assert_eq!(d.fleet_images(), vec![d.stack.image_id.clone(); 4]);
    assert_eq!(d.fake.min_in_service_healthy_seen("shop-web"), Some(4));
}

#[tokio::test(start_paused = true)]
async fn latest_or_default_versions_make_a_refresh_irreversible() {
    let d = Deploy::new(
        StackSpec::new("shop-web").instances(2).version_ref("$Latest"),
        ImageSpec::named("v2"),
    )
    .await;
    let e = d
        .cloud
        .autoscaling
        .rollback_instance_refresh("shop-web")
        .await
        .unwrap_err();
    assert!(e.is("ActiveInstanceRefreshNotFound"), "nothing to roll back yet: {e}");
    let mut p = prefs(100, 200);
    p.auto_rollback = true;
    let e = d
        .cloud
        .autoscaling
        .start_instance_refresh(&d.request(p))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    d.start(prefs(100, 200)).await;
    let e = d
        .cloud
        .autoscaling
        .rollback_instance_refresh("shop-web")
        .await
        .unwrap_err();
    assert!(
        e.is("IrreversibleInstanceRefresh") && e.kind == ErrorKind::Conflict,
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_without_undoing() {
    let d = Deploy::standard().await;
    d.start(prefs(100, 100)).await;
    let e = d.cloud.autoscaling.rollback_instance_refresh("nope").await.unwrap_err();
    assert!(e.is("ValidationError"));
    until(3600, || d.latest().percentage_complete.filter(|p| *p >= 25)).await;
    assert!(d.fake.cancel_refresh_externally("shop-web"));
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::Cancelled);
    assert_eq!(done.status_reason.as_deref(), Some("Cancelled due to user request."));
    let mixed = d.fleet_images();
    assert!(
        mixed.contains(&d.new_image) && mixed.contains(&d.stack.image_id),
        "{mixed:?}"
    );
    sleep(3600).await;
    assert_eq!(d.fleet_images(), mixed, "a cancelled refresh is not undone");
    assert_eq!(d.version_of_group(), "1");
    let e = d
        .cloud
        .autoscaling
        .cancel_instance_refresh("shop-web")
        .await
        .unwrap_err();
    assert!(e.is("ActiveInstanceRefreshNotFound"));
}

#[tokio::test(start_paused = true)]
async fn external_failure_and_alarms_fail_the_refresh() {
    let d = Deploy::standard().await;
    let mut p = prefs(100, 200);
    p.auto_rollback = true;
    d.start(p).await;
    sleep(30).await;
    assert!(d.fake.fail_refresh_externally("shop-web", "Chaos monkey"));
    let done = d.finished().await;
    assert_eq!(
        (done.status, done.status_reason.as_deref()),
        (RefreshStatus::RollbackSuccessful, Some("Chaos monkey"))
    );
    assert_eq!(d.fleet_images(), vec![d.stack.image_id.clone(); 4]);

    let mut p = prefs(100, 200);
    p.alarms = vec!["shop-web-5xx".into()];
    d.fake.add_alarm("shop-web-5xx");
    d.start(p).await;
    sleep(100).await;
    d.fake.set_alarm("shop-web-5xx", true);
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::Failed);
    assert!(done.status_reason.unwrap().contains("shop-web-5xx"));
}

#[tokio::test(start_paused = true)]
async fn targets_stuck_in_initial_fail_after_the_timeout() {
    let d = Deploy::new(
        StackSpec::new("shop-web").instances(2),
        ImageSpec::named("v2").health(Health::StuckInitial),
    )
    .await;
    d.fake
        .update_timings(|t| t.new_instance_timeout = Duration::from_secs(300));
    let mut p = prefs(100, 200);
    p.auto_rollback = true;
    d.start(p).await;
    sleep(200).await;
    assert_eq!(
        d.latest().status,
        RefreshStatus::InProgress,
        "still waiting on `initial` targets"
    );
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::RollbackSuccessful);
    assert!(done.status_reason.unwrap().contains("was not healthy 300 s"));
}

#[tokio::test(start_paused = true)]
async fn unhealthy_in_one_target_group_is_unhealthy() {
    let d = Deploy::standard().await;
    let tg2 = d.stack.target_group_arns[1].clone();
    d.fake.set_image_health_in(&d.new_image, &tg2, Health::Unhealthy);
    d.start(prefs(100, 200)).await;
    sleep(60).await; // replacements are past `initial` in both target groups
    let fresh: Vec<String> = d
        .fake
        .group_instances("shop-web")
        .into_iter()
        .filter(|(_, img, _)| *img == d.new_image)
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(fresh.len(), 4);
    let tg1 = d.fake.target_states(&d.stack.target_group_arns[0]);
    assert!(fresh.iter().all(|id| tg1.contains(&(id.clone(), TargetState::Healthy))));
    let tg2_states = d.fake.target_states(&tg2);
    assert!(fresh
        .iter()
        .all(|id| tg2_states.contains(&(id.clone(), TargetState::Unhealthy))));
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::Failed);
    assert!(done.status_reason.unwrap().contains("shop-web-tg2"));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_cannot_launch_the_old_image_fails() {
    let (stack, image) = unhealthy_deploy_spec();
    let d = Deploy::new(stack, image).await;
    d.cloud.ec2.deregister_image(&d.stack.image_id).await.unwrap(); // pruned while still in use
    let mut p = prefs(100, 100);
    p.auto_rollback = true;
    d.start(p).await;
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::RollbackFailed);
    assert!(done.status_reason.unwrap().contains("InvalidAMIID.NotFound"));
}

#[tokio::test(start_paused = true)]
async fn after_a_cancelled_max200_refresh_the_surplus_is_scaled_in() {
    let d = Deploy::standard().await;
    d.start(prefs(100, 200)).await;
    sleep(40).await; // four replacements in service, not yet healthy
    assert_eq!(d.fleet_images().len(), 8);
    d.cloud.autoscaling.cancel_instance_refresh("shop-web").await.unwrap();
    assert_eq!(
        d.latest().status,
        RefreshStatus::Cancelling,
        "waits for the replacements under way"
    );
    let done = d.finished().await;
    assert_eq!(done.status, RefreshStatus::Cancelled);
    sleep(120).await;
    assert_eq!(
        d.fleet_images(),
        vec![d.stack.image_id.clone(); 4],
        "instances off the group's version go first"
    );
    assert_eq!(d.fake.min_in_service_healthy_seen("shop-web"), Some(4));
}

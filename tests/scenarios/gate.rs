//! The health gate against the fake cloud in virtual time: bad instances replaced before a second
//! poll, flapping targets, mixed batches, launch lifecycle hooks (slow but healthy; ABANDON), alarms
//! (at a checkpoint, during bake time, missing), and throttling storms that must not change the verdict.

use std::time::Duration;

use bakeroll::core::health::{EvidenceKind, HealthFailure};
use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::DeployReport;
use bakeroll::error::{exit, Error};
use bakeroll::events::Event;
use bakeroll::fake::{Health, HookResult, ImageSpec, StackSpec, Timings};

use crate::{run, spawn, world_of, world_timed, World, PIPELINE};




fn reason(report: &DeployReport) -> RollbackReason {
    match report.groups[0].outcome.clone() {
        Some(Outcome::RolledBack { reason }) => reason,
        other => panic!("expected a rollback, got {other:?}"),
    }
}

/// The evidence of a verdict on unhealthy instances, as (kind, instance).
fn evidence(report: &DeployReport) -> Vec<(EvidenceKind, String)> {
    match reason(report) {
        RollbackReason::Unhealthy { failure: HealthFailure::Unhealthy { evidence, .. } } => {
            evidence.into_iter().map(|e| (e.kind, e.instance)).collect()
        }
        other => panic!("expected bakeroll's own verdict on evidence, got {other:?}"),
    }
}

fn back_on_the_old_image(w: &World) {
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn instances_replaced_before_a_second_poll_still_convict_before_aws_does() {
    // A slow poll (20 s) and a group that replaces an unhealthy instance 15 s after the load balancer
    // says so (its targets leave `initial` after 30 s, its grace period is 45 s): no new instance is
    // ever seen unhealthy twice. Two instances, so the refresh replaces one at a time (checkpoint 50 %);
    // AWS gives up after 3 failed replacements.
    let pipeline = PIPELINE.replace("poll_interval = \"5s\"", "poll_interval = \"20s\"");
    let spec = StackSpec { health_check_grace: Some(Duration::from_secs(45)), ..StackSpec::new("shop-web").instances(2) };
    let w = world_of(&pipeline, spec);
    let ami = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let ev = evidence(&report);
    assert!(ev.iter().any(|(k, _)| *k == EvidenceKind::Replaced), "a failed replacement is evidence: {ev:?}");
    let mut seen_unhealthy: Vec<&String> = ev.iter().filter(|(k, _)| *k == EvidenceKind::Unhealthy).map(|(_, i)| i).collect();
    seen_unhealthy.dedup();
    assert_eq!(seen_unhealthy.len(), ev.iter().filter(|(k, _)| *k == EvidenceKind::Unhealthy).count(), "never the same instance twice in a row: {ev:?}");
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1, "bakeroll's rollback, not AWS's AutoRollback");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 2]);
}

#[tokio::test(start_paused = true)]
async fn a_flapping_target_is_evidence() {
    // EC2 health checks (Auto Scaling leaves the instance alone), fast health checks, and an application
    // that fails for 4 s out of every 10: no two consecutive 5 s polls see it unhealthy.
    let timings = Timings { health_check_interval: Duration::from_secs(1), healthy_threshold: 1, unhealthy_threshold: 1, ..Timings::default() };
    // Polls exactly 5 s apart: the metric gate off, since it may bring a poll forward to meet a minute of
    // metrics as it is published, and two polls that close could both see one unhealthy spell.
    let pipeline = PIPELINE.replace("timeout = \"60m\"", "timeout = \"60m\"\nmetrics = \"off\"");
    let w = world_timed(&pipeline, StackSpec::new("shop-web").ec2_health_check(), timings);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let watcher = spawn(&w, &ami);
    w.until_refresh("shop-web", "Baking").await;
    let victim = w.fake.group_instances("shop-web").into_iter().find(|(_, image, _)| *image == ami).unwrap().0;
    let flapper = {
        let (fake, victim) = (w.fake.clone(), victim.clone());
        tokio::spawn(async move {
            for _ in 0..60 {
                fake.set_instance_health(&victim, Health::Unhealthy);
                tokio::time::sleep(Duration::from_secs(4)).await;
                fake.set_instance_health(&victim, Health::Healthy);
                tokio::time::sleep(Duration::from_secs(6)).await;
            }
        })
    };
    let (report, result) = watcher.await.unwrap();
    flapper.abort();
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert!(evidence(&report).iter().all(|(k, i)| *k == EvidenceKind::Unhealthy && *i == victim), "{:?}", evidence(&report));
    // It really flapped: the watcher saw it unhealthy, then healthy, then unhealthy again.
    let states: Vec<String> = w
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Fleet { instances, .. } => instances.iter().find(|i| i.id == victim).and_then(|i| i.health.values().next().cloned()),
            _ => None,
        })
        .collect();
    let flapped = states.windows(3).any(|s| s[0] == "unhealthy" && s[1] == "healthy")
        && states.iter().filter(|s| *s == "unhealthy").count() >= 2;
    assert!(flapped, "{states:?}");
    assert!(!states.windows(2).any(|s| s[0] == "unhealthy" && s[1] == "unhealthy"), "no streak ever formed: {states:?}");
}

#[tokio::test(start_paused = true)]
async fn one_bad_instance_in_a_healthy_batch_and_its_replacement_convict() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web").instances(3));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let watcher = spawn(&w, &ami);
    // The first new instance the refresh launches is broken; the others (its replacement too) are fine.
    let bad = loop {
        if let Some((id, ..)) = w.fake.group_instances("shop-web").into_iter().find(|(_, image, _)| *image == ami) {
            break id;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    w.fake.set_instance_health(&bad, Health::Unhealthy);
    let (report, result) = watcher.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let ev = evidence(&report);
    assert!(ev.iter().all(|(_, i)| *i == bad), "only the bad instance is held against the release: {ev:?}");
    back_on_the_old_image(&w);
}

#[tokio::test(start_paused = true)]
async fn a_slow_launch_hook_is_not_held_against_a_healthy_release() {
    // Each new instance waits 8 minutes for its hook, longer than health_grace (5 m): the grace
    // starts when the instance is InService and registered, so the release deploys.
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    w.fake.add_launch_hook("shop-web", Duration::from_secs(3600), HookResult::Abandon);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    w.fake.set_image_lifecycle(&ami, Duration::from_secs(480), HookResult::Continue);
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert_eq!(report.groups[0].outcome, Some(Outcome::Deployed));
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami.clone(); 3]);
    let waited = w.events().iter().any(|e| matches!(e, Event::Progress { waiting_on_hook, .. } if *waiting_on_hook > 0));
    assert!(waited, "the progress shows instances waiting on the hook");
}

#[tokio::test(start_paused = true)]
async fn instances_abandoned_by_their_launch_hook_are_evidence() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    // The old release's instances (launched by the rollback) complete with the hook's default, CONTINUE.
    w.fake.add_launch_hook("shop-web", Duration::from_secs(60), HookResult::Continue);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(bakeroll::fake::LIFECYCLE_TAG, "abandon-after:20"));
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let ev = evidence(&report);
    assert!(ev.len() >= 2 && ev.iter().all(|(k, _)| *k == EvidenceKind::Abandoned), "{ev:?}");
    assert!(reason(&report).to_string().contains("abandoned by its launch lifecycle hook"), "{}", reason(&report));
    back_on_the_old_image(&w);
}

/// The scenario pipeline with one alarm in its AlarmSpecification.
fn alarmed() -> String {
    PIPELINE.replace("[environments.prod]\n", "[environments.prod]\nalarms = [\"shop-web-5xx\"]\n")
}

async fn alarm_fires_when(status_reason_or_status: &str) -> (World, DeployReport, Result<(), Error>) {
    let w = world_of(&alarmed(), StackSpec::new("shop-web"));
    w.fake.add_alarm("shop-web-5xx");
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let watcher = spawn(&w, &ami);
    for _ in 0..10_000 {
        let r = w.fake.refreshes("shop-web");
        let at = r.first().is_some_and(|r| {
            r.status.as_str() == status_reason_or_status || r.status_reason.as_deref().is_some_and(|s| s.contains(status_reason_or_status))
        });
        if at {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    w.fake.set_alarm("shop-web-5xx", true);
    let (report, result) = watcher.await.unwrap();
    (w, report, result)
}

fn assert_named_alarm(w: &World, report: &DeployReport, result: Result<(), Error>) {
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    match reason(report) {
        RollbackReason::Alarm { alarms, rolled_back_by_aws, .. } => {
            assert_eq!(alarms, ["shop-web-5xx"]);
            assert!(rolled_back_by_aws, "AutoRollback is on");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("shop-web-5xx"), "the error names the alarm: {err}");
    assert_eq!(w.calls("cloudwatch:DescribeAlarms"), 2, "preflight, and once to name the alarm");
    back_on_the_old_image(w);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_at_a_checkpoint_is_named() {
    let (w, report, result) = alarm_fires_when("Waiting at checkpoint").await;
    assert_named_alarm(&w, &report, result);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_during_bake_time_is_named() {
    let (w, report, result) = alarm_fires_when("Baking").await;
    assert_named_alarm(&w, &report, result);
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_firing_alarm_refuses_the_deploy_and_changes_nothing() {
    let w = world_of(&alarmed(), StackSpec::new("shop-web"));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, r) = run(&w, &ami).await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains("shop-web-5xx") && err.to_string().contains("not found"), "{err}");
    w.fake.set_alarm("shop-web-5xx", true);
    let (_, r) = run(&w, &ami).await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains("is in ALARM"), "{err}");
    assert!(w.mutations().is_empty(), "{:?}", w.mutations());
}

/// (verdict, AWS calls per poll) of one deploy, optionally in a throttling storm.
async fn verdict(health: Health, storm: bool) -> (String, Vec<String>) {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").health(health));
    let watcher = spawn(&w, &ami);
    w.until_refresh("shop-web", "InProgress").await;
    if storm {
        // From now on every Describe shares a small bucket: 6 tokens, refilled at 0.4/s, against the 3
        // calls each 5 s poll makes (2 a second when they come in at once: the bucket runs dry).
        w.fake.throttle("*:Describe*", 6, 0.4);
    }
    let (report, result) = watcher.await.unwrap();
    let verdict = match (&result, report.groups[0].outcome.clone()) {
        (Ok(()), Some(Outcome::Deployed)) => "deployed".to_string(),
        (Err(_), Some(Outcome::RolledBack { reason: RollbackReason::Unhealthy { failure } })) => match failure {
            HealthFailure::Unhealthy { .. } => "rolled back: unhealthy".to_string(),
            other => format!("rolled back: {other}"),
        },
        other => format!("{other:?}"),
    };
    let warnings = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Warn { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    (verdict, warnings)
}

#[tokio::test(start_paused = true)]
async fn a_throttling_storm_does_not_change_the_verdict() {
    for health in [Health::Healthy, Health::Unhealthy] {
        let (calm, calm_warnings) = verdict(health, false).await;
        let (stormy, warnings) = verdict(health, true).await;
        assert_eq!(stormy, calm, "{health:?}: {warnings:?}");
        assert!(calm_warnings.is_empty(), "{calm_warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("throttling")), "the storm really throttled the watch: {warnings:?}");
        assert!(!warnings.iter().any(|w| w.contains("lost sight")), "{warnings:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn calls_per_poll_do_not_grow_with_the_fleet() {
    for n in [3, 120] {
        let w = world_of(PIPELINE, StackSpec::new("shop-web").instances(n).target_groups(2));
        let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
        run(&w, &ami).await.1.expect("deployed");
        // Less the one read after the release, for the images to protect from deregistration.
        let polls = w.calls("autoscaling:DescribeAutoScalingGroups") - 1;
        assert!(polls > 10, "{n}: {polls}");
        // Every poll: the group and both target groups; the refresh while it runs; EC2 once in
        // preflight and once to confirm the verified fleet, never per poll.
        assert_eq!(w.calls("elasticloadbalancing:DescribeTargetHealth"), 2 * polls, "{n} instances");
        assert!(w.calls("autoscaling:DescribeInstanceRefreshes") <= polls, "{n} instances");
        assert_eq!(w.calls("ec2:DescribeInstances"), 2, "{n} instances");
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_goes_back_while_the_bad_releases_alarm_is_still_in_alarm() {
    // The alarm that the broken release set off must not stop the refresh that cures it: a refresh
    // going back carries no AlarmSpecification (AWS would refuse to start one on an alarm in ALARM).
    let w = world_of(&alarmed(), StackSpec::new("shop-web"));
    w.fake.add_alarm("shop-web-5xx");
    let (a, ra) = crate::releases::ship(&w, "aaaaaaa", Health::Healthy).await;
    let (_, rb) = crate::releases::ship(&w, "bbbbbbb", Health::Healthy).await;
    ra.and(rb).expect("both deploy");
    w.fake.set_alarm("shop-web-5xx", true);
    crate::releases::roll_back(&w, "previous").await.1.expect("rolled back despite the alarm");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![a; 3]);
}

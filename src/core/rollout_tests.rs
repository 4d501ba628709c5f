//! Table tests for the rollout state machine: each scenario is a list of observations and the
//! decisions they must produce. No async, no cloud.

use super::*;
use crate::core::health::{GateParams, HealthFailure};
use crate::core::model::{GroupInstance, TargetHealth, TargetState};

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/aa";
const POLL: Duration = Duration::from_secs(5);

fn params() -> RolloutParams {
    RolloutParams {
        poll: POLL,
        timeout: Duration::from_secs(600),
        verify_timeout: Duration::from_secs(60),
        gate: GateParams { unhealthy_threshold: 2, grace: Duration::from_secs(120) },
        left_alone: Default::default(),
        metrics: Default::default(),
    }
}

fn rollout() -> Rollout {
    Rollout::new(
        params(),
        Release::of(1, "ami-old"),
        Release::of(2, "ami-new"),
        "r-1".into(),
        vec!["i-old1".into(), "i-old2".into()],
    )
}

/// A fleet: (instance id, image, target state).
fn obs(secs: u64, status: Option<&str>, fleet: &[(&str, &str, TargetState)]) -> Observation {
    let group = Group {
        name: "shop".into(),
        launch_template: None,
        launch_configuration: None,
        min_size: 2,
        max_size: 4,
        desired_capacity: 2,
        target_group_arns: vec![TG.into()],
        instances: fleet
            .iter()
            .map(|(id, _, _)| GroupInstance::in_service_healthy(id))
            .collect(),
        tags: Default::default(),
        ..Default::default()
    };
    let refresh = status.map(|s| Refresh {
        id: "r-1".into(),
        group: "shop".into(),
        status: RefreshStatus::parse(s),
        status_reason: Some("reason from AWS".into()),
        percentage_complete: Some(50),
        instances_to_update: Some(1),
        desired_version: Some("2".into()),
        rollback_reason: None,
        start_time: None,
        end_time: None,
        ..Default::default()
    });
    let images = fleet.iter().map(|(id, img, _)| (id.to_string(), img.to_string())).collect();
    let mut health = HealthByGroup::new();
    health.insert(
        TG.into(),
        fleet
            .iter()
            .map(|(id, _, st)| TargetHealth { target_id: id.to_string(), port: Some(80), state: st.clone(), reason: None, description: None })
            .collect(),
    );
    Observation { now: Duration::from_secs(secs), refresh, group, images, images_confirmed: true, health, alarms: None, wall_ms: 0, metrics: None }
}

use TargetState::*;

#[test]
fn happy_path_deploys_after_verifying() {
    let mut r = rollout();
    let mixed = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Initial)];
    assert_eq!(r.step(&obs(5, Some("InProgress"), &mixed)), Decision::Wait(POLL));
    let done = [("i-new1", "ami-new", Healthy), ("i-new2", "ami-new", Healthy)];
    assert_eq!(r.step(&obs(10, Some("Baking"), &done)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(15, Some("Successful"), &done)), Decision::Wait(Duration::ZERO));
    assert_eq!(r.step(&obs(15, Some("Successful"), &done)), Decision::Finish(Outcome::Deployed));
    let names: Vec<_> = r.timeline.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["refreshing", "verifying", "done"]);
}

#[test]
fn unhealthy_new_target_triggers_native_rollback_then_verified() {
    let mut r = rollout();
    let bad = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Unhealthy)];
    assert_eq!(r.step(&obs(5, Some("InProgress"), &bad)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(10, Some("InProgress"), &bad)), Decision::Act(Action::RollbackRefresh));
    let d = r.on_action(&Action::RollbackRefresh, ActionResult::Started { refresh_id: "r-1".into() }, Duration::from_secs(10));
    assert_eq!(d, Decision::Wait(POLL));
    assert_eq!(r.step(&obs(15, Some("RollbackInProgress"), &bad)), Decision::Wait(POLL));
    let back = [("i-old1", "ami-old", Healthy), ("i-old3", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(20, Some("RollbackSuccessful"), &back)), Decision::Wait(Duration::ZERO));
    match r.step(&obs(20, Some("RollbackSuccessful"), &back)) {
        Decision::Finish(Outcome::RolledBack { reason: RollbackReason::Unhealthy { failure } }) => {
            assert!(failure.to_string().contains("i-new1"), "{failure}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.refresh_ids, ["r-1"]);
}

#[test]
fn refresh_that_ended_before_rollback_gets_a_new_refresh() {
    let mut r = rollout();
    let bad = [("i-new1", "ami-new", Unhealthy)];
    r.step(&obs(5, Some("InProgress"), &bad));
    assert_eq!(r.step(&obs(10, Some("InProgress"), &bad)), Decision::Act(Action::RollbackRefresh));
    let refused = ActionResult::Refused { code: "ActiveInstanceRefreshNotFound".into(), message: "none".into() };
    // No active refresh: the next observation says why. Here it had just succeeded: go back with a new refresh.
    assert_eq!(r.on_action(&Action::RollbackRefresh, refused, Duration::from_secs(11)), Decision::Wait(Duration::ZERO));
    assert_eq!(r.step(&obs(11, Some("Successful"), &bad)), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
    let started = ActionResult::Started { refresh_id: "r-2".into() };
    r.on_action(&Action::StartRollbackRefresh { version: 1 }, started, Duration::from_secs(12));
    assert_eq!(r.watched_refresh(), Some("r-2"));
    let back = [("i-old1", "ami-old", Healthy), ("i-old3", "ami-old", Healthy)];
    r.step(&obs(30, Some("Successful"), &back));
    assert!(matches!(r.step(&obs(30, Some("Successful"), &back)), Decision::Finish(Outcome::RolledBack { .. })));
    assert_eq!(r.refresh_ids, ["r-1", "r-2"]);
}

#[test]
fn externally_failed_or_cancelled_refresh_rolls_back_forward() {
    for status in ["Failed", "Cancelled"] {
        let mut r = rollout();
        let d = r.step(&obs(5, Some(status), &[("i-old1", "ami-old", Healthy)]));
        assert_eq!(d, Decision::Act(Action::StartRollbackRefresh { version: 1 }), "{status}");
        assert!(matches!(r.reason, Some(RollbackReason::RefreshEnded { ref status_reason, .. }) if status_reason.is_some()));
    }
}

#[test]
fn aws_auto_rollback_is_followed_and_failure_is_exit_4_material() {
    let mut r = rollout();
    let fleet = [("i-old1", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(5, Some("RollbackInProgress"), &fleet)), Decision::Wait(POLL));
    match r.step(&obs(10, Some("RollbackFailed"), &fleet)) {
        Decision::Finish(Outcome::Failed { reason: Some(RollbackReason::AwsRollback { .. }), detail }) => {
            assert!(detail.contains("r-1"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stuck_initial_past_grace_rolls_back() {
    let mut r = rollout();
    let stuck = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Initial)];
    assert_eq!(r.step(&obs(0, Some("InProgress"), &stuck)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(120, Some("InProgress"), &stuck)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(121, Some("InProgress"), &stuck)), Decision::Act(Action::RollbackRefresh));
    assert!(matches!(r.reason, Some(RollbackReason::Unhealthy { failure: HealthFailure::StuckInitial { .. } })));
}

#[test]
fn timeout_rolls_back() {
    let mut r = rollout();
    let fleet = [("i-old1", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(601, Some("InProgress"), &fleet)), Decision::Act(Action::RollbackRefresh));
    assert!(matches!(r.reason, Some(RollbackReason::Timeout { after_secs: 600 })));
}

#[test]
fn rollback_not_verified_in_time_fails() {
    let mut r = rollout();
    r.step(&obs(5, Some("RollbackSuccessful"), &[]));
    let unhealthy_old = [("i-old1", "ami-old", Unhealthy), ("i-old2", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(30, Some("RollbackSuccessful"), &unhealthy_old)), Decision::Wait(POLL));
    match r.step(&obs(66, Some("RollbackSuccessful"), &unhealthy_old)) {
        Decision::Finish(Outcome::Failed { detail, .. }) => assert!(detail.contains("i-old1"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn irreversible_refresh_is_cancelled_then_rolled_back_forward() {
    let mut r = rollout();
    let bad = [("i-new1", "ami-new", Unhealthy)];
    r.step(&obs(5, Some("InProgress"), &bad));
    r.step(&obs(10, Some("InProgress"), &bad));
    let refused = ActionResult::Refused { code: "IrreversibleInstanceRefresh".into(), message: "".into() };
    assert_eq!(r.on_action(&Action::RollbackRefresh, refused, Duration::from_secs(10)), Decision::Act(Action::CancelRefresh));
    assert_eq!(r.on_action(&Action::CancelRefresh, ActionResult::Cancelled, Duration::from_secs(10)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(15, Some("Cancelling"), &bad)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(20, Some("Cancelled"), &bad)), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
}

#[test]
fn transient_action_errors_are_retried_then_give_up() {
    let mut r = rollout();
    r.step(&obs(5, Some("Failed"), &[]));
    let action = Action::StartRollbackRefresh { version: 1 };
    for i in 0..MAX_ACTION_ERRORS {
        let d = r.on_action(&action, ActionResult::Error { message: "timeout".into() }, Duration::from_secs(6));
        assert_eq!(d, Decision::Wait(POLL), "try {i}");
        assert_eq!(r.step(&obs(7, Some("Failed"), &[])), Decision::Act(action.clone()));
    }
    let d = r.on_action(&action, ActionResult::Error { message: "timeout".into() }, Duration::from_secs(8));
    assert!(matches!(d, Decision::Finish(Outcome::Failed { .. })), "{d:?}");
}

#[test]
fn new_instance_failing_after_success_rolls_back() {
    let mut r = rollout();
    let bad = [("i-new1", "ami-new", Unhealthy), ("i-new2", "ami-new", Healthy)];
    r.step(&obs(5, Some("Successful"), &bad));
    assert_eq!(r.step(&obs(6, Some("Successful"), &bad)), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(11, Some("Successful"), &bad)), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
}

#[test]
fn back_to_starts_a_refresh_to_the_target_and_verifies_it() {
    let mut r = Rollout::back_to(
        params(),
        Release::of(2, "ami-new"),
        Release::of(1, "ami-old"),
        RollbackReason::Requested,
    );
    let fleet = [("i-a", "ami-new", Healthy)];
    assert_eq!(r.step(&obs(0, None, &fleet)), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
    let started = ActionResult::Started { refresh_id: "r-9".into() };
    assert_eq!(r.on_action(&Action::StartRollbackRefresh { version: 1 }, started, Duration::ZERO), Decision::Wait(POLL));
    let back = [("i-b", "ami-old", Healthy), ("i-c", "ami-old", Healthy)];
    r.step(&obs(9, Some("Successful"), &back));
    assert_eq!(
        r.step(&obs(9, Some("Successful"), &back)),
        Decision::Finish(Outcome::RolledBack { reason: RollbackReason::Requested })
    );
    assert_eq!(r.refresh_ids, ["r-9"]);
}

fn undo(status: &str) -> Rollout {
    Rollout::undo(
        params(),
        Release::of(1, "ami-old"),
        Release::of(2, "ami-new"),
        "r-1".into(),
        &RefreshStatus::parse(status),
    )
}

#[test]
fn undo_rolls_back_the_refresh_in_flight_and_verifies_the_saved_version() {
    let mut r = undo("Baking");
    let mixed = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Healthy)];
    assert_eq!(r.watched_refresh(), Some("r-1"));
    assert_eq!(r.step(&obs(0, Some("Baking"), &mixed)), Decision::Act(Action::RollbackRefresh));
    let started = ActionResult::Started { refresh_id: "r-1".into() };
    assert_eq!(r.on_action(&Action::RollbackRefresh, started, Duration::ZERO), Decision::Wait(POLL));
    assert_eq!(r.step(&obs(5, Some("RollbackInProgress"), &mixed)), Decision::Wait(POLL));
    let back = [("i-old1", "ami-old", Healthy), ("i-old2", "ami-old", Healthy)];
    r.step(&obs(10, Some("RollbackSuccessful"), &back));
    assert_eq!(
        r.step(&obs(10, Some("RollbackSuccessful"), &back)),
        Decision::Finish(Outcome::RolledBack { reason: RollbackReason::Requested })
    );
    // Never rolled forward: the fleet on the new image would not have verified.
    let mut r = undo("InProgress");
    r.step(&obs(0, Some("InProgress"), &mixed));
    r.on_action(&Action::RollbackRefresh, ActionResult::Started { refresh_id: "r-1".into() }, Duration::ZERO);
    let forward = [("i-new1", "ami-new", Healthy), ("i-new2", "ami-new", Healthy)];
    r.step(&obs(5, Some("RollbackSuccessful"), &forward));
    assert_eq!(r.step(&obs(80, Some("RollbackSuccessful"), &forward)), Decision::Finish(Outcome::Failed {
        reason: Some(RollbackReason::Requested),
        detail: "the fleet is not verified healthy on ami-old: i-new1 runs ami-new, not ami-old; i-new2 runs ami-new, not ami-old".into(),
    }));
}

#[test]
fn undo_watches_a_rollback_already_under_way_and_handles_a_refresh_that_just_ended() {
    let mut r = undo("RollbackInProgress");
    let back = [("i-old1", "ami-old", Healthy), ("i-old2", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(0, Some("RollbackInProgress"), &back)), Decision::Wait(POLL), "no second rollback request");
    // The refresh succeeded a moment before the request: go back with a new refresh to the saved version.
    let mut r = undo("Baking");
    r.step(&obs(0, Some("Baking"), &back));
    let refused = ActionResult::Refused { code: "ActiveInstanceRefreshNotFound".into(), message: "none".into() };
    assert_eq!(r.on_action(&Action::RollbackRefresh, refused.clone(), Duration::ZERO), Decision::Wait(Duration::ZERO));
    assert_eq!(r.step(&obs(1, Some("Successful"), &back)), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
}

/// A rollback request whose answer was lost and whose SDK retry is refused (nothing active any more,
/// because the first attempt is already rolling back) watches that rollback: it does not start another.
#[test]
fn a_refused_retry_of_our_own_rollback_request_watches_the_rollback() {
    let mut r = rollout();
    let bad = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Unhealthy)];
    r.step(&obs(5, Some("InProgress"), &bad));
    assert_eq!(r.step(&obs(10, Some("InProgress"), &bad)), Decision::Act(Action::RollbackRefresh));
    let refused = ActionResult::Refused { code: "ActiveInstanceRefreshNotFound".into(), message: "none".into() };
    assert_eq!(r.on_action(&Action::RollbackRefresh, refused, Duration::from_secs(10)), Decision::Wait(Duration::ZERO));
    assert_eq!(r.step(&obs(11, Some("RollbackInProgress"), &bad)), Decision::Wait(POLL), "no second rollback, no refresh back");
    let back = [("i-old1", "ami-old", Healthy), ("i-old2", "ami-old", Healthy)];
    assert_eq!(r.step(&obs(20, Some("RollbackSuccessful"), &back)), Decision::Wait(Duration::ZERO));
    assert!(matches!(r.step(&obs(20, Some("RollbackSuccessful"), &back)), Decision::Finish(Outcome::RolledBack { .. })));
}

/// A stop request rolls back only a forward refresh still running; it never undoes a rollback, never
/// rolls back a change AWS already completed, and acts once.
#[test]
fn stop_rolls_back_only_a_forward_refresh_in_flight() {
    let interrupted = RollbackReason::Interrupted { signal: "SIGTERM".into() };
    let mixed = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Initial)];

    let mut refreshing = rollout();
    assert_eq!(refreshing.step(&obs(5, Some("InProgress"), &mixed)), Decision::Wait(POLL));
    assert_eq!(refreshing.stop("SIGTERM", Duration::from_secs(6)), Some(Decision::Act(Action::RollbackRefresh)));
    assert_eq!(refreshing.reason, Some(interrupted.clone()));
    assert_eq!(refreshing.stop("SIGTERM", Duration::from_secs(7)), None, "a second stop changes nothing");

    let mut rolling_back = rollout();
    let sick = [("i-old1", "ami-old", Healthy), ("i-new1", "ami-new", Unhealthy)];
    rolling_back.step(&obs(5, Some("InProgress"), &sick));
    assert_eq!(rolling_back.step(&obs(10, Some("InProgress"), &sick)), Decision::Act(Action::RollbackRefresh));
    rolling_back.on_action(&Action::RollbackRefresh, ActionResult::Started { refresh_id: "r-1".into() }, Duration::from_secs(10));
    assert_eq!(rolling_back.stop("SIGTERM", Duration::from_secs(11)), None, "our rollback goes on");
    assert!(matches!(rolling_back.reason, Some(RollbackReason::Unhealthy { .. })), "the reason stays the real one");

    let mut verifying = rollout();
    let done = [("i-new1", "ami-new", Healthy), ("i-new2", "ami-new", Healthy)];
    assert_eq!(verifying.step(&obs(15, Some("Successful"), &done)), Decision::Wait(Duration::ZERO));
    assert_eq!(verifying.stop("SIGTERM", Duration::from_secs(16)), None, "AWS already completed the change");
    assert_eq!(verifying.step(&obs(16, Some("Successful"), &done)), Decision::Finish(Outcome::Deployed));

    let mut back = Rollout::back_to(params(), rollout().new, rollout().old, RollbackReason::Requested);
    assert_eq!(back.stop("SIGINT", Duration::ZERO), None, "a refresh back is never undone");
}

fn alarm(name: &str, state: &str) -> crate::core::model::Alarm {
    crate::core::model::Alarm { name: name.into(), state: state.into(), reason: Some("Threshold Crossed".into()) }
}

#[test]
fn an_alarm_that_stopped_the_refresh_is_named() {
    // AutoRollback: AWS rolls back; the alarms fetched with that observation say why.
    let mut r = rollout();
    let fleet = [("i-old1", "ami-old", Healthy)];
    let mut o = obs(5, Some("RollbackInProgress"), &fleet);
    o.alarms = Some(vec![alarm("web-5xx", "ALARM"), alarm("web-latency", "OK")]);
    assert_eq!(r.step(&o), Decision::Wait(POLL));
    match &r.reason {
        Some(reason @ RollbackReason::Alarm { alarms, rolled_back_by_aws: true, .. }) => {
            assert_eq!(alarms, &["web-5xx".to_string()]);
            assert!(reason.to_string().contains("alarm web-5xx in ALARM"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Without AutoRollback the refresh just fails: bakeroll goes back with a new refresh, naming the alarm.
    let mut r = rollout();
    let mut o = obs(5, Some("Failed"), &fleet);
    o.alarms = Some(vec![alarm("web-5xx", "ALARM")]);
    assert_eq!(r.step(&o), Decision::Act(Action::StartRollbackRefresh { version: 1 }));
    assert!(matches!(r.reason, Some(RollbackReason::Alarm { rolled_back_by_aws: false, .. })), "{:?}", r.reason);
    // No alarm in ALARM: AWS's own reason, as before.
    let mut r = rollout();
    let mut o = obs(5, Some("RollbackInProgress"), &fleet);
    o.alarms = Some(vec![alarm("web-5xx", "OK")]);
    r.step(&o);
    assert!(matches!(r.reason, Some(RollbackReason::AwsRollback { .. })), "{:?}", r.reason);
    assert!(may_be_an_alarm(&RefreshStatus::Failed) && !may_be_an_alarm(&RefreshStatus::InProgress));
}

#[test]
fn verification_on_versions_is_confirmed_once_by_ec2() {
    let mut r = rollout();
    let done = [("i-new1", "ami-new", Healthy), ("i-new2", "ami-new", Healthy)];
    let mut o = obs(15, Some("Successful"), &done);
    o.images_confirmed = false;
    assert_eq!(r.step(&o), Decision::Wait(Duration::ZERO), "enter verification");
    assert!(!r.wants_instance_images());
    assert_eq!(r.step(&o), Decision::Wait(Duration::ZERO), "clean on versions: ask EC2");
    assert!(r.wants_instance_images());
    o.images_confirmed = true;
    assert_eq!(r.step(&o), Decision::Finish(Outcome::Deployed));
}

#[test]
fn release_images_come_from_each_instances_launch_template_version() {
    use crate::core::model::TemplateRef;
    let r = rollout();
    let lt = |id: &str, v: &str| Some(TemplateRef { id: id.into(), name: "web".into(), version: v.into() });
    let mut group = obs(0, None, &[("a", "", Healthy), ("b", "", Healthy), ("c", "", Healthy), ("d", "", Healthy), ("e", "", Healthy)]).group;
    for (inst, t) in group.instances.iter_mut().zip([lt("lt-1", "1"), lt("lt-1", "2"), lt("lt-1", "7"), lt("lt-other", "2"), None]) {
        inst.launch_template = t;
    }
    let (known, unknown) = r.release_images(&group, "lt-1");
    assert_eq!(known, [("a".to_string(), "ami-old".to_string()), ("b".into(), "ami-new".into())].into());
    assert_eq!(unknown, ["c", "d", "e"], "another version, another template, no template: EC2 must say");
}

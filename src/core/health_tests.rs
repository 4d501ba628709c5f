//! Table tests for the health gate and the fleet check.

use super::*;
use crate::core::model::{GroupInstance, TargetHealth};

const TG1: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/aa";
const TG2: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin/bb";

pub(crate) fn group(ids: &[&str]) -> Group {
    Group {
        name: "shop".into(),
        launch_template: None,
        mixed_instances_policy: false,
        launch_configuration: None,
        min_size: 1,
        max_size: 6,
        desired_capacity: ids.len() as i32,
        target_group_arns: vec![TG1.into(), TG2.into()],
        instances: ids
            .iter()
            .map(|id| GroupInstance { id: id.to_string(), lifecycle_state: "InService".into(), health_status: "Healthy".into() })
            .collect(),
        tags: Default::default(),
    }
}

fn th(id: &str, state: TargetState) -> TargetHealth {
    TargetHealth { target_id: id.into(), port: Some(80), state, reason: None, description: None }
}

fn health(tg1: &[(&str, TargetState)], tg2: &[(&str, TargetState)]) -> HealthByGroup {
    let mut h = HealthByGroup::new();
    h.insert(TG1.into(), tg1.iter().map(|(i, s)| th(i, s.clone())).collect());
    h.insert(TG2.into(), tg2.iter().map(|(i, s)| th(i, s.clone())).collect());
    h
}

fn gate() -> HealthGate {
    HealthGate::new(GateParams { unhealthy_threshold: 2, grace: Duration::from_secs(60) }, ["old".to_string()])
}

use TargetState::*;

#[test]
fn tg_name_from_arn() {
    assert_eq!(tg_name(TG1), "web");
    assert_eq!(tg_name("plain"), "plain");
}

#[test]
fn unhealthy_needs_consecutive_polls() {
    let mut g = gate();
    let grp = group(&["old", "new"]);
    let bad = health(&[("old", Healthy), ("new", Unhealthy)], &[("old", Healthy), ("new", Healthy)]);
    let good = health(&[("old", Healthy), ("new", Healthy)], &[("old", Healthy), ("new", Healthy)]);
    assert_eq!(g.observe(&grp, &bad, Duration::from_secs(1)), None, "one poll is not enough");
    assert_eq!(g.observe(&grp, &good, Duration::from_secs(2)), None, "healthy resets the streak");
    assert_eq!(g.observe(&grp, &bad, Duration::from_secs(3)), None);
    match g.observe(&grp, &bad, Duration::from_secs(4)) {
        Some(HealthFailure::Unhealthy { instance, target_group, polls, .. }) => {
            assert_eq!((instance.as_str(), target_group.as_str(), polls), ("new", TG1, 2));
        }
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

#[test]
fn baseline_instances_are_not_judged() {
    let mut g = gate();
    let grp = group(&["old"]);
    let bad = health(&[("old", Unhealthy)], &[("old", Unhealthy)]);
    for s in 0..5 {
        assert_eq!(g.observe(&grp, &bad, Duration::from_secs(s)), None);
    }
}

#[test]
fn mixed_health_fails_on_the_bad_target_group_only() {
    let mut g = gate();
    let grp = group(&["old", "new"]);
    let mixed = health(&[("new", Healthy)], &[("new", Unhealthy)]);
    g.observe(&grp, &mixed, Duration::from_secs(0));
    let f = g.observe(&grp, &mixed, Duration::from_secs(5)).expect("fails");
    assert!(matches!(f, HealthFailure::Unhealthy { ref target_group, .. } if target_group == TG2), "{f:?}");
    assert!(f.to_string().contains("admin"), "{f}");
}

#[test]
fn initial_past_grace_is_stuck_and_unregistered_is_named() {
    let mut g = gate();
    let grp = group(&["old", "new"]);
    let h = health(&[("new", Initial)], &[]);
    assert_eq!(g.observe(&grp, &h, Duration::from_secs(10)), None);
    assert_eq!(g.observe(&grp, &h, Duration::from_secs(70)), None, "grace counts from first sight");
    match g.observe(&grp, &h, Duration::from_secs(71)) {
        Some(HealthFailure::StuckInitial { waited_secs, .. }) => assert_eq!(waited_secs, 61),
        Some(HealthFailure::NotRegistered { target_group, .. }) => assert_eq!(target_group, TG2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn draining_new_instance_is_ignored() {
    let mut g = gate();
    let grp = group(&["old", "new"]);
    let h = health(&[("new", Draining)], &[("new", Draining)]);
    for s in [0, 100, 200] {
        assert_eq!(g.observe(&grp, &h, Duration::from_secs(s)), None);
    }
}

#[test]
fn fleet_check_names_every_problem() {
    let grp = group(&["a", "b"]);
    let images: BTreeMap<_, _> = [("a".to_string(), "ami-1".to_string()), ("b".into(), "ami-2".into())].into();
    let h = health(&[("a", Healthy), ("b", Healthy)], &[("a", Healthy), ("b", Initial)]);
    let p = fleet_problems(&grp, &images, &h, Some("ami-1"));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("b runs ami-2"));
    assert!(p[1].contains("b is initial in target group admin"));
    let all_good = health(&[("a", Healthy), ("b", Healthy)], &[("a", Healthy), ("b", Healthy)]);
    let images_ok: BTreeMap<_, _> = [("a".to_string(), "ami-1".to_string()), ("b".into(), "ami-1".into())].into();
    assert!(fleet_problems(&grp, &images_ok, &all_good, Some("ami-1")).is_empty());
}

#[test]
fn counts_per_target_group() {
    let grp = group(&["a", "b"]);
    let h = health(&[("a", Healthy), ("b", Healthy)], &[("a", Healthy), ("b", Unhealthy)]);
    let c = counts(&grp, &h);
    assert_eq!(c[0], TgCount { target_group: "web".into(), healthy: 2, total: 2 });
    assert_eq!(c[1], TgCount { target_group: "admin".into(), healthy: 1, total: 2 });
}

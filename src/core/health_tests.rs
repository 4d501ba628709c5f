//! Table tests for the fleet check and the per-target-group counts (the gate's are in `gate_tests.rs`).

use super::*;
use crate::core::model::{GroupInstance, TargetHealth};

pub(crate) const TG1: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/aa";
pub(crate) const TG2: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin/bb";

pub(crate) fn group(ids: &[&str]) -> Group {
    Group {
        name: "shop".into(),
        launch_template: None,
        launch_configuration: None,
        min_size: 1,
        max_size: 6,
        desired_capacity: ids.len() as i32,
        target_group_arns: vec![TG1.into(), TG2.into()],
        instances: ids
            .iter()
            .map(|id| GroupInstance::in_service_healthy(id))
            .collect(),
        tags: Default::default(),
        ..Default::default()
    }
}

pub(crate) fn th(id: &str, state: TargetState) -> TargetHealth {
    TargetHealth { target_id: id.into(), port: Some(80), state, reason: None, description: None }
}

pub(crate) fn health(tg1: &[(&str, TargetState)], tg2: &[(&str, TargetState)]) -> HealthByGroup {
    let mut h = HealthByGroup::new();
    h.insert(TG1.into(), tg1.iter().map(|(i, s)| th(i, s.clone())).collect());
    h.insert(TG2.into(), tg2.iter().map(|(i, s)| th(i, s.clone())).collect());
    h
}

use TargetState::*;

#[test]
fn tg_name_from_arn() {
    assert_eq!(tg_name(TG1), "web");
    assert_eq!(tg_name("plain"), "plain");
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

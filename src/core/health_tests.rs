//! Table tests for the fleet check and the per-target-group counts (the gate's are in `gate_tests.rs`).

use super::*;
use crate::core::model::{GroupInstance, LeftAlone, TargetHealth};

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

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn instances_left_alone_by_the_preferences_are_reported_not_verified_and_only_then_not_a_problem() {
    let mut grp = group(&["a", "b", "c"]);
    grp.instances[1].protected_from_scale_in = true;
    grp.instances[2].lifecycle_state = "Standby".into();
    grp.desired_capacity = 2;
    let images: BTreeMap<_, _> = [("a", "ami-new"), ("b", "ami-old"), ("c", "ami-old")].iter().map(|(i, m)| (i.to_string(), m.to_string())).collect();
    let h = health(&[("a", Healthy), ("b", Healthy)], &[("a", Healthy), ("b", Healthy)]);
    let new = ids(&["ami-new"]);
    // Both ignored: verified, with the two listed and why.
    let v = verify(&grp, &images, &h, Some(&new), LeftAlone { standby: true, protected: true });
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let left: Vec<(&str, &str)> = v.left_behind.iter().map(|l| (l.id.as_str(), l.because.as_str())).collect();
    assert_eq!(left, [("b", PROTECTED_IGNORED), ("c", STANDBY_IGNORED)]);
    // Not asked for: each is a problem (a Standby instance returns to service on its old image).
    let v = verify(&grp, &images, &h, Some(&new), LeftAlone::default());
    assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
    assert!(v.problems[1].contains("c") && v.problems[1].contains("Standby"), "{:?}", v.problems);
    assert!(v.left_behind.is_empty());
    // A protected instance left alone is still judged on its health.
    let sick = health(&[("a", Healthy), ("b", Unhealthy)], &[("a", Healthy), ("b", Healthy)]);
    let v = verify(&grp, &images, &sick, Some(&new), LeftAlone { standby: true, protected: true });
    assert!(v.problems.iter().any(|p| p.contains("b is unhealthy")), "{:?}", v.problems);
}

#[test]
fn a_warm_pool_on_the_old_image_is_not_verified_and_an_unread_pool_is_not_passed() {
    let mut grp = group(&["a"]);
    let warm = |id: &str| GroupInstance { lifecycle_state: "Warmed:Stopped".into(), ..GroupInstance::in_service_healthy(id) };
    grp.warm_pool = Some(crate::core::model::WarmPool { instances: Some(vec![warm("w1"), warm("w2")]), ..Default::default() });
    let images: BTreeMap<_, _> = [("a", "ami-new"), ("w1", "ami-new"), ("w2", "ami-old")].iter().map(|(i, m)| (i.to_string(), m.to_string())).collect();
    let h = health(&[("a", Healthy)], &[("a", Healthy)]);
    let p = fleet_problems(&grp, &images, &h, Some("ami-new"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("w2") && p[0].contains("warm pool") && p[0].contains("ami-old"), "{p:?}");
    // Health alone (preflight) does not look at the pool; an unread pool never passes a verification.
    assert!(fleet_problems(&grp, &images, &h, None).is_empty());
    grp.warm_pool.as_mut().unwrap().instances = None;
    assert!(fleet_problems(&grp, &images, &h, Some("ami-new"))[0].contains("not read"));
    // A release launching two images (an override template that kept its own) accepts either.
    grp.warm_pool = None;
    let two = ids(&["ami-new", "ami-other"]);
    let images: BTreeMap<_, _> = [("a".to_string(), "ami-other".to_string())].into();
    assert!(verify(&grp, &images, &h, Some(&two), LeftAlone::default()).problems.is_empty());
}

#[test]
fn an_instance_on_several_ports_is_judged_by_its_worst_entry_and_counted_healthy_by_any() {
    // Entries by target group and instance, as one index per poll (no scan of the answer per instance).
    let mut h = health(&[("a", Healthy), ("b", Healthy), ("a", Unhealthy), ("a", Initial)], &[("b", Draining)]);
    let port = |t: &mut TargetHealth, p| t.port = Some(p);
    h.get_mut(TG1).unwrap().iter_mut().zip([80, 80, 8080, 9090]).for_each(|(t, p)| port(t, p));
    let index = by_instance(&h);
    let ports = |arn, id| index.entries(arn, id).iter().map(|t| t.port.unwrap()).collect::<Vec<_>>();
    assert_eq!(ports(TG1, "a"), vec![80, 8080, 9090], "every entry, in the answer's order");
    assert_eq!(index.worst(TG1, "a").map(|t| (t.port, &t.state)), Some((Some(8080), &Unhealthy)));
    assert_eq!(index.worst(TG1, "b").map(|t| &t.state), Some(&Healthy));
    assert_eq!(index.worst(TG2, "b").map(|t| &t.state), Some(&Draining));
    assert!(index.worst(TG2, "a").is_none(), "not registered there");
    assert!(index.entries("arn:…:targetgroup/unread/cc", "a").is_empty(), "a target group not read");
    // `counts` takes an instance as healthy when any of its entries is; `fleet_problems` names the worst.
    let c = counts(&group(&["a", "b"]), &h);
    assert_eq!((c[0].healthy, c[1].healthy), (2, 0));
    let images: BTreeMap<_, _> = [("a".to_string(), "ami-1".to_string()), ("b".into(), "ami-1".into())].into();
    let p = fleet_problems(&group(&["a", "b"]), &images, &h, Some("ami-1"));
    assert_eq!(p, vec!["a is unhealthy in target group web", "a is not registered in target group admin", "b is draining in target group admin"]);
}

#[test]
fn the_index_holds_each_entry_once_at_any_fleet_size() {
    // 2 000 instances, each in both target groups: the index has every entry exactly once, under its own id.
    let ids: Vec<String> = (0..2000).map(|i| format!("i-{i:05}")).collect();
    let states: Vec<(&str, TargetState)> = ids.iter().map(|id| (id.as_str(), Healthy)).collect();
    let h = health(&states, &states);
    let index = by_instance(&h);
    for id in &ids {
        for arn in [TG1, TG2] {
            let e = index.entries(arn, id);
            assert_eq!((e.len(), e[0].target_id.as_str()), (1, id.as_str()));
        }
    }
}

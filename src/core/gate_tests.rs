//! Table tests for the health gate: each case is a list of polls (what the group and its target
//! groups showed) and the poll, if any, whose verdict convicts the release.

use super::*;
use crate::core::model::{GroupInstance, TargetHealth};

const WEB: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/aa";
const ADMIN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin/bb";

/// One instance as a poll saw it: id, lifecycle state, and its state in web and admin (None: not registered).
type Row = (&'static str, &'static str, Option<TargetState>, Option<TargetState>);

fn poll(rows: &[Row]) -> (Group, HealthByGroup) {
    let group = Group {
        name: "shop".into(),
        launch_template: None,
        launch_configuration: None,
        min_size: 1,
        max_size: 6,
        desired_capacity: 2,
        target_group_arns: vec![WEB.into(), ADMIN.into()],
        instances: rows
            .iter()
            .map(|(id, life, ..)| GroupInstance { lifecycle_state: life.to_string(), ..GroupInstance::in_service_healthy(id) })
            .collect(),
        tags: Default::default(),
        ..Default::default()
    };
    let mut health = HealthByGroup::new();
    for (arn, pick) in [(WEB, 0), (ADMIN, 1)] {
        let targets = rows
            .iter()
            .filter_map(|(id, _, web, admin)| {
                let state = if pick == 0 { web.clone() } else { admin.clone() };
                let reason = (state == Some(Unhealthy)).then(|| "Target.ResponseCodeMismatch".to_string());
                state.map(|state| TargetHealth { target_id: id.to_string(), port: Some(80), state, reason, description: None })
            })
            .collect();
        health.insert(arn.to_string(), targets);
    }
    (group, health)
}

fn gate(threshold: u32) -> HealthGate {
    HealthGate::new(GateParams { unhealthy_threshold: threshold, grace: Duration::from_secs(60) }, ["old".to_string()])
}

/// Feeds polls 10 s apart (t = 10, 20, ...); returns the index of the convicting poll and its verdict.
fn run(g: &mut HealthGate, polls: &[Vec<Row>]) -> Option<(usize, HealthFailure)> {
    for (n, rows) in polls.iter().enumerate() {
        let (group, health) = poll(rows);
        if let Some(f) = g.observe(&group, &health, Duration::from_secs(10 * (n as u64 + 1))) {
            return Some((n, f));
        }
    }
    None
}

use TargetState::*;
const IN: &str = "InService";
const H: Option<TargetState> = Some(Healthy);
const U: Option<TargetState> = Some(Unhealthy);
const I: Option<TargetState> = Some(Initial);
const D: Option<TargetState> = Some(Draining);
const OLD: Row = ("old", IN, H, H);

fn kinds(f: &HealthFailure) -> Vec<(EvidenceKind, String)> {
    match f {
        HealthFailure::Unhealthy { evidence, .. } => evidence.iter().map(|e| (e.kind, e.instance.clone())).collect(),
        other => panic!("expected an unhealthy verdict, got {other:?}"),
    }
}

#[test]
fn evidence_cases_convict_at_the_expected_poll() {
    use EvidenceKind::*;
    let cases: Vec<(&str, u32, Vec<Vec<Row>>, Option<(usize, Vec<(EvidenceKind, &str)>)>)> = vec![
        (
            "seen unhealthy once, replaced before the second poll",
            2,
            vec![vec![OLD, ("a", IN, U, H)], vec![OLD, ("a", "Terminating", D, D), ("b", "Pending", None, None)]],
            Some((1, vec![(Unhealthy, "a"), (Replaced, "a")])),
        ),
        (
            "gone from the listing altogether counts the same",
            2,
            vec![vec![OLD, ("a", IN, U, U)], vec![OLD, ("b", "Pending", None, None)]],
            Some((1, vec![(Unhealthy, "a"), (Replaced, "a")])),
        ),
        ("two new instances unhealthy on one poll", 2, vec![vec![OLD, ("a", IN, U, H), ("b", IN, H, U)]], Some((0, vec![(Unhealthy, "a"), (Unhealthy, "b")]))),
        (
            "flapping: unhealthy, healthy, unhealthy",
            2,
            vec![vec![OLD, ("a", IN, U, H)], vec![OLD, ("a", IN, H, H)], vec![OLD, ("a", IN, U, H)]],
            Some((2, vec![(Unhealthy, "a"), (Unhealthy, "a")])),
        ),
        (
            "mixed batch: one bad instance among healthy ones, replacement bad too",
            3,
            vec![
                vec![OLD, ("a", IN, H, H), ("b", IN, U, H)],
                vec![OLD, ("a", IN, H, H), ("b", "Terminating", D, D), ("c", IN, I, I)],
                vec![OLD, ("a", IN, H, H), ("c", IN, U, H)],
            ],
            Some((2, vec![(Unhealthy, "b"), (Replaced, "b"), (Unhealthy, "c")])),
        ),
        (
            "recovered before leaving (scale-in of a healthy instance) is no failed replacement",
            2,
            vec![vec![OLD, ("a", IN, U, H)], vec![OLD, ("a", IN, H, H)], vec![OLD, ("a", "Terminating", D, D)]],
            None,
        ),
        ("a healthy new instance that leaves is no evidence", 2, vec![vec![OLD, ("a", IN, H, H)], vec![OLD]], None),
        (
            "abandoned by its launch hook, twice",
            2,
            vec![
                vec![OLD, ("a", "Pending:Wait", None, None)],
                vec![OLD, ("a", "Terminating", None, None), ("b", "Pending:Wait", None, None)],
                vec![OLD, ("c", "Pending", None, None)],
            ],
            Some((2, vec![(Abandoned, "a"), (Abandoned, "b")])),
        ),
        ("a pending instance without a hook that vanishes is no evidence", 1, vec![vec![OLD, ("a", "Pending", None, None)], vec![OLD]], None),
        ("the baseline is never judged", 1, vec![vec![("old", IN, U, U)], vec![("old", IN, U, U)]], None),
        ("draining new targets are not judged", 1, vec![vec![OLD, ("a", IN, D, D)], vec![OLD, ("a", IN, D, D)]], None),
        ("threshold 1: the first unhealthy poll", 1, vec![vec![OLD, ("a", IN, I, I)], vec![OLD, ("a", IN, H, U)]], Some((1, vec![(Unhealthy, "a")]))),
    ];
    for (name, threshold, polls, want) in cases {
        let got = run(&mut gate(threshold), &polls);
        match (got, want) {
            (None, None) => {}
            (Some((n, f)), Some((want_n, want_kinds))) => {
                assert_eq!(n, want_n, "{name}: convicted at poll {n}: {f}");
                let want_kinds: Vec<_> = want_kinds.into_iter().map(|(k, i)| (k, i.to_string())).collect();
                assert_eq!(kinds(&f), want_kinds, "{name}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn initial_inside_the_grace_never_convicts_and_the_grace_starts_in_service() {
    let mut g = gate(1);
    // A slow launch hook: ten minutes in Pending:Wait is not held against the release...
    for s in 1..=60 {
        let (group, health) = poll(&[("a", "Pending:Wait", None, None)]);
        assert_eq!(g.observe(&group, &health, Duration::from_secs(10 * s)), None, "waiting on a hook at {s}0 s");
    }
    // ...the grace starts when it is InService and registered.
    let (group, health) = poll(&[("a", IN, None, None)]);
    assert_eq!(g.observe(&group, &health, Duration::from_secs(610)), None);
    let (group, health) = poll(&[("a", IN, I, I)]);
    assert_eq!(g.observe(&group, &health, Duration::from_secs(640)), None);
    assert_eq!(g.observe(&group, &health, Duration::from_secs(670)), None, "60 s since entering service");
    match g.observe(&group, &health, Duration::from_secs(701)) {
        Some(HealthFailure::StuckInitial { instance, target_group, waited_secs }) => {
            assert_eq!((instance.as_str(), target_group.as_str(), waited_secs), ("a", WEB, 61));
        }
        other => panic!("{other:?}"),
    }
    assert!(g.evidence().is_empty(), "initial is never evidence: {:?}", g.evidence());
}

#[test]
fn unregistered_past_the_grace_is_named() {
    let mut g = gate(2);
    let (group, health) = poll(&[("a", IN, H, None)]);
    assert_eq!(g.observe(&group, &health, Duration::from_secs(10)), None);
    match g.observe(&group, &health, Duration::from_secs(71)) {
        Some(HealthFailure::NotRegistered { target_group, waited_secs, .. }) => assert_eq!((target_group.as_str(), waited_secs), (ADMIN, 61)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_verdict_names_the_evidence_and_how_long_it_took() {
    let mut g = gate(2);
    let (n, f) = run(&mut g, &[vec![("a", IN, H, U)], vec![("a", IN, H, U)]]).expect("convicted");
    assert_eq!(n, 1);
    match &f {
        HealthFailure::Unhealthy { instance, target_group, polls, reason, observations, first_evidence_secs, convicted_secs, .. } => {
            assert_eq!((instance.as_str(), target_group.as_str(), *polls, *observations), ("a", ADMIN, 2, 2));
            assert_eq!(reason.as_deref(), Some("Target.ResponseCodeMismatch"));
            assert_eq!((*first_evidence_secs, *convicted_secs), (10.0, 20.0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.verdict_after_secs(), 10.0);
    let text = f.to_string();
    for part in ["2 observations", "a unhealthy in admin (Target.ResponseCodeMismatch)", "10.0s after the first evidence"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    // No clock reading in the text (only a duration): it is read beside other clocks (CI lines, the report).
    assert!(!text.contains(" at +"), "{text}");
}

#[test]
fn without_target_groups_the_auto_scaling_health_check_is_the_evidence() {
    let mut g = gate(2);
    let mut group = poll(&[("a", IN, None, None)]).0;
    group.target_group_arns.clear();
    group.instances[0].health_status = "Unhealthy".into();
    assert_eq!(g.observe(&group, &HealthByGroup::new(), Duration::from_secs(10)), None);
    match g.observe(&group, &HealthByGroup::new(), Duration::from_secs(20)) {
        Some(f @ HealthFailure::Unhealthy { .. }) => {
            assert_eq!(kinds(&f), vec![(EvidenceKind::AsgUnhealthy, "a".into()), (EvidenceKind::AsgUnhealthy, "a".into())]);
        }
        other => panic!("{other:?}"),
    }
}

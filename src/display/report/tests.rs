//! Report rendering from a hand-made run: what a reader must find in the page.

use std::collections::BTreeMap;

use crate::core::rollout::{Outcome as GroupOutcome, RollbackReason};
use crate::engine::deploy::{DeployReport, GroupReport};
use crate::summary::{ErrorSummary, Outcome, Release, Summary};

use super::*;
use crate::core::rollout::PhaseName;
use crate::events::{FleetInstance, Stage};

fn inst(id: &str, image: &str, lifecycle: &str, state: Option<&str>) -> FleetInstance {
    let health = state.map(|s| BTreeMap::from([("shop-web".to_string(), s.to_string())])).unwrap_or_default();
    FleetInstance { id: id.into(), image: Some(image.into()), lifecycle: lifecycle.into(), health }
}

fn fleet(t: f64, instances: Vec<FleetInstance>) -> Event {
    Event::Fleet { scope: "shop-web".into(), t, instances }
}

fn failing_run() -> ReportInput {
    let old = |id: &str| inst(id, "ami-old", "InService", Some("healthy"));
    let events = vec![
        (1_000, Event::Phase { scope: "shop-web".into(), phase: Stage::Preflight, detail: "checking".into() }),
        (2_000, Event::Phase { scope: "shop-web".into(), phase: Stage::Refresh, detail: "starting instance refresh to version 2".into() }),
        (3_000, fleet(1.0, vec![old("i-old1"), old("i-old2"), inst("i-new1", "ami-new", "Pending", None)])),
        (4_000, Event::Progress { scope: "shop-web".into(), phase: PhaseName::Refreshing, status: "refreshing InProgress".into(), percent: Some(50), counts: vec![], waiting_on_hook: 0 }),
        (5_500, Event::Progress { scope: "shop-web".into(), phase: PhaseName::RollingBack, status: "rolling-back RollbackInProgress".into(), percent: Some(100), counts: vec![], waiting_on_hook: 0 }),
        (4_000, fleet(2.0, vec![old("i-old1"), old("i-old2"), inst("i-new1", "ami-new", "InService", Some("unhealthy"))])),
        (5_000, Event::Phase { scope: "shop-web".into(), phase: Stage::Rollback, detail: "rolling back: new instance i-new1 <unhealthy>".into() }),
        (6_000, fleet(4.0, vec![old("i-old1"), old("i-old2")])),
    ];
    let group = GroupReport {
        group: "shop-web".into(),
        old_image: "ami-old".into(),
        new_image: "ami-new".into(),
        old_version: 1,
        new_version: Some(2),
        outcome: Some(GroupOutcome::RolledBack { reason: RollbackReason::Requested }),
        ..Default::default()
    };
    let summary = Summary {
        outcome: Some(Outcome::RolledBack),
        exit_code: 3,
        env: Some("prod".into()),
        release: Some(Release { ami: "ami-new".into(), commit: Some("abc".into()) }),
        deploy: Some(DeployReport { groups: vec![group], ..Default::default() }),
        error: Some(ErrorSummary {
            message: "deploy failed and was rolled back".into(),
            causes: vec![],
            state: Some("shop-web back on version 1".into()),
            next: Some("fix it".into()),
        }),
        ..Summary::new("deploy")
    };
    ReportInput { events, checkpoints: BTreeMap::from([("shop-web".to_string(), vec![50, 100])]), summary, started_ms: Some(500) }
}

#[test]
fn shows_every_instance_the_checkpoint_and_the_rollback_with_its_reason() {
    let html = render(&failing_run());
    for id in ["i-old1", "i-old2", "i-new1"] {
        assert!(html.contains(&format!("data-instance=\"{id}\"")), "{id} missing");
    }
    assert!(html.contains("data-instance=\"i-new1\" data-release=\"new\""));
    assert!(html.contains("id=\"rollback-marker-shop-web\""));
    assert!(html.contains("checkpoint 50%"));
    assert_eq!(html.matches("checkpoint-marker").count(), 1, "the rollback's 100% is no checkpoint");
    assert!(!html.contains("checkpoint 100%"), "100 is the end, not a pause");
    // The reason is escaped, and the new instance's bar turns red before it disappears.
    assert!(html.contains("i-new1 &lt;unhealthy&gt;"));
    assert!(!html.contains("<unhealthy>"));
    assert!(html.contains("<rect class=\"unhealthy\""));
    assert!(html.contains("gone from the group"));
    assert!(html.contains("class=\"badge rolled-back\""));
    assert!(html.contains("State: shop-web back on version 1"));
    // Self-contained: nothing is fetched.
    assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("<script"));
}

#[test]
fn a_run_without_a_refresh_says_so() {
    let input = ReportInput { summary: Summary { outcome: Some(Outcome::Baked), ..Summary::new("bake") }, ..Default::default() };
    let html = render(&input);
    assert!(html.contains("timeline-empty"));
    assert!(html.contains("class=\"badge baked\""));
}

#[test]
fn names_the_evidence_that_convicted_the_release_and_instances_waiting_on_a_hook() {
    use crate::core::health::{Evidence, EvidenceKind, HealthFailure};
    let tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-web/aa";
    let ev = |kind, instance: &str, at_secs| Evidence {
        kind,
        instance: instance.into(),
        target_group: tg.into(),
        reason: Some("Target.ResponseCodeMismatch".into()),
        at_secs,
        metric: None,
    };
    let failure = HealthFailure::Unhealthy {
        instance: "i-new1".into(),
        target_group: tg.into(),
        polls: 1,
        reason: Some("Target.ResponseCodeMismatch".into()),
        observations: 2,
        evidence: vec![ev(EvidenceKind::Unhealthy, "i-new1", 2.0), ev(EvidenceKind::Replaced, "i-new1", 4.5)],
        first_evidence_secs: 2.0,
        convicted_secs: 4.5,
    };
    let mut input = failing_run();
    input.events.push((3_500, fleet(1.5, vec![inst("i-new2", "ami-new", "Pending:Wait", None)])));
    let groups = &mut input.summary.deploy.as_mut().unwrap().groups;
    groups[0].outcome = Some(GroupOutcome::RolledBack { reason: RollbackReason::Unhealthy { failure } });
    let html = render(&input);
    let why = html.split("id=\"evidence-shop-web\"").nth(1).expect("an evidence table");
    // On the report's clock: the watch began at 2 000 ms (the first sample, at 3 000 ms, says 1.0 s into
    // it), the run at 500 ms, so the gate's 2.0 s and 4.5 s are +3.5 s and +6.0 s.
    for part in ["+3.5s", "+6.0s", "i-new1", "shop-web", "unhealthy", "replaced", "Target.ResponseCodeMismatch"] {
        assert!(why.contains(part), "{part} missing from the evidence table");
    }
    assert!(html.contains("2 observations against the release; the rollback was sent 2.5s after the first."), "{html}");
    assert!(html.contains("waiting on a launch lifecycle hook"), "the legend names instances waiting on a hook");
}

#[test]
fn instances_left_behind_and_the_warm_pool_are_shown_per_group() {
    use crate::core::model::{LeftBehind, PoolInstance};
    let mut input = failing_run();
    let g = &mut input.summary.deploy.as_mut().unwrap().groups[0];
    g.left_behind = vec![LeftBehind { id: "i-standby".into(), image: "ami-old".into(), because: "standby_instances = \"Ignore\"".into() }];
    g.warm_pool = Some(vec![PoolInstance { id: "i-warm".into(), image: Some("ami-new".into()), lifecycle: "Warmed:Stopped".into() }]);
    let html = render(&input);
    let left = html.split("id=\"left-behind-shop-web\"").nth(1).expect("a left-behind table");
    assert!(left.contains("i-standby") && left.contains("ami-old") && left.contains("standby_instances = &quot;Ignore&quot;"), "{left}");
    let pool = html.split("id=\"warm-pool-shop-web\"").nth(1).expect("a warm pool table");
    assert!(pool.contains("i-warm") && pool.contains("Warmed:Stopped") && pool.contains("ami-new"));
    assert!(!render(&failing_run()).contains("left-behind-"), "nothing shown when nothing was left");
}

#[test]
fn every_time_in_the_page_is_on_one_clock_and_the_header_says_which() {
    let html = render(&failing_run());
    assert!(html.contains("<dt>times</dt><dd>+seconds since bakeroll started (1970-01-01T00:00:00Z)</dd>"), "{html}");
    // The log, the rollback reason and the samples all count from 500 ms: the refresh phase at 2 000 ms
    // is +1.5 s, the rollback decision at 5 000 ms +4.5 s.
    let log = html.split("id=\"log\"").nth(1).unwrap();
    assert!(log.contains("<td>+1.5s</td><td>shop-web</td><td class=\"phase\">refresh: "), "{log}");
    assert!(html.contains("Rollback of shop-web at +4.5s:"), "{html}");
    assert!(html.contains("<title>+2.5s i-old1"), "a sample's time is on the same clock: {html}");
}

//! Report rendering from a hand-made run: what a reader must find in the page.

use std::collections::BTreeMap;

use crate::core::release::GroupState;
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

/// A group's watched refresh from `from` to `to` (Unix ms): the refresh phase, then a poll every 500 ms
/// (`t` counting from the refresh) of its old instance and its new one, `health` in the target group.
fn rollout(events: &mut Vec<(u64, Event)>, group: &str, from: u64, to: u64, health: &str) {
    events.push((from, Event::Phase { scope: group.into(), phase: Stage::Refresh, detail: format!("starting instance refresh of {group}") }));
    for ms in (from + 100..=to).step_by(500) {
        let instances = vec![inst(&format!("i-{group}-old"), "ami-old", "InService", Some("healthy")), inst(&format!("i-{group}-new"), "ami-new", "InService", Some(health))];
        events.push((ms, Event::Fleet { scope: group.into(), t: (ms - from) as f64 / 1000.0, instances }));
    }
}

/// A verified group moved back from `from`: the undo phase, then a watch of its own (`t` from zero again).
fn undo(events: &mut Vec<(u64, Event)>, group: &str, from: u64, to: u64) {
    events.push((from, Event::Phase { scope: group.into(), phase: Stage::Undo, detail: format!("moving {group} back to version 1") }));
    for ms in (from + 100..=to).step_by(500) {
        let instances = vec![inst(&format!("i-{group}-back"), "ami-old", "InService", Some("healthy"))];
        events.push((ms, Event::Fleet { scope: group.into(), t: (ms - from) as f64 / 1000.0, instances }));
    }
}

/// A release of `waves` that began at 500 ms, its events sorted by time; `groups`: each group's state and
/// outcome at the end.
fn release(waves: &[&[&str]], mut events: Vec<(u64, Event)>, groups: Vec<(&str, GroupState, Option<GroupOutcome>)>, cause: Option<&str>) -> ReportInput {
    use crate::core::release::{Cause, GroupState as S, Verdict};
    let waves: Vec<Vec<String>> = waves.iter().map(|w| w.iter().map(|g| g.to_string()).collect()).collect();
    events.push((600, Event::Release { scope: "prod".into(), waves: waves.clone() }));
    events.sort_by_key(|(t, _)| *t);
    let wave_of = |g: &str| waves.iter().position(|w| w.iter().any(|x| x == g)).unwrap() + 1;
    let groups: Vec<GroupReport> = groups
        .into_iter()
        .map(|(g, state, outcome)| GroupReport {
            group: g.into(),
            wave: wave_of(g),
            state: Some(state),
            old_image: "ami-old".into(),
            new_image: "ami-new".into(),
            old_version: 1,
            new_version: (state != S::Waiting).then_some(2),
            outcome,
            ..Default::default()
        })
        .collect();
    let verdict = if cause.is_some() { Verdict::Undone } else { Verdict::Done };
    let deploy = DeployReport {
        env: "prod".into(),
        waves,
        verdict: Some(verdict),
        cause: cause.map(|g| Cause::Group { group: g.into() }),
        groups,
        ..Default::default()
    };
    let outcome = if cause.is_some() { Outcome::RolledBack } else { Outcome::Deployed };
    let summary = Summary { outcome: Some(outcome), env: Some("prod".into()), deploy: Some(deploy), ..Summary::new("deploy") };
    ReportInput { events, checkpoints: BTreeMap::new(), summary, started_ms: Some(500) }
}

/// Where `needle` first is in `html`.
fn at(html: &str, needle: &str) -> usize {
    html.find(needle).unwrap_or_else(|| panic!("{needle} is not in the page"))
}

#[test]
fn a_release_of_two_waves_reads_wave_by_wave_in_the_waves_order() {
    // Wave 2 lists shop-web before shop-api: the picture follows the release, not the alphabet.
    let mut events = Vec::new();
    rollout(&mut events, "shop-canary", 1_000, 3_000, "healthy");
    rollout(&mut events, "shop-web", 4_000, 6_000, "healthy");
    rollout(&mut events, "shop-api", 4_000, 5_500, "healthy");
    let verified = || Some(GroupOutcome::Deployed);
    let groups = vec![("shop-canary", GroupState::Verified, verified()), ("shop-web", GroupState::Verified, verified()), ("shop-api", GroupState::Verified, verified())];
    let html = render(&release(&[&["shop-canary"], &["shop-web", "shop-api"]], events, groups, None));
    let order = ["id=\"wave-1\"", "data-group=\"shop-canary\" data-wave=\"1\"", "id=\"wave-2\"", "data-group=\"shop-web\" data-wave=\"2\"", "data-group=\"shop-api\" data-wave=\"2\""];
    let positions: Vec<usize> = order.iter().map(|n| at(&html, n)).collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{order:?} out of order at {positions:?}");
    assert!(html.contains(">group shop-api (wave 2)</text>"), "each group is labelled with its wave");
    // Wave 1 is seen to finish before wave 2 starts: the canary's watch began at its refresh (+0.5 s) and
    // ended at its last poll (+2.1 s); wave 2's began at +3.5 s.
    assert!(html.contains("wave 1 of 2 · verified · rolled out +0.5s → +2.1s</text>"), "{html}");
    assert!(html.contains("wave 2 of 2 · verified · rolled out +3.5s → +5.1s</text>"), "{html}");
    assert!(!html.contains("data-stopped"), "a release that finished stopped nowhere");
    assert!(html.contains("<dt>group shop-web</dt><dd>wave 2: verified; ami-old → ami-new, launch-template version 1 → 2, deployed</dd>"), "{html}");
}

#[test]
fn a_failure_in_wave_2_shows_where_the_release_stopped_and_what_never_began() {
    let mut events = Vec::new();
    rollout(&mut events, "shop-canary", 1_000, 3_000, "healthy");
    rollout(&mut events, "shop-web", 4_000, 7_000, "healthy");
    rollout(&mut events, "shop-api", 4_000, 7_000, "unhealthy");
    events.push((5_000, Event::Phase { scope: "shop-api".into(), phase: Stage::Rollback, detail: "rolling back: i-shop-api-new unhealthy".into() }));
    // Then the canary, verified in wave 1, is moved back: a later watch, which is no part of its wave's span.
    undo(&mut events, "shop-canary", 8_000, 9_000);
    let back = |reason| Some(GroupOutcome::RolledBack { reason });
    let sibling = || back(RollbackReason::Sibling { group: "shop-api".into() });
    let groups = vec![
        ("shop-canary", GroupState::Restored, sibling()),
        ("shop-web", GroupState::Restored, sibling()),
        ("shop-api", GroupState::Restored, back(RollbackReason::Requested)),
        ("shop-batch", GroupState::Waiting, None),
    ];
    let input = release(&[&["shop-canary"], &["shop-web", "shop-api"], &["shop-batch"]], events, groups, Some("shop-api"));
    let html = render(&input);
    let wave = |n: usize| html.split(&format!("id=\"wave-{n}\"")).nth(1).unwrap().split("</g>").next().unwrap().to_string();
    assert!(wave(1).contains("wave 1 of 3 · restored · rolled out +0.5s → +2.1s<"), "{}", wave(1));
    assert!(!wave(1).contains("data-stopped") && !wave(1).contains("stopped here"));
    assert!(wave(2).starts_with(" data-wave=\"2\" data-stopped=\"true\""), "{}", wave(2));
    assert!(wave(2).contains("wave 2 of 3 · restored · rolled out +3.5s → +6.1s · the release stopped here: shop-api was rolled back<"), "{}", wave(2));
    assert!(wave(3).contains("wave 3 of 3 · waiting (its wave never came)<"), "{}", wave(3));
    // The group whose wave never came has a row of its own, under its wave, after the ones that ran.
    assert!(html.contains("<g class=\"idle\" data-group=\"shop-batch\" data-wave=\"3\">"), "{html}");
    assert!(html.contains("group shop-batch (wave 3) — waiting (its wave never came)</text>"));
    assert!(at(&html, "id=\"wave-3\"") > at(&html, "data-group=\"shop-api\" data-wave=\"2\""));
    assert!(at(&html, "data-group=\"shop-batch\"") > at(&html, "id=\"wave-3\""));
    // Both the conviction in wave 2 and the canary's move back are marked where they happened.
    assert!(html.contains("id=\"rollback-marker-shop-api\"") && html.contains("id=\"rollback-marker-shop-canary\""));
    assert!(at(&html, "id=\"rollback-reason-shop-api\"") < at(&html, "id=\"rollback-reason-shop-canary\""), "the conviction's reason comes first");
    assert!(html.contains("<dt>group shop-batch</dt><dd>wave 3: waiting (its wave never came); ami-old → ami-new, launch-template version 1</dd>"), "{html}");
}

#[test]
fn a_release_of_one_wave_looks_as_it_always_did() {
    let before = failing_run();
    let mut announced = failing_run();
    announced.events.insert(0, (600, Event::Release { scope: "prod".into(), waves: vec![vec!["shop-web".into()]] }));
    announced.summary.deploy.as_mut().unwrap().waves = vec![vec!["shop-web".into()]];
    let picture = timeline::render(&announced);
    assert_eq!(picture, timeline::render(&before), "one wave adds nothing to the picture");
    assert!(picture.contains(">group shop-web</text>"));
    let html = render(&announced);
    assert!(!html.contains("data-wave") && !html.contains("wave 1") && !html.contains("class=\"wave\""), "{html}");
    // Two groups in one wave: still no headings.
    let mut events = Vec::new();
    rollout(&mut events, "shop-web", 1_000, 2_000, "healthy");
    rollout(&mut events, "shop-api", 1_000, 2_000, "healthy");
    let groups = vec![("shop-web", GroupState::Verified, Some(GroupOutcome::Deployed)), ("shop-api", GroupState::Verified, Some(GroupOutcome::Deployed))];
    let html = render(&release(&[&["shop-web", "shop-api"]], events, groups, None));
    assert!(!html.contains("data-wave") && !html.contains("wave 1"), "{html}");
    assert!(at(&html, "data-group=\"shop-api\"") < at(&html, "data-group=\"shop-web\""), "lanes keep their order");
}

#[test]
fn a_rollback_reads_in_its_own_waves_with_each_groups_end_from_its_moves() {
    use crate::engine::rollback::GroupResult;
    use crate::summary::Details;
    // A rollback runs the waves in reverse: the tiers first, then the canary. Its summary has no `deploy`;
    // where each group ended is in its moves.
    let mut events = Vec::new();
    rollout(&mut events, "shop-web", 1_000, 2_000, "healthy");
    let mut input = release(&[&["shop-web"], &["shop-canary"]], events, vec![], None);
    input.summary.deploy = None;
    let moved = |g: &str, wave, state| GroupResult {
        group: g.into(),
        undo: None,
        deploy: Some(GroupReport { group: g.into(), wave, state: Some(state), ..Default::default() }),
    };
    let groups = vec![moved("shop-web", 1, GroupState::Verified), moved("shop-canary", 2, GroupState::Unchanged)];
    input.summary.details = Some(Details::Rollback { target: "previous".into(), headline: None, rollback: None, groups: Some(groups) });
    let html = render(&input);
    assert!(at(&html, "id=\"wave-1\"") < at(&html, "data-group=\"shop-web\" data-wave=\"1\""));
    assert!(html.contains("wave 1 of 2 · verified · rolled out"), "{html}");
    assert!(html.contains("group shop-canary (wave 2) — unchanged (it could not start)</text>"), "{html}");
}

//! Table tests of the release plan: each case is a script of what the driver reports and the steps the
//! plan must answer with, ending in the verdict and every group's state.

use super::*;

/// What the driver reports between two `next()` calls.
#[derive(Debug, Clone, Copy)]
enum In {
    Started(&'static str),
    Ended(&'static str, GroupEnd),
    Stop,
}

const OK: GroupEnd = GroupEnd::Verified { undoable: true };
const KEPT: GroupEnd = GroupEnd::Verified { undoable: false };

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn start(names: &[&str]) -> Step {
    Step::Start(groups(names))
}
fn stop(names: &[&str]) -> Step {
    Step::Stop(groups(names))
}
fn undo(names: &[&str]) -> Step {
    Step::Undo(groups(names))
}

/// The three-tier release of the README: a canary, then web and worker together.
fn tiers() -> ReleasePlan {
    ReleasePlan::new(vec![groups(&["canary"]), groups(&["web", "worker"])])
}

/// Runs `script`: before each row's inputs are fed, `next()` must answer the row's steps.
fn run(mut plan: ReleasePlan, script: &[(&[In], &[Step])]) -> ReleasePlan {
    for (n, (inputs, steps)) in script.iter().enumerate() {
        for i in *inputs {
            match *i {
                In::Started(g) => plan.started(g),
                In::Ended(g, end) => plan.ended(g, end),
                In::Stop => plan.stop("SIGTERM"),
            }
        }
        assert_eq!(plan.next(), steps.to_vec(), "row {n} after {inputs:?}: {:?}", plan.states());
    }
    plan
}

fn states(plan: &ReleasePlan) -> Vec<(&'static str, GroupState)> {
    let names = ["canary", "web", "worker"];
    plan.states().into_iter().map(|(g, _, s)| (*names.iter().find(|n| **n == g).expect("known group"), s)).collect()
}

use GroupState::*;

#[test]
fn waves_go_one_after_another_and_a_wave_together() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary")], &[]),
            (&[In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Started("worker")], &[]),
            // One of the wave verified is not enough.
            (&[In::Ended("worker", OK)], &[]),
            (&[In::Ended("web", OK)], &[Step::Finish(Verdict::Done)]),
            // Asking again says the same.
            (&[], &[Step::Finish(Verdict::Done)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Verified), ("web", Verified), ("worker", Verified)]);
    assert_eq!(plan.cause(), None);
    assert_eq!(plan.wave_of("worker"), Some(2));
}

#[test]
fn a_conviction_in_wave_two_stops_its_sibling_then_undoes_wave_two_then_wave_one() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            // The worker's gate convicts it; it rolls itself back. The web tier is still refreshing.
            (&[In::Started("web"), In::Started("worker"), In::Ended("worker", GroupEnd::Restored)], &[stop(&["web"])]),
            // Wave 1 waits until wave 2 has settled.
            (&[], &[]),
            (&[In::Ended("web", GroupEnd::Restored)], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Restored), ("web", Restored), ("worker", Restored)]);
    assert_eq!(plan.cause(), Some(&Cause::Group { group: "worker".into() }));
}

#[test]
fn a_sibling_that_verified_before_the_conviction_is_undone_with_its_wave() {
    run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Started("worker"), In::Ended("web", OK)], &[]),
            (&[In::Ended("worker", GroupEnd::Restored)], &[undo(&["web"])]),
            (&[In::Ended("web", GroupEnd::Restored)], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
}

#[test]
fn a_stopped_sibling_that_verifies_anyway_is_undone_in_its_turn() {
    run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Started("worker"), In::Ended("worker", GroupEnd::Unverified)], &[stop(&["web"])]),
            // Its refresh had already succeeded: the stop could not take it back, so it is undone now.
            (&[In::Ended("web", OK)], &[undo(&["web"])]),
            (&[In::Ended("web", GroupEnd::Restored)], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Stuck)]),
        ],
    );
}

#[test]
fn a_stop_mid_wave_undoes_everything_touched_and_leaves_later_waves_alone() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Stop], &[stop(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Restored), ("web", Waiting), ("worker", Waiting)]);
    assert_eq!(plan.cause(), Some(&Cause::Stopped { signal: "SIGTERM".into() }));
    assert_eq!(plan.touched(), ["canary"]);
}

#[test]
fn a_stop_between_waves_undoes_the_verified_wave() {
    run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK), In::Stop], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
}

#[test]
fn a_group_that_cannot_start_convicts_and_its_started_siblings_go_back() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Ended("worker", GroupEnd::NotStarted)], &[stop(&["web"])]),
            (&[In::Ended("web", GroupEnd::Restored)], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Restored), ("web", Restored), ("worker", Unchanged)]);
}

#[test]
fn nothing_started_is_undone_with_nothing_touched() {
    let plan = run(tiers(), &[(&[In::Stop], &[Step::Finish(Verdict::Undone)])]);
    assert!(plan.touched().is_empty());
}

#[test]
fn a_failed_undo_leaves_the_release_stuck_and_earlier_waves_still_go_back() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", OK)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Started("worker"), In::Ended("web", OK), In::Ended("worker", GroupEnd::Restored)], &[undo(&["web"])]),
            (&[In::Ended("web", GroupEnd::Unverified)], &[undo(&["canary"])]),
            (&[In::Ended("canary", GroupEnd::Restored)], &[Step::Finish(Verdict::Stuck)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Restored), ("web", Unverified), ("worker", Restored)]);
}

#[test]
fn a_group_already_on_the_release_with_no_known_previous_stays() {
    let plan = run(
        tiers(),
        &[
            (&[], &[start(&["canary"])]),
            (&[In::Started("canary"), In::Ended("canary", KEPT)], &[start(&["web", "worker"])]),
            (&[In::Started("web"), In::Started("worker"), In::Ended("web", OK), In::Ended("worker", GroupEnd::Restored)], &[undo(&["web"])]),
            // The canary cannot be moved back: the environment is left half on each, which a human decides.
            (&[In::Ended("web", GroupEnd::Restored)], &[Step::Finish(Verdict::Stuck)]),
        ],
    );
    assert_eq!(states(&plan), [("canary", Verified), ("web", Restored), ("worker", Restored)]);
}

#[test]
fn a_restore_starts_everything_at_once_and_never_stops_or_undoes() {
    let mut plan = ReleasePlan::restore(groups(&["web", "worker"]));
    assert_eq!(plan.next(), vec![start(&["web", "worker"])]);
    plan.started("web");
    plan.started("worker");
    plan.stop("SIGINT");
    plan.ended("web", GroupEnd::Unverified);
    assert_eq!(plan.next(), vec![], "the other rollback goes on");
    plan.ended("worker", GroupEnd::Restored);
    assert_eq!(plan.next(), vec![Step::Finish(Verdict::Stuck)]);
    assert_eq!(plan.cause(), None);

    let mut ok = ReleasePlan::restore(groups(&["web"]));
    assert_eq!(ok.next(), vec![start(&["web"])]);
    ok.ended("web", GroupEnd::Restored);
    assert_eq!(ok.next(), vec![Step::Finish(Verdict::Done)]);
}

#[test]
fn one_wave_of_one_group_is_todays_deploy() {
    let plan = run(
        ReleasePlan::new(vec![groups(&["web"])]),
        &[
            (&[], &[start(&["web"])]),
            (&[In::Started("web"), In::Ended("web", GroupEnd::Restored)], &[Step::Finish(Verdict::Undone)]),
        ],
    );
    assert_eq!(plan.touched(), ["web"]);
}

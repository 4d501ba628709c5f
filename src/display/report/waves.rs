//! The timeline's order in a release of several waves: which groups each wave holds, where each group
//! stood at the end, and which wave the release stopped in, so that the picture reads wave by wave. A run
//! of one wave gets no waves here, and its picture stays as it always was.

use super::ReportInput;
use crate::core::release::{Cause, GroupState, Verdict};
use crate::engine::deploy::GroupReport;
use crate::events::Event;
use crate::summary::Details;

/// One wave of a release of several.
pub(super) struct Wave {
    /// 1-based, as every display counts waves.
    pub number: usize,
    pub groups: Vec<String>,
    /// Why the release stopped in this wave, when it did.
    pub stopped: Option<String>,
}

/// The release's waves in order, when it has several: from its release event (what the engine
/// announced before any group moved), else from the summary.
pub(super) fn of(input: &ReportInput) -> Option<Vec<Wave>> {
    let announced = input.events.iter().rev().find_map(|(_, e)| match e {
        Event::Release { waves, .. } => Some(waves.clone()),
        _ => None,
    });
    let groups = announced.or_else(|| input.summary.deploy.as_ref().map(|d| d.waves.clone()))?;
    if groups.len() < 2 {
        return None;
    }
    let stopped_in = stopped_in(input, &groups);
    Some(
        groups
            .into_iter()
            .enumerate()
            .map(|(i, groups)| Wave { number: i + 1, groups, stopped: stopped_in.as_ref().filter(|(w, _)| *w == i).map(|(_, why)| why.clone()) })
            .collect(),
    )
}

/// The summary's report of `group`: deploy's and ship's, or the move of a rollback (whose release runs the
/// waves in reverse, and says so in its release event).
fn report<'a>(input: &'a ReportInput, group: &str) -> Option<&'a GroupReport> {
    let deployed = input.summary.deploy.iter().flat_map(|d| &d.groups);
    let moved = match &input.summary.details {
        Some(Details::Rollback { groups: Some(groups), .. }) => groups.iter().filter_map(|g| g.deploy.as_ref()).collect(),
        _ => Vec::new(),
    };
    deployed.chain(moved).find(|g| g.group == group)
}

/// The wave (0-based) a release that ended early stopped in, and why: the convicted group's wave, else
/// (a stop) the latest wave that began.
fn stopped_in(input: &ReportInput, waves: &[Vec<String>]) -> Option<(usize, String)> {
    let deploy = input.summary.deploy.as_ref()?;
    if matches!(deploy.verdict, None | Some(Verdict::Done)) && deploy.cause.is_none() {
        return None;
    }
    let began = |w: &Vec<String>| w.iter().any(|g| report(input, g).and_then(|r| r.state).is_some_and(|s| s != GroupState::Waiting));
    match &deploy.cause {
        Some(Cause::Group { group }) => {
            let what = report(input, group).and_then(|r| r.outcome.as_ref()).map_or("did not deploy", |o| match o.name() {
                "rolled-back" => "was rolled back",
                "failed" => "failed",
                _ => "did not deploy",
            });
            let wave = waves.iter().position(|w| w.contains(group))?;
            Some((wave, format!("the release stopped here: {group} {what}")))
        }
        Some(Cause::Stopped { signal }) => Some((waves.iter().rposition(began)?, format!("the release stopped here: {signal} received"))),
        None => Some((waves.iter().rposition(began)?, "the release stopped here".to_string())),
    }
}

/// Where `group` stood at the end, as a reader should read it (None: the summary does not say).
pub(super) fn state_text(input: &ReportInput, group: &str) -> Option<String> {
    let r = report(input, group)?;
    let state = r.state?;
    Some(match state {
        GroupState::Waiting => "waiting (its wave never came)".to_string(),
        GroupState::Unchanged => "unchanged (it could not start)".to_string(),
        GroupState::Verified if r.already_deployed => "verified (already on the release)".to_string(),
        s => s.as_str().to_string(),
    })
}

/// Where a wave's groups stood at the end: one state when they agree, else each group's.
pub(super) fn wave_state(input: &ReportInput, wave: &Wave) -> String {
    let states: Vec<(String, String)> = wave.groups.iter().filter_map(|g| state_text(input, g).map(|s| (g.clone(), s))).collect();
    match states.first() {
        None => String::new(),
        Some((_, first)) if states.iter().all(|(_, s)| s == first) => first.clone(),
        _ => states.iter().map(|(g, s)| format!("{g} {s}")).collect::<Vec<_>>().join(", "),
    }
}

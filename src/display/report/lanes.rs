//! What the timeline draws, gathered from the run's events: per watched Auto Scaling group, its instances
//! (each poll's state of each), the polls, its markers (the refresh start, each checkpoint reached, the
//! rollback) and the span of its first watch.

use std::collections::BTreeMap;

use super::ReportInput;
use crate::core::rollout::PhaseName;
use crate::events::{Event, FleetInstance, Stage};

pub(super) struct Sample {
    pub(super) t: u64,
    pub(super) class: &'static str,
    pub(super) text: String,
}

pub(super) struct Row {
    pub(super) id: String,
    pub(super) image: Option<String>,
    pub(super) samples: Vec<Sample>,
    pub(super) gone_at: Option<u64>,
}

pub(super) struct Mark {
    pub(super) t: u64,
    pub(super) kind: &'static str,
    pub(super) label: String,
    pub(super) detail: String,
}

#[derive(Default)]
pub(super) struct Lane {
    pub(super) rows: Vec<Row>,
    pub(super) polls: Vec<u64>,
    pub(super) marks: Vec<Mark>,
    pub(super) first: Option<u64>,
    /// The group's first watch (Unix ms: when it began, its last poll): its rollout up to its verdict,
    /// before any later move back, which is watched afresh (`Fleet`'s `t` starts again from zero).
    pub(super) watch: Option<(u64, u64)>,
    /// The first watch's latest `t`, and whether a later watch has begun.
    watch_t: f64,
    watch_over: bool,
}

fn class_of(i: &FleetInstance) -> &'static str {
    let any = |s: &str| i.health.values().any(|v| v == s);
    if any("unhealthy") {
        "unhealthy"
    } else if i.lifecycle.starts_with("Terminat") {
        "terminating"
    } else if any("draining") {
        "draining"
    } else if i.lifecycle.ends_with("Pending:Wait") {
        "hook"
    } else if i.health.is_empty() {
        "pending"
    } else if i.health.values().all(|v| v == "healthy") {
        "healthy"
    } else {
        "initial"
    }
}

pub(super) fn lanes(input: &ReportInput) -> BTreeMap<String, Lane> {
    let mut lanes: BTreeMap<String, Lane> = BTreeMap::new();
    // Only groups whose refresh was watched get a lane; other scopes (the bake) are in the log.
    for (_, e) in &input.events {
        if let Event::Fleet { scope, .. } = e {
            lanes.entry(scope.clone()).or_default();
        }
    }
    let mut reached: BTreeMap<(String, i32), ()> = BTreeMap::new();
    for (t, e) in &input.events {
        let t = *t;
        match e {
            Event::Fleet { scope, instances, t: watched } => {
                let lane = lanes.get_mut(scope).expect("lane exists");
                lane.polls.push(t);
                match lane.watch {
                    None => lane.watch = Some((t.saturating_sub((watched * 1000.0) as u64), t)),
                    Some((began, _)) if !lane.watch_over && *watched >= lane.watch_t => lane.watch = Some((began, t)),
                    Some(_) => lane.watch_over = true,
                }
                lane.watch_t = *watched;
                for i in instances {
                    let pos = lane.rows.iter().position(|r| r.id == i.id).unwrap_or_else(|| {
                        lane.rows.push(Row { id: i.id.clone(), image: None, samples: vec![], gone_at: None });
                        lane.rows.len() - 1
                    });
                    let row = &mut lane.rows[pos];
                    if i.image.is_some() {
                        row.image = i.image.clone();
                    }
                    let health: Vec<String> = i.health.iter().map(|(tg, s)| format!("{s} in {tg}")).collect();
                    let text = format!("{} ({}): {}", i.id, i.lifecycle, if health.is_empty() { "not registered".into() } else { health.join(", ") });
                    row.samples.push(Sample { t, class: class_of(i), text });
                }
            }
            Event::Phase { scope, phase, detail } if lanes.contains_key(scope) => {
                let lane = lanes.get_mut(scope).expect("lane exists");
                lane.first.get_or_insert(t);
                let kind = match phase {
                    Stage::Refresh => "refresh",
                    Stage::Rollback | Stage::Undo => "rollback",
                    _ => continue,
                };
                // The first rollback decision is the moment that matters; later ones are follow-up actions.
                if kind == "rollback" && lane.marks.iter().any(|m| m.kind == "rollback") {
                    continue;
                }
                let label = if kind == "rollback" { "rollback".to_string() } else { "refresh started".to_string() };
                lane.marks.push(Mark { t, kind, label, detail: detail.clone() });
            }
            // Only the forward refresh pauses at checkpoints; a rollback's percentage is its own progress.
            Event::Progress { scope, phase: PhaseName::Refreshing, percent: Some(p), .. } if lanes.contains_key(scope) => {
                for cp in input.checkpoints.get(scope).into_iter().flatten().filter(|cp| **cp < 100) {
                    if *p >= *cp && reached.insert((scope.clone(), *cp), ()).is_none() {
                        let lane = lanes.get_mut(scope).expect("lane exists");
                        lane.marks.push(Mark { t, kind: "checkpoint", label: format!("checkpoint {cp}%"), detail: format!("refresh reached {p}%") });
                    }
                }
            }
            _ => {}
        }
    }
    for lane in lanes.values_mut() {
        for row in &mut lane.rows {
            let last = row.samples.last().map(|s| s.t).unwrap_or(0);
            // Missing from a later poll: the group no longer lists it (terminated).
            row.gone_at = lane.polls.iter().copied().find(|p| *p > last);
        }
        if lane.first.is_none() {
            lane.first = lane.polls.first().copied();
        }
    }
    lanes
}

//! Health verdicts: the gate that watches the instances a refresh launches in every target group, and
//! the check that a whole fleet is on one image and healthy. Pure: time is passed in as elapsed time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::model::{Group, TargetHealth, TargetState};

/// Target health per target-group ARN, as one poll saw it.
pub type HealthByGroup = BTreeMap<String, Vec<TargetHealth>>;

/// The short name in a target-group ARN (`…:targetgroup/shop-web/0123` → `shop-web`).
pub fn tg_name(arn: &str) -> &str {
    arn.split(":targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    /// Consecutive polls a new target may be `unhealthy` before the deploy is rolled back.
    pub unhealthy_threshold: u32,
    /// Longest a new instance may go without being `healthy` (still `initial`, or not registered).
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HealthFailure {
    Unhealthy { instance: String, target_group: String, polls: u32, reason: Option<String> },
    StuckInitial { instance: String, target_group: String, waited_secs: u64 },
    NotRegistered { instance: String, target_group: String, waited_secs: u64 },
}

impl fmt::Display for HealthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unhealthy { instance, target_group, polls, reason } => {
                write!(f, "new instance {instance} unhealthy in target group {} for {polls} consecutive polls", tg_name(target_group))?;
                if let Some(r) = reason {
                    write!(f, " ({r})")?;
                }
                Ok(())
            }
            Self::StuckInitial { instance, target_group, waited_secs } => write!(
                f,
                "new instance {instance} still `initial` in target group {} after {waited_secs}s (health_grace)",
                tg_name(target_group)
            ),
            Self::NotRegistered { instance, target_group, waited_secs } => write!(
                f,
                "new instance {instance} not registered in target group {} after {waited_secs}s (health_grace)",
                tg_name(target_group)
            ),
        }
    }
}

/// Healthy/total counts of one target group, for progress display and summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TgCount {
    pub target_group: String,
    pub healthy: usize,
    pub total: usize,
}

/// Counts healthy targets among the group's current members, per target group.
pub fn counts(group: &Group, health: &HealthByGroup) -> Vec<TgCount> {
    let members: BTreeSet<&str> = group.instances.iter().filter(|i| i.is_member()).map(|i| i.id.as_str()).collect();
    group
        .target_group_arns
        .iter()
        .map(|arn| {
            let targets = health.get(arn).map(Vec::as_slice).unwrap_or_default();
            let healthy = members
                .iter()
                .filter(|id| targets.iter().any(|t| t.target_id == **id && t.state == TargetState::Healthy))
                .count();
            TgCount { target_group: tg_name(arn).to_string(), healthy, total: members.len() }
        })
        .collect()
}

/// Watches the instances launched after the gate was created (not in `baseline`).
#[derive(Debug, Clone)]
pub struct HealthGate {
    params: GateParams,
    baseline: BTreeSet<String>,
    first_seen: BTreeMap<String, Duration>,
    streaks: BTreeMap<(String, String), u32>,
}

impl HealthGate {
    pub fn new(params: GateParams, baseline: impl IntoIterator<Item = String>) -> Self {
        Self { params, baseline: baseline.into_iter().collect(), first_seen: BTreeMap::new(), streaks: BTreeMap::new() }
    }

    /// Ids of the instances this gate considers new, in the order first seen.
    pub fn new_instances(&self) -> impl Iterator<Item = &String> {
        self.first_seen.keys()
    }

    /// Feeds one poll; returns the first failure found, if any.
    pub fn observe(&mut self, group: &Group, health: &HealthByGroup, now: Duration) -> Option<HealthFailure> {
        let new: Vec<_> =
            group.instances.iter().filter(|i| i.is_member() && !self.baseline.contains(&i.id)).collect();
        let mut stuck = None;
        for inst in new {
            let seen = *self.first_seen.entry(inst.id.clone()).or_insert(now);
            let waited = now.saturating_sub(seen);
            // Without target groups, the Auto Scaling health status (EC2 checks) is the only signal.
            let asg_unhealthy = inst.health_status.eq_ignore_ascii_case("Unhealthy");
            for arn in &group.target_group_arns {
                let target = health.get(arn).and_then(|ts| worst(ts, &inst.id));
                let key = (arn.clone(), inst.id.clone());
                match target.map(|t| &t.state) {
                    Some(TargetState::Unhealthy) => {
                        let streak = self.streaks.entry(key).or_default();
                        *streak += 1;
                        if *streak >= self.params.unhealthy_threshold {
                            return Some(HealthFailure::Unhealthy {
                                instance: inst.id.clone(),
                                target_group: arn.clone(),
                                polls: *streak,
                                reason: target.and_then(|t| t.reason.clone().or_else(|| t.description.clone())),
                            });
                        }
                    }
                    Some(TargetState::Healthy) => {
                        self.streaks.remove(&key);
                    }
                    // Leaving the group: no longer ours to judge.
                    Some(TargetState::Draining | TargetState::Unused) => {}
                    None if waited > self.params.grace && stuck.is_none() => {
                        stuck = Some(HealthFailure::NotRegistered {
                            instance: inst.id.clone(),
                            target_group: arn.clone(),
                            waited_secs: waited.as_secs(),
                        });
                    }
                    Some(_) if waited > self.params.grace && stuck.is_none() => {
                        stuck = Some(HealthFailure::StuckInitial {
                            instance: inst.id.clone(),
                            target_group: arn.clone(),
                            waited_secs: waited.as_secs(),
                        });
                    }
                    _ => {}
                }
            }
            if group.target_group_arns.is_empty() && asg_unhealthy {
                let streak = self.streaks.entry(("asg".into(), inst.id.clone())).or_default();
                *streak += 1;
                if *streak >= self.params.unhealthy_threshold {
                    return Some(HealthFailure::Unhealthy {
                        instance: inst.id.clone(),
                        target_group: "(Auto Scaling health check)".into(),
                        polls: *streak,
                        reason: None,
                    });
                }
            }
        }
        stuck
    }
}

/// The least healthy entry for an instance (it may be registered on several ports).
fn worst<'a>(targets: &'a [TargetHealth], id: &str) -> Option<&'a TargetHealth> {
    let rank = |s: &TargetState| match s {
        TargetState::Unhealthy => 0,
        TargetState::Initial | TargetState::Unavailable | TargetState::Other(_) => 1,
        TargetState::Draining | TargetState::Unused => 2,
        TargetState::Healthy => 3,
    };
    targets.iter().filter(|t| t.target_id == id).min_by_key(|t| rank(&t.state))
}

/// Is the whole fleet in service, at desired capacity, on `image` (when given), and healthy in every
/// target group? Returns the problems found (empty = verified).
pub fn fleet_problems(
    group: &Group,
    images: &BTreeMap<String, String>,
    health: &HealthByGroup,
    image: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let members: Vec<_> = group.instances.iter().filter(|i| i.is_member()).collect();
    let in_service = members.iter().filter(|i| i.in_service()).count();
    if (in_service as i32) < group.desired_capacity {
        problems.push(format!("{in_service} of {} desired instances in service", group.desired_capacity));
    }
    for inst in &members {
        match (images.get(&inst.id), image) {
            (_, None) => {}
            (Some(img), Some(image)) if img == image => {}
            (Some(img), Some(image)) => problems.push(format!("{} runs {img}, not {image}", inst.id)),
            (None, Some(_)) => problems.push(format!("{}: image unknown", inst.id)),
        }
        if inst.health_status.eq_ignore_ascii_case("Unhealthy") {
            problems.push(format!("{} is Unhealthy in the Auto Scaling group", inst.id));
        }
        for arn in &group.target_group_arns {
            let t = health.get(arn).and_then(|ts| worst(ts, &inst.id));
            match t {
                Some(t) if t.state == TargetState::Healthy => {}
                Some(t) => problems.push(format!(
                    "{} is {} in target group {}{}",
                    inst.id,
                    t.state,
                    tg_name(arn),
                    t.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                )),
                None => problems.push(format!("{} is not registered in target group {}", inst.id, tg_name(arn))),
            }
        }
    }
    problems
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;

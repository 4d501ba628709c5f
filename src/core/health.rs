//! Fleet health: the check that a whole fleet is on one image and healthy, and healthy/total counts per
//! target group. Pure. The target-health vocabulary it shares with the gate lives in `super::targets`;
//! both are re-exported here, where callers have always found them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::{Group, GroupInstance, LeftAlone, LeftBehind, TargetState};

pub use super::gate::{Evidence, EvidenceKind, GateParams, HealthFailure, HealthGate};
pub use super::targets::{by_instance, tg_name, HealthByGroup};

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
    let index = by_instance(health);
    group
        .target_group_arns
        .iter()
        .map(|arn| {
            let healthy = members
                .iter()
                .filter(|id| index.entries(arn, id).iter().any(|t| t.state == TargetState::Healthy))
                .count();
            TgCount { target_group: tg_name(arn).to_string(), healthy, total: members.len() }
        })
        .collect()
}

/// Is the whole fleet in service, at desired capacity, on `image` (when given), and healthy in every
/// target group? Returns the problems found (empty = verified).
pub fn fleet_problems(
    group: &Group,
    images: &BTreeMap<String, String>,
    health: &HealthByGroup,
    image: Option<&str>,
) -> Vec<String> {
    let expected: Option<Vec<String>> = image.map(|i| vec![i.to_string()]);
    verify(group, images, health, expected.as_deref(), LeftAlone::default()).problems
}

/// What a verification found: what keeps the fleet from being verified, and the instances the
/// refresh's preferences asked it to leave on another image (never counted as verified, never a failure).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub problems: Vec<String>,
    pub left_behind: Vec<LeftBehind>,
}

/// `fleet_problems`, honest about instances left on another image: with `left_alone.protected`, a
/// scale-in-protected member on another image is left behind (still judged on health); with
/// `left_alone.standby`, so is an instance in Standby. Without those settings either one on another
/// image is a problem (a Standby instance returns to service on its old release). Warm-pool instances
/// must run `image` too: a pool left on the old image brings the old release back at the next scale-out.
///
/// `expected`: the images the release launches (one, unless a mixed instances policy's override
/// templates kept an image of their own); None checks health only.
pub fn verify(
    group: &Group,
    images: &BTreeMap<String, String>,
    health: &HealthByGroup,
    expected: Option<&[String]>,
    left_alone: LeftAlone,
) -> Verdict {
    let mut v = Verdict::default();
    let index = by_instance(health);
    let members: Vec<_> = group.instances.iter().filter(|i| i.is_member()).collect();
    let in_service = members.iter().filter(|i| i.in_service()).count();
    if (in_service as i32) < group.desired_capacity {
        v.problems.push(format!("{in_service} of {} desired instances in service", group.desired_capacity));
    }
    let wanted = expected.map(|e| e.join(" or "));
    let off_image = |inst: &GroupInstance, exempt: Option<&str>, what: &str, v: &mut Verdict| {
        let (Some(expected), Some(image)) = (expected, wanted.as_deref()) else { return };
        match images.get(&inst.id) {
            Some(img) if expected.contains(img) => {}
            Some(img) => match exempt {
                Some(because) => v.left_behind.push(LeftBehind { id: inst.id.clone(), image: img.clone(), because: because.into() }),
                None => v.problems.push(format!("{}{what} runs {img}, not {image}", inst.id)),
            },
            None => v.problems.push(format!("{}{what}: image unknown", inst.id)),
        }
    };
    for inst in &members {
        let exempt = (inst.protected_from_scale_in && left_alone.protected).then_some(PROTECTED_IGNORED);
        off_image(inst, exempt, if inst.protected_from_scale_in { " (scale-in protected)" } else { "" }, &mut v);
        if inst.health_status.eq_ignore_ascii_case("Unhealthy") {
            v.problems.push(format!("{} is Unhealthy in the Auto Scaling group", inst.id));
        }
        for arn in &group.target_group_arns {
            let t = index.worst(arn, &inst.id);
            match t {
                Some(t) if t.state == TargetState::Healthy => {}
                Some(t) => v.problems.push(format!(
                    "{} is {} in target group {}{}",
                    inst.id,
                    t.state,
                    tg_name(arn),
                    t.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                )),
                None => v.problems.push(format!("{} is not registered in target group {}", inst.id, tg_name(arn))),
            }
        }
    }
    for inst in group.instances.iter().filter(|i| i.in_standby()) {
        let exempt = left_alone.standby.then_some(STANDBY_IGNORED);
        off_image(inst, exempt, " (in Standby: it returns to service on that image)", &mut v);
    }
    if let (Some(pool), Some(_)) = (&group.warm_pool, expected) {
        match &pool.instances {
            None => v.problems.push("the warm pool's instances were not read".to_string()),
            Some(warm) => {
                for inst in warm.iter().filter(|i| !i.lifecycle_state.contains("Terminat")) {
                    let what = format!(" (warm pool, {}: the next scale-out would bring it back)", inst.lifecycle_state);
                    off_image(inst, None, &what, &mut v);
                }
            }
        }
    }
    v
}

/// Why an instance was left on its image (`LeftBehind::because`).
pub const STANDBY_IGNORED: &str = "standby_instances = \"Ignore\"";
pub const PROTECTED_IGNORED: &str = "scale_in_protected_instances = \"Ignore\"";

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;

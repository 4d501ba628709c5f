//! Target health as one poll saw it: per target group (`HealthByGroup`), indexed by instance
//! (`ByInstance`), and a target group's short name from its ARN. The vocabulary the health gate
//! (`super::gate`) and the fleet check (`super::health`) share, below both. Pure.

use std::collections::{BTreeMap, HashMap};

use super::model::{TargetHealth, TargetState};

/// Target health per target-group ARN, as one poll saw it.
pub type HealthByGroup = BTreeMap<String, Vec<TargetHealth>>;

/// The short name in a target-group ARN (`…:targetgroup/shop-web/0123` → `shop-web`).
pub fn tg_name(arn: &str) -> &str {
    arn.split(":targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}

/// One poll's target health by target group and instance, built once per look at the fleet: scanning a
/// target group's answer for each instance would make every poll cost instances × targets (a million
/// comparisons per target group at 1 000 instances) instead of growing with the fleet.
pub struct ByInstance<'a>(HashMap<&'a str, HashMap<&'a str, Vec<&'a TargetHealth>>>);

pub fn by_instance(health: &HealthByGroup) -> ByInstance<'_> {
    let mut index: HashMap<&str, HashMap<&str, Vec<&TargetHealth>>> = HashMap::with_capacity(health.len());
    for (arn, targets) in health {
        let tg = index.entry(arn.as_str()).or_default();
        for t in targets {
            tg.entry(t.target_id.as_str()).or_default().push(t);
        }
    }
    ByInstance(index)
}

impl<'a> ByInstance<'a> {
    /// Every entry of instance `id` in target group `arn` (several when it is registered on several
    /// ports), in the order of the answer; empty when it is not registered or the group was not read.
    pub fn entries(&self, arn: &str, id: &str) -> &[&'a TargetHealth] {
        self.0.get(arn).and_then(|tg| tg.get(id)).map_or(&[], Vec::as_slice)
    }

    /// The least healthy entry of an instance in a target group (the first of equally bad ones).
    pub fn worst(&self, arn: &str, id: &str) -> Option<&'a TargetHealth> {
        let rank = |s: &TargetState| match s {
            TargetState::Unhealthy => 0,
            TargetState::Initial | TargetState::Unavailable | TargetState::Other(_) => 1,
            TargetState::Draining | TargetState::Unused => 2,
            TargetState::Healthy => 3,
        };
        self.entries(arn, id).iter().copied().min_by_key(|t| rank(&t.state))
    }
}

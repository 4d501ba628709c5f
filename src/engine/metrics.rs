//! The metric gate's plan for a release: which load balancer each target group of the environment's
//! groups is behind (one DescribeTargetGroups for all of them, before the first wave starts), then the
//! comparison each group gets (`core::metric_plan`), said on screen and in a dry run's plan. Reading the
//! load balancers is not worth failing a deploy for: if it fails, the groups are said to have no metrics
//! and the other evidence judges the release.

use std::collections::{BTreeMap, BTreeSet};

use super::preflight::Prepared;
use super::Ctx;
use crate::core::metric_plan::{self, MetricPlan};
use crate::core::metric_verdict::MetricsMode;
use crate::core::settings::EnvSettings;

/// Every group's metric plan (groups with `metrics = "off"` get none).
pub async fn plan(ctx: &Ctx, env: &EnvSettings, prepared: &[Prepared]) -> BTreeMap<String, MetricPlan> {
    let on = |g: &str| env.group(g).rollout.metrics.mode == MetricsMode::Auto;
    let target_groups: BTreeMap<String, Vec<String>> =
        prepared.iter().map(|p| (p.group.name.clone(), p.group.target_group_arns.clone())).collect();
    // Every group's target groups when any group is judged: a later wave's are a canary's reference.
    let wanted: Vec<String> = match env.group_names().iter().any(|g| on(g)) {
        true => target_groups.values().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect(),
        false => vec![],
    };
    let plans = if wanted.is_empty() {
        metric_plan::plan(&env.waves, &target_groups, &BTreeMap::new())
    } else {
        match ctx.cloud.elbv2.target_group_balancers(&wanted).await {
            Ok(balancers) => metric_plan::plan(&env.waves, &target_groups, &balancers),
            Err(e) => {
                let why = format!("could not read which load balancer each target group is behind ({e})");
                target_groups.keys().map(|g| (g.clone(), MetricPlan::none(why.clone()))).collect()
            }
        }
    };
    let mut out = BTreeMap::new();
    for group in env.group_names() {
        let plan = match plans.get(&group) {
            _ if !on(&group) => MetricPlan::none("metrics = \"off\""),
            Some(p) => p.clone(),
            None => continue,
        };
        let settings = env.group(&group).rollout;
        let line = if plan.watched.is_empty() {
            format!("{}; the other evidence judges the release", plan.describe())
        } else {
            format!("{} (convicts on {})", plan.describe(), settings.metrics)
        };
        ctx.events.info(&group, line);
        out.insert(group, plan);
    }
    out
}

//! The metric gate's plan for a release: which load balancer each target group of the environment's
//! groups is behind (one DescribeTargetGroups for all of them, before the first wave starts), then the
//! comparison each group gets (`core::metric_plan`), said on screen and in a dry run's plan, and the last
//! ten minutes of their metrics (one GetMetricData): the baseline, and the grid of CloudWatch's minutes,
//! known before any refresh starts, so that no poll of a rollout waits on a long first answer. Neither read
//! is worth failing a deploy for: if the first fails, the groups are said to have no metrics and the other
//! evidence judges the release; if the second fails, each rollout asks for itself.

use std::collections::{BTreeMap, BTreeSet};

use super::preflight::Prepared;
use super::Ctx;
use crate::core::metric_gate::{MetricGate, BASELINE_MINUTES};
use crate::core::metric_plan::{self, Comparison, MetricPlan};
use crate::core::metric_verdict::MetricsMode;
use crate::core::metrics::{MetricRequest, MetricsSeen};
use crate::core::settings::{EnvSettings, GroupSettings};

/// Every group's metric plan, and the metrics of the minutes before the release (when they could be read).
#[derive(Default)]
pub struct Plans {
    pub groups: BTreeMap<String, MetricPlan>,
    /// What GetMetricData returned at `.0` (wall ms) for every target group any plan reads.
    recent: Option<(i64, MetricsSeen)>,
}

impl Plans {
    /// The metric gate of `group`'s rollout, started at wall-clock `started_ms` with `baseline` (the
    /// instances before the refresh): None when the group has nothing to read.
    pub fn gate(&self, group: &str, settings: &GroupSettings, baseline: Vec<String>, started_ms: i64) -> Option<MetricGate> {
        let plan = self.groups.get(group).filter(|p| !p.watched.is_empty())?;
        let mut gate = MetricGate::new(settings.rollout.metrics, plan.clone(), baseline, started_ms);
        if let Some((at, seen)) = &self.recent {
            gate.prime(*at, seen);
        }
        Some(gate)
    }
}

/// Every group's metric plan (groups with `metrics = "off"` get none), and the ten minutes before.
pub async fn plan(ctx: &Ctx, env: &EnvSettings, prepared: &[Prepared]) -> Plans {
    let groups = plan_groups(ctx, env, prepared).await;
    let series: Vec<(String, String)> = groups
        .values()
        .flat_map(|p| p.watched.iter())
        .flat_map(|w| {
            let refs = match &w.comparison {
                Comparison::Canary { reference } => reference.clone(),
                Comparison::Before => vec![],
            };
            std::iter::once(w.target_group.clone()).chain(refs).map(|tg| (w.load_balancer.clone(), tg))
        })
        .collect();
    if series.is_empty() {
        return Plans { groups, recent: None };
    }
    // Ten AWS minutes back: on an endpoint whose minutes are shorter this asks for more than needed, once.
    let now = ctx.cloud.clock.wall_ms();
    let req = MetricRequest::of(&series, now - BASELINE_MINUTES * 60_000, now);
    let recent = match ctx.cloud.cloudwatch.metric_data(&req).await {
        Ok(series) => Some((now, MetricsSeen::Data(series))),
        // Refused: every gate hears it at once, and none asks again.
        Err(e) if e.kind == crate::cloud::ErrorKind::Denied => Some((now, MetricsSeen::Failed { message: e.to_string(), denied: true })),
        Err(_) => None,
    };
    Plans { groups, recent }
}

async fn plan_groups(ctx: &Ctx, env: &EnvSettings, prepared: &[Prepared]) -> BTreeMap<String, MetricPlan> {
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
        let line = if !on(&group) {
            "metric gate off (metrics = \"off\"); the other evidence judges the release".to_string()
        } else if plan.watched.is_empty() {
            format!("{}; the other evidence judges the release", plan.describe())
        } else {
            format!("{} (convicts on {})", plan.describe(), settings.metrics)
        };
        ctx.events.info(&group, line);
        out.insert(group, plan);
    }
    out
}

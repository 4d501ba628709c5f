//! The metric gate's plan for a release: which load balancer each target group of the environment's
//! groups is behind (one DescribeTargetGroups per region for all of them, before the first wave starts),
//! then the comparison each group gets (`core::metric_plan`), said on screen and in a dry run's plan, and
//! the last ten minutes of their metrics (one GetMetricData per region): the baseline, and the grid of
//! CloudWatch's minutes, known before any refresh starts, so that no poll of a rollout waits on a long first
//! answer. Neither read is worth failing a deploy for: if the first fails, the groups are said to have no
//! metrics and the other evidence judges the release; if the second fails, each rollout asks for itself.

use std::collections::{BTreeMap, BTreeSet};

use super::preflight::Prepared;
use super::Ctx;
use crate::cloud::ErrorKind;
use crate::core::metric_gate::{MetricGate, BASELINE_MINUTES};
use crate::core::metric_plan::{self, Comparison, MetricPlan};
use crate::core::metric_verdict::MetricsMode;
use crate::core::metrics::{MetricRequest, MetricsSeen};
use crate::core::settings::{EnvSettings, GroupSettings};

/// Every group's metric plan, and the metrics of the minutes before the release (when they could be read).
#[derive(Default)]
pub struct Plans {
    /// By the name the release knows each group by (`group@region` over several regions).
    pub groups: BTreeMap<String, MetricPlan>,
    /// Per region (None: the bake region): what GetMetricData returned at `.0` (wall ms) for every target
    /// group any plan of that region reads.
    recent: BTreeMap<Option<String>, (i64, MetricsSeen)>,
}

impl Plans {
    /// The metric gate of `scope`'s rollout, started at wall-clock `started_ms` with `baseline` (the
    /// instances before the refresh): None when the group has nothing to read.
    pub fn gate(&self, scope: &str, settings: &GroupSettings, baseline: Vec<String>, started_ms: i64) -> Option<MetricGate> {
        let plan = self.groups.get(scope).filter(|p| !p.watched.is_empty())?;
        let mut gate = MetricGate::new(settings.rollout.metrics, plan.clone(), baseline, started_ms);
        if let Some((at, seen)) = self.recent.get(&settings.region) {
            gate.prime(*at, seen);
        }
        Some(gate)
    }
}

/// Every group's metric plan (groups with `metrics = "off"` get none), and the ten minutes before.
pub async fn plan(ctx: &Ctx, env: &EnvSettings, prepared: &[Prepared]) -> Plans {
    let on = |g: &str| env.group(g).rollout.metrics.mode == MetricsMode::Auto;
    let target_groups: BTreeMap<String, Vec<String>> =
        prepared.iter().map(|p| (p.scope.clone(), p.group.target_group_arns.clone())).collect();
    let any = env.group_names().iter().any(|g| on(g));
    let mut regions: Vec<Option<String>> = env.group_names().iter().map(|g| env.group(g).region).collect();
    regions.sort();
    regions.dedup();
    // Which load balancer each target group is behind, asked in each group's region. Every group's target
    // groups when any group is judged: a later wave's are a canary's reference.
    let mut balancers = BTreeMap::new();
    let mut failed: Option<String> = None;
    for region in &regions {
        let here: Vec<String> = target_groups
            .iter()
            .filter(|(g, _)| any && env.group(g).region == *region)
            .flat_map(|(_, tgs)| tgs.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if here.is_empty() {
            continue;
        }
        match ctx.place(region.as_deref()).cloud.elbv2.target_group_balancers(&here).await {
            Ok(b) => balancers.extend(b),
            Err(e) => failed = Some(format!("could not read which load balancer each target group is behind ({e})")),
        }
    }
    let mut plans = metric_plan::plan(&env.waves, &target_groups, &balancers);
    let mut groups = BTreeMap::new();
    for group in env.group_names() {
        let plan = match (plans.remove(&group), &failed) {
            _ if !on(&group) => MetricPlan::none("metrics = \"off\""),
            (Some(p), None) => p,
            (Some(_), Some(why)) => MetricPlan::none(why.clone()),
            (None, _) => continue,
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
        groups.insert(group, plan);
    }
    let recent = recent(ctx, env, &groups, &regions).await;
    Plans { groups, recent }
}

/// The ten minutes before the release of every target group any plan reads, one GetMetricData per region.
async fn recent(ctx: &Ctx, env: &EnvSettings, groups: &BTreeMap<String, MetricPlan>, regions: &[Option<String>]) -> BTreeMap<Option<String>, (i64, MetricsSeen)> {
    let mut out = BTreeMap::new();
    for region in regions {
        let series: Vec<(String, String)> = groups
            .iter()
            .filter(|(g, _)| env.group(g).region == *region)
            .flat_map(|(_, p)| p.watched.iter())
            .flat_map(|w| {
                let refs = match &w.comparison {
                    Comparison::Canary { reference } => reference.clone(),
                    Comparison::Before => vec![],
                };
                std::iter::once(w.target_group.clone()).chain(refs).map(|tg| (w.load_balancer.clone(), tg))
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let cloud = ctx.place(region.as_deref()).cloud;
        // Ten AWS minutes back: on an endpoint whose minutes are shorter this asks for more than needed, once.
        let now = cloud.clock.wall_ms();
        let req = MetricRequest::of(&series, now - BASELINE_MINUTES * 60_000, now);
        match cloud.cloudwatch.metric_data(&req).await {
            Ok(series) => {
                out.insert(region.clone(), (now, MetricsSeen::Data(series)));
            }
            // Refused: every gate of the region hears it at once, and none asks again.
            Err(e) if e.kind == ErrorKind::Denied => {
                out.insert(region.clone(), (now, MetricsSeen::Failed { message: e.to_string(), denied: true }));
            }
            Err(_) => {}
        }
    }
    out
}

//! Which comparison the metric gate makes for each target group of each group of a release, decided once
//! from the environment's waves and which load balancer each target group is behind. Pure.
//!
//! - A group whose wave comes before other groups' that share its Application Load Balancer through
//!   target groups of their own (a canary: shop-canary next to shop-web on shop-alb) is compared with
//!   those target groups over the same minutes: the same application on the release before, the same
//!   traffic pattern, no time-of-day drift. Only target groups of groups the release reaches later count:
//!   those of the same or earlier waves already run the new release.
//! - Otherwise a target group is compared with its own minutes before the refresh started.
//! - A target group behind no load balancer, or only behind a Network or Gateway Load Balancer (they publish
//!   no HTTP codes or response times), has no metrics: the group is said to have none, and the other
//!   evidence judges it. So is a group in no target group at all.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::metrics::{balancer_name, BalancerKind};
use super::targets::tg_name;

/// What a target group's metrics are compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Comparison {
    /// Its own minutes before the refresh started.
    Before,
    /// These target groups (ARNs) of the same load balancer, which the release has not reached, over the
    /// same minutes.
    Canary { reference: Vec<String> },
}

impl Comparison {
    /// How a verdict names the baseline: `before`, `in shop-web over the same minutes`.
    pub fn against(&self) -> String {
        match self {
            Self::Before => "before".into(),
            Self::Canary { reference } => format!("in {} over the same minutes", names(reference)),
        }
    }
}

/// One target group the gate reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watched {
    pub target_group: String,
    /// The Application Load Balancer whose metrics it reads (the first, if several send to the group).
    pub load_balancer: String,
    pub comparison: Comparison,
}

/// A group's metric plan: what it reads, and what it cannot (with why).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricPlan {
    pub watched: Vec<Watched>,
    pub unavailable: Vec<String>,
}

impl MetricPlan {
    /// A plan with nothing to read, for this reason.
    pub fn none(why: impl Into<String>) -> Self {
        Self { watched: vec![], unavailable: vec![why.into()] }
    }

    /// One line for the plan and the progress output.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .watched
            .iter()
            .map(|w| {
                let tg = tg_name(&w.target_group);
                let lb = balancer_name(&w.load_balancer);
                match &w.comparison {
                    Comparison::Before => format!("{tg} (on {lb}) against its own 10 minutes before the refresh"),
                    Comparison::Canary { reference } => {
                        format!("{tg} (on {lb}) as a canary against {} over the same minutes", names(reference))
                    }
                }
            })
            .collect();
        if !parts.is_empty() {
            parts[0] = format!("metric gate: 5xx rate and latency of {}", parts[0]);
        }
        parts.extend(self.unavailable.iter().map(|u| format!("metrics unavailable: {u}")));
        parts.join("; ")
    }
}

fn names(arns: &[String]) -> String {
    arns.iter().map(|a| tg_name(a)).collect::<Vec<_>>().join(", ")
}

/// Every group's plan. `waves`: the release's groups in order; `target_groups`: each group's target group
/// ARNs; `balancers`: each target group's load balancer ARNs (DescribeTargetGroups' LoadBalancerArns).
pub fn plan(
    waves: &[Vec<String>],
    target_groups: &BTreeMap<String, Vec<String>>,
    balancers: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, MetricPlan> {
    let mut plans = BTreeMap::new();
    for (i, wave) in waves.iter().enumerate() {
        // Target groups of groups the release reaches after this wave: still on the release before.
        let mut later: Vec<&String> = Vec::new();
        for tg in waves[i + 1..].iter().flatten().filter_map(|g| target_groups.get(g)).flatten() {
            if !later.contains(&tg) {
                later.push(tg);
            }
        }
        let reached: BTreeSet<&String> = waves[..=i].iter().flatten().filter_map(|g| target_groups.get(g)).flatten().collect();
        for group in wave {
            let tgs = target_groups.get(group).cloned().unwrap_or_default();
            if tgs.is_empty() {
                plans.insert(group.clone(), MetricPlan::none("the group is in no target group"));
                continue;
            }
            let mut plan = MetricPlan::default();
            for tg in &tgs {
                let lbs = balancers.get(tg).cloned().unwrap_or_default();
                let Some(alb) = lbs.iter().find(|lb| BalancerKind::of(lb) == BalancerKind::Application) else {
                    let why = match lbs.first() {
                        None => format!("target group {} is behind no load balancer", tg_name(tg)),
                        Some(lb) => format!(
                            "target group {} is behind {} ({}), which publishes no HTTP codes or response times",
                            tg_name(tg),
                            BalancerKind::of(lb).describe(),
                            balancer_name(lb)
                        ),
                    };
                    plan.unavailable.push(why);
                    continue;
                };
                let reference: Vec<String> = later
                    .iter()
                    .filter(|r| **r != tg && !reached.contains(*r))
                    .filter(|r| balancers.get(**r).is_some_and(|l| l.contains(alb)))
                    .map(|r| (*r).clone())
                    .collect();
                let comparison = if reference.is_empty() { Comparison::Before } else { Comparison::Canary { reference } };
                plan.watched.push(Watched { target_group: tg.clone(), load_balancer: alb.clone(), comparison });
            }
            plans.insert(group.clone(), plan);
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg(name: &str) -> String {
        format!("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/{name}/0a")
    }
    fn lb(kind: &str, name: &str) -> String {
        format!("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/{kind}/{name}/0b")
    }

    /// shop-canary (wave 1) and shop-web (wave 2) on shop-alb; shop-worker behind its own ALB; shop-tcp
    /// behind an NLB; shop-batch in no target group; shop-lonely in a target group of no load balancer.
    fn world() -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
        let groups = BTreeMap::from([
            ("shop-canary".to_string(), vec![tg("shop-canary")]),
            ("shop-web".to_string(), vec![tg("shop-web"), tg("shop-web-admin")]),
            ("shop-worker".to_string(), vec![tg("shop-worker")]),
            ("shop-tcp".to_string(), vec![tg("shop-tcp")]),
            ("shop-batch".to_string(), vec![]),
            ("shop-lonely".to_string(), vec![tg("shop-lonely")]),
        ]);
        let alb = lb("app", "shop-alb");
        let balancers = BTreeMap::from([
            (tg("shop-canary"), vec![alb.clone()]),
            (tg("shop-web"), vec![alb.clone()]),
            (tg("shop-web-admin"), vec![alb.clone()]),
            (tg("shop-worker"), vec![lb("app", "shop-worker-alb")]),
            (tg("shop-tcp"), vec![lb("net", "shop-nlb")]),
            (tg("shop-lonely"), vec![]),
        ]);
        (groups, balancers)
    }

    #[test]
    fn a_canary_wave_is_compared_with_the_later_waves_target_groups_on_its_load_balancer() {
        let (groups, balancers) = world();
        let waves = vec![vec!["shop-canary".to_string()], vec!["shop-web".to_string(), "shop-worker".to_string()]];
        let plans = plan(&waves, &groups, &balancers);
        let canary = &plans["shop-canary"].watched[0];
        assert_eq!(canary.comparison, Comparison::Canary { reference: vec![tg("shop-web"), tg("shop-web-admin")] });
        assert_eq!(canary.comparison.against(), "in shop-web, shop-web-admin over the same minutes");
        // shop-web's wave is the last on shop-alb (the canary already runs the release): its own past.
        assert!(plans["shop-web"].watched.iter().all(|w| w.comparison == Comparison::Before), "{:?}", plans["shop-web"]);
        assert_eq!(plans["shop-worker"].watched[0].comparison, Comparison::Before);
        assert!(plans["shop-canary"].describe().contains("as a canary against shop-web, shop-web-admin"), "{}", plans["shop-canary"].describe());
    }

    #[test]
    fn groups_rolled_out_together_are_each_compared_with_their_own_past() {
        let (groups, balancers) = world();
        let plans = plan(&[vec!["shop-canary".to_string(), "shop-web".to_string()]], &groups, &balancers);
        assert_eq!(plans["shop-canary"].watched[0].comparison, Comparison::Before);
        assert_eq!(plans["shop-web"].watched.len(), 2);
    }

    #[test]
    fn no_alb_no_metrics_and_the_reason_says_why() {
        let (groups, balancers) = world();
        let waves = vec![vec!["shop-tcp".to_string()], vec!["shop-batch".to_string()], vec!["shop-lonely".to_string()]];
        let plans = plan(&waves, &groups, &balancers);
        assert!(plans["shop-tcp"].watched.is_empty());
        assert!(plans["shop-tcp"].unavailable[0].contains("a Network Load Balancer (shop-nlb)"), "{:?}", plans["shop-tcp"]);
        assert_eq!(plans["shop-batch"].unavailable, vec!["the group is in no target group".to_string()]);
        assert!(plans["shop-lonely"].describe().starts_with("metrics unavailable: target group shop-lonely is behind no load balancer"));
    }
}

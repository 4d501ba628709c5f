//! What the metric gate asks CloudWatch and what it gets back, as data: the Application Load Balancer
//! metrics of a target group (namespace `AWS/ApplicationELB`, dimensions `LoadBalancer` + `TargetGroup`),
//! one query per metric and target group, one-minute periods; the datapoints per series; and which load
//! balancer a target group is behind (an ALB publishes these metrics, a Network Load Balancer does not).
//! The CloudWatch adapter turns a `MetricRequest` into one GetMetricData call. Pure.
//!
//! Facts (Elastic Load Balancing user guide, "CloudWatch metrics for your Application Load Balancer"):
//! metrics are sent in 60-second intervals and only while requests flow ("If there are no requests ...
//! the metric is not reported", so a missing datapoint is zero); the dimension values are the final
//! portions of the ARNs (`app/shop-alb/50dc6c495c0c9188`, `targetgroup/shop-web/73e2d6bc24d8a067`).

use serde::Serialize;

pub const NAMESPACE: &str = "AWS/ApplicationELB";
/// The period every query asks for: ELB sends its metrics per minute, so a minute is the finest grain.
pub const PERIOD_SECS: i32 = 60;
/// GetMetricData takes at most 500 queries a call (CloudWatch API reference, "GetMetricData").
pub const QUERIES_PER_CALL: usize = 500;

/// One of the four series the gate reads per target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// RequestCount, Sum: requests the load balancer sent to the group's targets.
    Requests,
    /// HTTPCode_Target_5XX_Count, Sum: of those, answered 5XX by the targets.
    Errors,
    /// TargetResponseTime, p99 (an extended statistic; absent where CloudWatch computes none).
    LatencyP99,
    /// TargetResponseTime, Average.
    LatencyAverage,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Requests, Metric::Errors, Metric::LatencyP99, Metric::LatencyAverage];

    /// The CloudWatch metric name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "RequestCount",
            Self::Errors => "HTTPCode_Target_5XX_Count",
            Self::LatencyP99 | Self::LatencyAverage => "TargetResponseTime",
        }
    }

    /// The statistic asked for (`p99` is an extended statistic).
    pub fn stat(self) -> &'static str {
        match self {
            Self::Requests | Self::Errors => "Sum",
            Self::LatencyP99 => "p99",
            Self::LatencyAverage => "Average",
        }
    }
}

/// The kind of load balancer an ARN names (`loadbalancer/app/…`, `loadbalancer/net/…`, `loadbalancer/gwy/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalancerKind {
    Application,
    Network,
    Gateway,
    Unknown,
}

impl BalancerKind {
    pub fn of(load_balancer_arn: &str) -> Self {
        match load_balancer_arn.split(":loadbalancer/").nth(1).and_then(|r| r.split('/').next()) {
            Some("app") => Self::Application,
            Some("net") => Self::Network,
            Some("gwy") => Self::Gateway,
            _ => Self::Unknown,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Application => "an Application Load Balancer",
            Self::Network => "a Network Load Balancer",
            Self::Gateway => "a Gateway Load Balancer",
            Self::Unknown => "a load balancer of unknown type",
        }
    }
}

/// The `LoadBalancer` dimension value: the ARN after `loadbalancer/`.
pub fn balancer_dimension(load_balancer_arn: &str) -> &str {
    load_balancer_arn.split(":loadbalancer/").nth(1).unwrap_or(load_balancer_arn)
}

/// The `TargetGroup` dimension value: the ARN from `targetgroup/` on.
pub fn target_group_dimension(target_group_arn: &str) -> &str {
    target_group_arn.find("targetgroup/").map_or(target_group_arn, |i| &target_group_arn[i..])
}

/// The load balancer's name (`app/shop-alb/50dc…` → `shop-alb`).
pub fn balancer_name(load_balancer_arn: &str) -> &str {
    balancer_dimension(load_balancer_arn).split('/').nth(1).unwrap_or(load_balancer_arn)
}

/// One series: a metric of one target group behind one load balancer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    pub load_balancer: String,
    pub target_group: String,
    pub metric: Metric,
}

/// One GetMetricData call: every series, one-minute periods, over [start, end) in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRequest {
    pub series: Vec<SeriesKey>,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl MetricRequest {
    /// The four series of each (load balancer ARN, target group ARN), once each.
    pub fn of(groups: &[(String, String)], start_ms: i64, end_ms: i64) -> Self {
        let mut series: Vec<SeriesKey> = groups
            .iter()
            .flat_map(|(lb, tg)| Metric::ALL.into_iter().map(|metric| SeriesKey { load_balancer: lb.clone(), target_group: tg.clone(), metric }))
            .collect();
        series.sort();
        series.dedup();
        Self { series, start_ms, end_ms }
    }

    /// The query id of the n-th series: GetMetricData wants `^[a-z][a-zA-Z0-9_]*$`, unique in the call.
    pub fn query_id(n: usize) -> String {
        format!("q{n}")
    }
}

/// What GetMetricData returned for one series: (timestamp in Unix ms, value), any order. A period without
/// data has no datapoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub key: SeriesKey,
    pub points: Vec<(i64, f64)>,
}

/// What one poll's metric call brought, for the gate.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsSeen {
    Data(Vec<Series>),
    /// The call failed; `denied` when IAM refused it (the gate then stops asking).
    Failed { message: String, denied: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop-alb/50dc6c495c0c9188";
    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/73e2d6bc24d8a067";

    #[test]
    fn dimensions_are_the_final_portions_of_the_arns() {
        assert_eq!(balancer_dimension(LB), "app/shop-alb/50dc6c495c0c9188");
        assert_eq!(target_group_dimension(TG), "targetgroup/shop-web/73e2d6bc24d8a067");
        assert_eq!(balancer_name(LB), "shop-alb");
    }

    #[test]
    fn the_kind_of_balancer_is_in_its_arn() {
        assert_eq!(BalancerKind::of(LB), BalancerKind::Application);
        assert_eq!(BalancerKind::of("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1"), BalancerKind::Network);
        assert_eq!(BalancerKind::of("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/gwy/g/1"), BalancerKind::Gateway);
        assert_eq!(BalancerKind::of("nonsense"), BalancerKind::Unknown);
    }

    #[test]
    fn a_request_asks_four_series_per_target_group_once() {
        let r = MetricRequest::of(&[(LB.into(), TG.into()), (LB.into(), TG.into())], 0, 60_000);
        assert_eq!(r.series.len(), 4);
        let names: Vec<(&str, &str)> = r.series.iter().map(|s| (s.metric.name(), s.metric.stat())).collect();
        assert!(names.contains(&("HTTPCode_Target_5XX_Count", "Sum")) && names.contains(&("TargetResponseTime", "p99")), "{names:?}");
        assert_eq!(MetricRequest::query_id(7), "q7");
    }
}

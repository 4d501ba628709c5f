//! Application Load Balancer traffic and its CloudWatch metrics, as the local AWS emulator publishes them
//! (scripts/emulator/README.md, "Application Load Balancer metrics"), minus the randomness: each target
//! group behind an ALB gets `requests_per_minute` requests (default 600), spread evenly over its serving
//! targets (healthy ones; all unhealthy ones when none is healthy: the ALB fails open; never `initial`,
//! `draining` or `unused` ones), and each request answers as its target's image says (`local-aws:error-rate`,
//! default 0.002; `local-aws:latency`, mean seconds, default 0.05, lognormal with σ 0.5 as the emulator
//! draws it), or as `FakeCloud::set_image_traffic` sets. Counts are the expected values, rounded (5XX
//! counts dithered so that they average to the expected rate): a release as good as the old one measures
//! the same, and scenarios are reproducible.
//!
//! A tick records a target group's serving images only when they change (so quiet ticks stay skippable);
//! GetMetricData integrates that record over each minute of the fake's calendar (minute *k* starts at
//! `k × 60 s` Unix time, its datapoints stamped so), shows a minute `metrics_delay` after it ends, and
//! publishes nothing for a minute without requests (nor a 5XX count of zero). The first record stands for
//! the time before the fake began: the stack has been serving like that for long.
//! DescribeTargetGroups reports the load balancer a target group was created behind.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::conventions::{err, ACCOUNT, REGION};
use super::state::State;
use super::FakeCloud;
use crate::cloud::{actions, CloudResult};
use crate::core::metric_verdict::normal_cdf;
use crate::core::metrics::{BalancerKind, Metric, MetricRequest, Series};
use crate::core::model::TargetState;

pub const ERROR_RATE_TAG: &str = "local-aws:error-rate";
pub const LATENCY_TAG: &str = "local-aws:latency";
const DEFAULT_ERROR_RATE: f64 = 0.002;
const DEFAULT_LATENCY: f64 = 0.05;
/// The emulator's lognormal spread of response times (its README: median 0.88 × the mean, p99 2.8 ×).
const SIGMA: f64 = 0.5;
const MINUTE_MS: i64 = 60_000;

/// What a target group's load balancer is, for fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balancer {
    /// An Application Load Balancer with this name (stacks naming the same one share it).
    Alb(String),
    Nlb(String),
    /// No load balancer sends to the target group.
    None,
}

impl State {
    /// The ARN of the load balancer `name` of `kind` (`app`, `net`), made on first use.
    pub fn load_balancer(&mut self, kind: &str, name: &str) -> String {
        if let Some(arn) = self.load_balancers.get(name) {
            return arn.clone();
        }
        let arn = format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/{kind}/{name}/{}", &self.next_id("lb")[4..]);
        self.load_balancers.insert(name.to_string(), arn.clone());
        arn
    }

    /// The images of the targets an ALB would send a request to now.
    fn serving_images(&self, arn: &str) -> Vec<String> {
        let Some(tg) = self.target_groups.get(arn) else { return vec![] };
        let pick = |states: &[TargetState]| -> Vec<String> {
            let mut images: Vec<String> = tg
                .targets
                .iter()
                .filter(|(_, t)| states.contains(&t.state))
                .filter_map(|(id, _)| self.instances.get(id).map(|i| i.image_id.clone()))
                .collect();
            images.sort();
            images
        };
        let healthy = pick(&[TargetState::Healthy, TargetState::Unavailable]);
        if healthy.is_empty() { pick(&[TargetState::Unhealthy]) } else { healthy }
    }

    /// Notes each ALB target group's serving images when they changed (run by every tick).
    pub fn step_traffic(&mut self, t: Instant) {
        let behind_alb: Vec<String> = self
            .target_groups
            .iter()
            .filter(|(_, tg)| tg.load_balancer.as_deref().is_some_and(|lb| BalancerKind::of(lb) == BalancerKind::Application))
            .map(|(arn, _)| arn.clone())
            .collect();
        for arn in behind_alb {
            let now = self.serving_images(&arn);
            let tg = self.target_groups.get_mut(&arn).expect("listed above");
            if tg.serving.last().is_none_or(|(_, last)| *last != now) {
                tg.serving.push((t, now));
            }
        }
    }

    fn unix_ms(&self, t: Instant) -> i64 {
        self.unix(self.start) * 1000 + t.saturating_duration_since(self.start).as_millis() as i64
    }

    /// (5XX rate, mean response time) of requests answered by `image`.
    fn traffic_of(&self, image: &str) -> (f64, f64) {
        if let Some(t) = self.rules.image_traffic.get(image) {
            return *t;
        }
        let tag = |key: &str| self.images.get(image).and_then(|i| i.tags.get(key)).and_then(|v| v.parse::<f64>().ok());
        let rate = tag(ERROR_RATE_TAG).filter(|r| (0.0..=1.0).contains(r)).unwrap_or(DEFAULT_ERROR_RATE);
        let latency = tag(LATENCY_TAG).filter(|l| *l > 0.0).unwrap_or(DEFAULT_LATENCY);
        (rate, latency)
    }

    /// Requests, 5XX, p99 and average of one target group in the minute starting at Unix ms `from`.
    fn minute(&self, arn: &str, from: i64) -> Option<(f64, f64, f64, f64)> {
        let tg = self.target_groups.get(arn)?;
        let to = from + MINUTE_MS;
        let (mut requests, mut errors) = (0.0, 0.0);
        let mut parts: Vec<(f64, f64)> = Vec::new(); // (requests, mean latency)
        for (i, (at, images)) in tg.serving.iter().enumerate() {
            let start = if i == 0 { i64::MIN } else { self.unix_ms(*at) };
            let end = tg.serving.get(i + 1).map_or(i64::MAX, |(next, _)| self.unix_ms(*next));
            let (a, b) = (start.max(from), end.min(to));
            if a >= b || images.is_empty() {
                continue;
            }
            let share = tg.requests_per_minute * (b - a) as f64 / MINUTE_MS as f64 / images.len() as f64;
            for image in images {
                let (rate, latency) = self.traffic_of(image);
                requests += share;
                errors += share * rate;
                parts.push((share, latency));
            }
        }
        let requests = requests.round();
        if requests < 1.0 {
            return None;
        }
        let total: f64 = parts.iter().map(|(w, _)| w).sum();
        let avg = parts.iter().map(|(w, m)| w * m).sum::<f64>() / total;
        // Whole errors that average to the expected count over the minutes (1.2 a minute: 1, 1, 2, 1, 1,
        // ...): a dither that is the same for every target group, so equal rates measure equal.
        let dither = (from / MINUTE_MS) as f64 * 0.618_033_988_749_895 % 1.0;
        Some((requests, (errors + dither).floor().min(requests), p99(&parts, total), avg))
    }

    /// GetMetricData over the fake's ALB metrics.
    pub fn metric_data(&self, req: &MetricRequest) -> Vec<Series> {
        let now = self.unix_ms(self.now);
        let delay = self.timings.metrics_delay.as_millis() as i64;
        let first = req.start_ms.div_euclid(MINUTE_MS);
        let last = (req.end_ms - 1).div_euclid(MINUTE_MS);
        req.series
            .iter()
            .map(|key| {
                let behind = self.target_groups.get(&key.target_group).and_then(|tg| tg.load_balancer.as_deref());
                let mut points = Vec::new();
                if behind == Some(key.load_balancer.as_str()) && BalancerKind::of(&key.load_balancer) == BalancerKind::Application {
                    for k in first..=last {
                        let from = k * MINUTE_MS;
                        if from + MINUTE_MS + delay > now {
                            break;
                        }
                        let Some((requests, errors, p99, avg)) = self.minute(&key.target_group, from) else { continue };
                        match key.metric {
                            Metric::Requests => points.push((from, requests)),
                            Metric::Errors if errors > 0.0 => points.push((from, errors)),
                            Metric::Errors => {}
                            Metric::LatencyP99 => points.push((from, p99)),
                            Metric::LatencyAverage => points.push((from, avg)),
                        }
                    }
                }
                Series { key: key.clone(), points }
            })
            .collect()
    }

    /// DescribeTargetGroups' LoadBalancerArns.
    pub fn target_group_balancers(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<String>>> {
        arns.iter()
            .map(|arn| {
                let tg = self.target_groups.get(arn).ok_or_else(|| {
                    err(actions::DESCRIBE_TARGET_GROUPS.name, "TargetGroupNotFound", format!("One or more target groups not found: {arn}"))
                })?;
                Ok((arn.clone(), tg.load_balancer.iter().cloned().collect()))
            })
            .collect()
    }
}

/// The 99th percentile of a mixture of lognormal response times (weights, means), by bisection.
fn p99(parts: &[(f64, f64)], total: f64) -> f64 {
    let cdf = |x: f64| {
        parts.iter().map(|(w, mean)| w * normal_cdf((x.ln() - (mean.ln() - SIGMA * SIGMA / 2.0)) / SIGMA)).sum::<f64>() / total
    };
    let (mut lo, mut hi) = (1e-6_f64.ln(), 1e4_f64.ln());
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid.exp()) < 0.99 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi.exp()
}

impl FakeCloud {
    /// How requests to instances of `image` answer: 5XX with probability `error_rate`, in `latency`
    /// seconds on average (overrides the image's `local-aws:error-rate` / `local-aws:latency` tags).
    pub fn set_image_traffic(&self, image: &str, error_rate: f64, latency: f64) {
        self.with(|s| s.rules.image_traffic.insert(image.to_string(), (error_rate, latency)));
    }

    /// Requests a minute the target group's load balancer sends it (default 600).
    pub fn set_requests_per_minute(&self, target_group: &str, rpm: f64) {
        self.with(|s| {
            if let Some(tg) = s.target_groups.get_mut(target_group) {
                tg.requests_per_minute = rpm;
            }
        });
    }

    /// The load balancer a target group is behind, if any.
    pub fn balancer_of(&self, target_group: &str) -> Option<String> {
        self.with(|s| s.target_groups.get(target_group).and_then(|tg| tg.load_balancer.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_of_one_lognormal_is_2_8_times_its_mean_and_a_slow_minority_dominates_a_mixture() {
        let one = p99(&[(1.0, 0.05)], 1.0);
        assert!((one / 0.05 - 2.8).abs() < 0.05, "{one}");
        let mixed = p99(&[(0.9, 0.05), (0.1, 0.5)], 1.0);
        assert!(mixed > 0.5 && mixed < 2.8 * 0.5, "{mixed}");
    }
}

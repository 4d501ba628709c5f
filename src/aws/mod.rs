//! Adapters from the AWS SDK for Rust to the domain traits in `crate::cloud`, one file per service,
//! and `connect`, which builds the one shared SDK configuration (region, retries, timeouts).

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};

use crate::cloud::{CallLedger, Cloud};

mod autoscaling;
mod cloudwatch;
mod ec2;
mod elbv2;
mod error;

pub use autoscaling::AutoScaling;
pub use cloudwatch::CloudWatch;
pub use ec2::Ec2;
pub use elbv2::Elbv2;

/// Five attempts (one call + four retries). Standard mode backs off 1 s, 2 s, 4 s, 8 s with full jitter,
/// so a throttled call gives up after at most ~15 s of waiting: long enough to ride out a burst of
/// `RequestLimitExceeded`/`Throttling` (what a deploy polling every few seconds meets), short enough that
/// the engine's own poll loop, which treats `Transient` as "try again next tick", stays in charge.
/// Standard rather than adaptive mode: adaptive adds client-side rate limiting that would slow the
/// whole run after one throttle, and our call rate is already low.
const MAX_ATTEMPTS: u32 = 5;

/// The SDK default connect timeout is 3.1 s. CI runners behind NAT gateways or egress proxies
/// sometimes need longer under load, and a failed connect is retried anyway, so 5 s costs little.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One HTTP attempt. Our slowest call, DescribeImages over a large account, answers in a few seconds;
/// 30 s is far above that but turns a hung connection into a retry instead of a stalled rollout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach AWS. The endpoint is deliberately not here: aws-config reads `AWS_ENDPOINT_URL`
/// (and `AWS_ENDPOINT_URL_EC2`, ...) itself, which is how tests point at a local AWS.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Overrides the region from the environment / profile.
    pub region: Option<String>,
    /// Overrides `MAX_ATTEMPTS` (1 disables retries, e.g. in tests against a local AWS).
    pub max_attempts: Option<u32>,
}

/// Connects with defaults plus an optional region override.
pub async fn connect(region: Option<String>) -> Cloud {
    connect_with(ConnectOptions { region, ..ConnectOptions::default() }).await
}

pub async fn connect_with(options: ConnectOptions) -> Cloud {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(ATTEMPT_TIMEOUT).build(),
    );
    if let Some(region) = options.region {
        loader = loader.region(Region::new(region));
    }
    // A user who set AWS_MAX_ATTEMPTS / AWS_RETRY_MODE gets what they asked for (aws-config reads them
    // when we set nothing); otherwise our choice replaces the SDK default of 3 attempts.
    let user_retry = std::env::var_os("AWS_MAX_ATTEMPTS").is_some() || std::env::var_os("AWS_RETRY_MODE").is_some();
    if options.max_attempts.is_some() || !user_retry {
        let attempts = options.max_attempts.unwrap_or(MAX_ATTEMPTS).max(1);
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(attempts));
    }
    let config = loader.load().await;
    let calls = CallLedger::default();
    Cloud {
        ec2: Arc::new(Ec2::new(aws_sdk_ec2::Client::new(&config), calls.clone())),
        autoscaling: Arc::new(AutoScaling::new(aws_sdk_autoscaling::Client::new(&config), calls.clone())),
        elbv2: Arc::new(Elbv2::new(aws_sdk_elasticloadbalancingv2::Client::new(&config), calls.clone())),
        cloudwatch: Arc::new(CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config), calls.clone())),
        calls,
        clock: Arc::new(crate::cloud::TokioClock),
    }
}

/// Seconds since the Unix epoch (the smithy `DateTime` is the same type in every service crate).
pub(crate) fn epoch_secs(t: Option<&DateTime>) -> Option<i64> {
    t.map(DateTime::secs)
}

/// ISO-8601 (`2026-11-26T08:00:00Z`), the form EC2 uses for image creation dates.
pub(crate) fn iso8601(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// `Duration` → the whole seconds AWS wants as i32, saturating instead of wrapping.
pub(crate) fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_conversions() {
        let t = DateTime::from_secs(1_764_144_000);
        assert_eq!(epoch_secs(Some(&t)), Some(1_764_144_000));
        assert_eq!(iso8601(Some(&t)).as_deref(), Some("2025-11-26T08:00:00Z"));
        assert_eq!(iso8601(None), None);
        assert_eq!(secs_i32(Duration::from_secs(300)), 300);
        assert_eq!(secs_i32(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}

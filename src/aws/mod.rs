//! Adapters from the AWS SDK for Rust to the domain traits in `crate::cloud`, one file per service,
//! and `connect`, which builds the one shared SDK configuration (region, retries, timeouts) and checks
//! that it can be used at all (`setup`).

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};

use crate::cloud::{CallLedger, Cloud, SetupError};

mod autoscaling;
mod cloudwatch;
mod connector;
mod ec2;
mod elbv2;
mod error;
mod setup;

pub use autoscaling::AutoScaling;
pub use cloudwatch::CloudWatch;
pub use connector::AwsConnector;
pub use ec2::Ec2;
pub use elbv2::Elbv2;

/// Eight attempts (one call + seven retries), exponential backoff from 1 s with full jitter, capped at
/// 20 s (`MAX_BACKOFF`): a call rides out about 70 s of continuous throttling or dropped connections.
/// Why that much: a deploy lasts up to an hour and shares the account's throttling buckets with every
/// other pipeline (ELBv2 Describe refills 10 tokens/s, EC2 mutating calls 5/s), and giving up on one
/// call mid-deploy costs far more than waiting — at a 20 % failure rate, eight attempts fail together
/// once in ~400 000 calls (0.2^8), where the default three fail once in 125. Longer outages are the
/// engine's own loops' to ride out (the refresh watcher keeps watching; a wait backs off).
/// Standard mode, not adaptive: adaptive's client-side bucket is sized by our own (low) request rate,
/// so after one throttle a retry costs more tokens than the bucket can hold and waits about 18 s, and
/// every later call waits about 2 s. Measured by the reliability matrix (RELIABILITY.md): three throttles
/// of one poll left the refresh watcher blind for 150 s and a 14 s ship took 232 s — long enough, with
/// a real deploy's timeout, to roll back a good release because AWS was briefly busy. Our polite part
/// is the engine's own polling interval and its waits' backoff.
const MAX_ATTEMPTS: u32 = 8;
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The SDK default connect timeout is 3.1 s. CI runners behind NAT gateways or egress proxies
/// sometimes need longer under load, and a failed connect is retried anyway, so 5 s costs little.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One HTTP attempt. Our slowest call, DescribeImages over a large account, answers in a few seconds;
/// 30 s is far above that but turns a hung connection into a retry instead of a stalled rollout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Overrides `ATTEMPT_TIMEOUT` (seconds, fractions allowed): for very slow networks, and for the
/// reliability matrix, which holds answers past the timeout and would wait 30 s for each.
pub const ATTEMPT_TIMEOUT_VAR: &str = "BAKEROLL_HTTP_ATTEMPT_TIMEOUT";

/// The per-attempt timeout: `ATTEMPT_TIMEOUT`, or `value` of `ATTEMPT_TIMEOUT_VAR` when set.
pub fn attempt_timeout(value: Option<&str>) -> Result<Duration, String> {
    let Some(text) = value else { return Ok(ATTEMPT_TIMEOUT) };
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{ATTEMPT_TIMEOUT_VAR} is `{text}`; set it to the seconds one HTTP attempt may take (more than 0, at most 3600), or unset it for {}s", ATTEMPT_TIMEOUT.as_secs())),
    }
}

/// How to reach AWS. The endpoint is deliberately not here: aws-config reads `AWS_ENDPOINT_URL`
/// (and `AWS_ENDPOINT_URL_EC2`, ...) itself, which is how tests point at a local AWS.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Overrides the region from the environment / profile.
    pub region: Option<String>,
    /// Overrides `MAX_ATTEMPTS` (1 disables retries, e.g. in tests against a local AWS).
    pub max_attempts: Option<u32>,
    /// Overrides `ATTEMPT_TIMEOUT` (see `attempt_timeout`).
    pub attempt_timeout: Option<Duration>,
}

/// Where the region comes from when bakeroll sets it, for the messages of `setup::check_region`.
#[derive(Debug, Clone)]
pub struct RegionSetting {
    /// The region given explicitly (the pipeline file's `region`, `init --region`), else the chain's.
    pub value: Option<String>,
    /// How the user sets it: "`region` in pipeline/bakeroll.toml", "--region".
    pub how_to_set: String,
}

/// Connects with defaults plus the region setting, and the attempt timeout of `ATTEMPT_TIMEOUT_VAR`,
/// after checking what must hold before any work (a usable region, loadable credentials; see
/// `setup`): each problem is a `SetupError` naming the fix.
pub async fn connect(region: RegionSetting) -> Result<(Cloud, AwsConnector), SetupError> {
    let attempt_timeout = attempt_timeout(std::env::var(ATTEMPT_TIMEOUT_VAR).ok().as_deref())
        .map_err(|problem| SetupError { problem, fix: None, source: None })?;
    let options = ConnectOptions { region: region.value.clone(), attempt_timeout: Some(attempt_timeout), ..ConnectOptions::default() };
    let config = load(&options).await;
    let named = region.value.is_some().then_some(region.how_to_set.as_str());
    setup::check_region(config.region().map(|r| r.as_ref()), named, &region.how_to_set)?;
    setup::check_credentials(&config).await?;
    let cloud = clients(&config);
    let connector = AwsConnector { config, calls: cloud.calls.clone() };
    Ok((cloud, connector))
}

pub async fn connect_with(options: ConnectOptions) -> Cloud {
    clients(&load(&options).await)
}

async fn load(options: &ConnectOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(options.attempt_timeout.unwrap_or(ATTEMPT_TIMEOUT)).build(),
    );
    if let Some(region) = options.region.clone() {
        loader = loader.region(Region::new(region));
    }
    // A user who set AWS_MAX_ATTEMPTS / AWS_RETRY_MODE gets what they asked for (aws-config reads them
    // when we set nothing); otherwise our choice replaces the SDK default of 3 attempts.
    let user_retry = std::env::var_os("AWS_MAX_ATTEMPTS").is_some() || std::env::var_os("AWS_RETRY_MODE").is_some();
    if options.max_attempts.is_some() || !user_retry {
        let attempts = options.max_attempts.unwrap_or(MAX_ATTEMPTS).max(1);
        let retry = RetryConfig::standard().with_max_attempts(attempts).with_initial_backoff(INITIAL_BACKOFF).with_max_backoff(MAX_BACKOFF);
        loader = loader.retry_config(retry);
    }
    loader.load().await
}

/// One client per service, each with the first-contact hooks (`setup::FirstContact`).
pub(crate) fn clients(config: &aws_config::SdkConfig) -> Cloud {
    let hooks = setup::FirstContact;
    let ec2 = aws_sdk_ec2::config::Builder::from(config).interceptor(hooks).retry_classifier(hooks).build();
    let asg = aws_sdk_autoscaling::config::Builder::from(config).interceptor(hooks).retry_classifier(hooks).build();
    let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(config).interceptor(hooks).retry_classifier(hooks).build();
    let cw = aws_sdk_cloudwatch::config::Builder::from(config).interceptor(hooks).retry_classifier(hooks).build();
    let calls = CallLedger::default();
    let ec2 = Arc::new(Ec2::new(aws_sdk_ec2::Client::from_conf(ec2), calls.clone()));
    Cloud {
        ec2: ec2.clone(),
        copies: ec2,
        autoscaling: Arc::new(AutoScaling::new(aws_sdk_autoscaling::Client::from_conf(asg), calls.clone())),
        elbv2: Arc::new(Elbv2::new(aws_sdk_elasticloadbalancingv2::Client::from_conf(elb), calls.clone())),
        cloudwatch: Arc::new(CloudWatch::new(aws_sdk_cloudwatch::Client::from_conf(cw), calls.clone())),
        calls,
        clock: Arc::new(crate::cloud::TokioClock),
    }
}

/// A ClientToken for one request: the SDK sends the same one on each of its retries, so a retry after a
/// lost answer returns the first attempt's result instead of creating a second resource (EC2's
/// "Ensuring idempotency"). Unique, not secret.
pub(crate) fn client_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    let a = h.finish();
    h.write_u64(a);
    format!("bakeroll-{a:016x}{:016x}", h.finish())
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

    #[test]
    fn attempt_timeout_comes_from_the_variable_or_the_default() {
        assert_eq!(attempt_timeout(None), Ok(ATTEMPT_TIMEOUT));
        assert_eq!(attempt_timeout(Some("2.5")), Ok(Duration::from_millis(2500)));
        assert_eq!(attempt_timeout(Some(" 60 ")), Ok(Duration::from_secs(60)));
        for bad in ["0", "-1", "abc", "", "inf", "NaN", "3601"] {
            let err = attempt_timeout(Some(bad)).unwrap_err();
            assert!(err.starts_with(ATTEMPT_TIMEOUT_VAR) && err.contains(&format!("`{bad}`")), "{err}");
        }
    }
}

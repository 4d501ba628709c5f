//! What must hold before bakeroll's work starts, so that a configuration problem is said as one (a
//! `SetupError`: exit 2 with the fix) instead of as a failed call (exit 7, which CI may retry): a
//! region that looks like one and credentials the chain can load — both checked by `connect` — and an
//! endpoint that answers at all, judged at the first call: while AWS has never answered this process, a
//! connection that cannot be made is tried `FIRST_CONTACT_ATTEMPTS` times, then reported as unreachable
//! instead of being retried for a minute. Once anything answered, connection failures are transient as
//! always (exit 7): work may have been done by then.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::interceptors::{BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, InterceptorContext};
use aws_sdk_ec2::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_ec2::config::{ConfigBag, Intercept, ProvideCredentials, RuntimeComponents};

use crate::cloud::SetupError;
use crate::core::model::is_region_name;

/// Attempts at the very first connection before AWS counts as unreachable: a dropped SYN or a DNS
/// hiccup at start-up still gets its retries (about 3 s with the 1 s backoff), a wrong endpoint does not
/// wait out the eight attempts of a call to an AWS that did answer before (about 50 s).
const FIRST_CONTACT_ATTEMPTS: u32 = 3;

/// Longest the credential chain may take: instance metadata and STS each have shorter timeouts of
/// their own; this only keeps a hung provider (a `credential_process` waiting on input) from hanging us.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);

/// What the process knows about reaching AWS. One command runs per process, and the SDK's classifier
/// and interceptor hooks are not ours to give context to, hence one static.
static REACH: Reach = Reach { answered: AtomicBool::new(false), failures: AtomicU32::new(0), sent_to: Mutex::new(None) };

struct Reach {
    answered: AtomicBool,
    /// Connections that failed while nothing had answered.
    failures: AtomicU32,
    /// Where the last request went (the connector takes the request before a classifier sees it).
    sent_to: Mutex<Option<String>>,
}

/// When a connection failure ended a call and AWS never answered this process: where it was sent and
/// after how many attempts. The caller has checked the failure was a connection's (io or timeout).
pub(crate) fn unreachable() -> Option<(String, u32)> {
    let failures = REACH.failures.load(Ordering::SeqCst);
    if REACH.answered.load(Ordering::SeqCst) || failures == 0 {
        return None;
    }
    let to = REACH.sent_to.lock().ok().and_then(|t| t.clone()).unwrap_or_else(|| "its endpoint".into());
    Some((to, failures))
}

/// What to do about an endpoint that never answered.
pub(crate) fn unreachable_error(endpoint: &str, attempts: u32) -> SetupError {
    let custom = custom_endpoint_vars();
    let fix = if custom.is_empty() {
        "check the network (a proxy or firewall between here and AWS) and that the region is right: the endpoint's name comes from it".to_string()
    } else {
        format!("{} points bakeroll at {endpoint}: is that right, and is the server running?", custom.join(", "))
    };
    let attempts = if attempts == 1 { "1 attempt".to_string() } else { format!("{attempts} attempts") };
    SetupError::new(format!("cannot reach AWS at {endpoint}: no answer after {attempts}"), fix)
}

/// `AWS_ENDPOINT_URL` and the service-specific `AWS_ENDPOINT_URL_<SERVICE>` that are set.
fn custom_endpoint_vars() -> Vec<String> {
    let mut vars: Vec<String> = std::env::vars().filter(|(k, v)| k.starts_with("AWS_ENDPOINT_URL") && !v.is_empty()).map(|(k, _)| k).collect();
    vars.sort();
    vars
}

/// `scheme://host[:port]` of a request URI (no path or query: nothing secret, nothing long).
fn origin(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("https", uri));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// Marks AWS as having answered (any HTTP response, error statuses included) and stops retries of a
/// first connection that cannot be made (see the module comment). Installed on every client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FirstContact;

impl Intercept for FirstContact {
    fn name(&self) -> &'static str {
        "bakeroll-first-contact"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !REACH.answered.load(Ordering::SeqCst) {
            if let Ok(mut to) = REACH.sent_to.lock() {
                *to = Some(origin(context.request().uri()));
            }
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        REACH.answered.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl ClassifyRetry for FirstContact {
    fn name(&self) -> &'static str {
        "bakeroll-first-contact"
    }

    // Runs before the SDK's transient-error classifier (default priority): `RetryForbidden` ends the
    // classification, `NoActionIndicated` leaves the decision to it.
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        if REACH.answered.load(Ordering::SeqCst) {
            return RetryAction::NoActionIndicated;
        }
        let connection_failed = matches!(ctx.output_or_error(), Some(Err(e)) if e.as_connector_error().is_some_and(|c| c.is_io() || c.is_timeout()));
        if !connection_failed {
            return RetryAction::NoActionIndicated;
        }
        if REACH.failures.fetch_add(1, Ordering::SeqCst) + 1 < FIRST_CONTACT_ATTEMPTS {
            return RetryAction::NoActionIndicated;
        }
        RetryAction::RetryForbidden
    }
}

/// Which setting chose the region, for the messages: `named` (the pipeline file's `region`,
/// `--region`) when given, else the variable or profile aws-config took it from.
fn region_source(named: Option<&str>) -> String {
    if let Some(n) = named {
        return n.to_string();
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            return var.to_string();
        }
    }
    format!("the AWS profile `{}`", std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into()))
}

/// The region is set and usable. `named`: the setting given explicitly (else the region came from the
/// environment); `how_to_set`: what the user should write to set it (`region = "…"` in the file).
pub(crate) fn check_region(region: Option<&str>, named: Option<&str>, how_to_set: &str) -> Result<(), SetupError> {
    let Some(region) = region else {
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        return Err(SetupError::new(
            format!("no AWS region: {how_to_set} is not set, nor AWS_REGION or AWS_DEFAULT_REGION, and the AWS profile `{profile}` names none"),
            format!("set {how_to_set} (e.g. eu-west-1), or AWS_REGION"),
        ));
    };
    // The SDK's own rule (an endpoint host label); without a custom endpoint only a real region name
    // can work, so the stricter check says so before any call is built.
    let label = !region.is_empty() && region.len() <= 63 && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !region.starts_with('-') && !region.ends_with('-');
    if label && (is_region_name(region) || !custom_endpoint_vars().is_empty()) {
        return Ok(());
    }
    let from = region_source(named);
    let fix = if named.is_some() { format!("set {how_to_set} to a region such as eu-west-1") } else { format!("fix {from}, or set {how_to_set} (e.g. eu-west-1), which takes precedence") };
    Err(SetupError::new(format!("the AWS region `{region}` (from {from}) is not a region name (e.g. us-east-1, eu-west-2)"), fix))
}

/// The credential chain yields credentials. This resolves them once more than the SDK will (its cache
/// cannot be filled from outside): one extra STS or metadata request per run, the price of saying
/// "no credentials" as what it is before any work.
pub(crate) async fn check_credentials(config: &SdkConfig) -> Result<(), SetupError> {
    let Some(provider) = config.credentials_provider() else {
        return Err(SetupError::new("no AWS credential provider is configured", credentials_fix()));
    };
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            // "the credential provider was not enabled" wraps the chain's account of each provider it
            // tried: that account is the one cause worth a line.
            let not_loaded = e.to_string().contains("not enabled");
            let problem = if not_loaded { "no AWS credentials found" } else { "the AWS credentials could not be loaded" };
            let top: &(dyn std::error::Error + 'static) = &e;
            let from = if not_loaded { top.source().unwrap_or(top) } else { top };
            let mut cause = from.to_string();
            let mut next = from.source();
            while let Some(inner) = next {
                cause.push_str(&format!(": {inner}"));
                next = inner.source();
            }
            Err(SetupError::new(problem, credentials_fix()).with_source(cause))
        }
        Err(_) => Err(SetupError::new(
            format!("the AWS credentials did not load within {} s", CREDENTIALS_TIMEOUT.as_secs()),
            "check what the credential chain waits on: instance metadata, STS for AWS_ROLE_ARN, or a credential_process",
        )),
    }
}

/// The fix for credentials that did not load, for the way this process was set up.
fn credentials_fix() -> String {
    let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    if let Some(file) = var("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role = var("AWS_ROLE_ARN").unwrap_or_else(|| "(AWS_ROLE_ARN is not set)".into());
        return format!("AWS_WEB_IDENTITY_TOKEN_FILE is {file} and AWS_ROLE_ARN {role}: the file must hold the job's ID token and the role must trust it (README \"GitLab CI: components\")");
    }
    if let Some(profile) = var("AWS_PROFILE") {
        return format!("AWS_PROFILE is `{profile}`: define it in ~/.aws/config (or AWS_CONFIG_FILE), and for an SSO profile run `aws sso login --profile {profile}`");
    }
    if var("AWS_ACCESS_KEY_ID").is_some() != var("AWS_SECRET_ACCESS_KEY").is_some() {
        return "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into();
    }
    "in GitLab CI set AWS_ROLE_ARN and write the job's id_token to AWS_WEB_IDENTITY_TOKEN_FILE (README \"GitLab CI: components\"); locally set AWS_PROFILE (run `aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_must_be_set_and_look_like_one() {
        let none = check_region(None, Some("`region` in p.toml"), "`region` in p.toml").unwrap_err();
        assert!(none.problem.starts_with("no AWS region") && none.fix.as_deref().unwrap().contains("`region` in p.toml"), "{none:?}");
        let bad = check_region(Some("eu west"), Some("--region"), "--region").unwrap_err();
        assert!(bad.problem.contains("`eu west` (from --region)") && bad.fix.as_deref() == Some("set --region to a region such as eu-west-1"), "{bad:?}");
        assert!(check_region(Some("us-east-1"), None, "x").is_ok());
        assert!(check_region(Some("-x-"), None, "x").is_err());
    }

    #[test]
    fn origin_keeps_scheme_host_and_port_only() {
        assert_eq!(origin("http://127.0.0.1:9/?Action=DescribeAutoScalingGroups"), "http://127.0.0.1:9");
        assert_eq!(origin("https://ec2.us-east-1.amazonaws.com/"), "https://ec2.us-east-1.amazonaws.com");
    }
}

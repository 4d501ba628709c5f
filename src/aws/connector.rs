//! The `Connector` over the SDK: each region's clients from the one loaded configuration, and the
//! deploy account's through AssumeRole (aws-config's `AssumeRoleProvider`, chained on whatever the caller's
//! credentials are: a profile, SSO, or GitLab's web identity). Each role is assumed once per run, when
//! the first region of its account connects, so a role that cannot be assumed stops the run before any
//! work, naming the role; the other regions share that provider (and its refreshes).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::future;
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};

use crate::cloud::{actions, Cloud, CallLedger, CloudError, CloudResult, Connector, ErrorKind};
use crate::core::settings::Role;

pub struct AwsConnector {
    config: SdkConfig,
    /// The run's call ledger: every region's clients count into it, and the AssumeRole made here too.
    calls: CallLedger,
    /// The providers of the roles assumed so far, by role ARN and external id.
    assumed: tokio::sync::Mutex<HashMap<(String, Option<String>), SharedCredentialsProvider>>,
}

impl AwsConnector {
    pub(crate) fn new(config: SdkConfig, calls: CallLedger) -> Self {
        Self { config, calls, assumed: Default::default() }
    }

    fn clients(&self, config: &SdkConfig) -> Cloud {
        super::clients(config, self.calls.clone())
    }

    /// The role's credentials provider, assuming the role the first time it is asked for (held across
    /// the await so that regions connecting at once assume it once).
    async fn assume(&self, base: &SdkConfig, role: &Role) -> CloudResult<SharedCredentialsProvider> {
        let key = (role.arn.clone(), role.external_id.clone());
        let mut assumed = self.assumed.lock().await;
        if let Some(provider) = assumed.get(&key) {
            return Ok(provider.clone());
        }
        let mut builder = AssumeRoleProvider::builder(&role.arn).session_name(session_name()).configure(base);
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        self.calls.record(actions::ASSUME_ROLE.name);
        let first = provider.provide_credentials().await.map_err(|e| {
            let text = aws_sdk_ec2::error::DisplayErrorContext(&e).to_string();
            let kind = if text.contains("AccessDenied") || text.contains("not authorized") { ErrorKind::Denied } else { ErrorKind::Other };
            let code = (kind == ErrorKind::Denied).then(|| "AccessDenied".to_string());
            CloudError::with_kind(actions::ASSUME_ROLE.name, kind, code.as_deref(), format!("cannot assume role {}: {text}", role.arn))
        })?;
        let provider = SharedCredentialsProvider::new(Probed { first: std::sync::Mutex::new(Some(first)), inner: provider });
        assumed.insert(key, provider.clone());
        Ok(provider)
    }

    fn in_region(&self, region: Option<&str>) -> SdkConfig {
        match region {
            Some(r) => self.config.to_builder().region(Region::new(r.to_string())).build(),
            None => self.config.clone(),
        }
    }
}

/// The role's provider for the clients: the credentials the probe got first, then (when the clients'
/// identity cache sees them expire) AssumeRole again. AssumeRoleProvider caches nothing, so handing the
/// clients the bare provider made a second AssumeRole right after the probe.
#[derive(Debug)]
struct Probed {
    first: std::sync::Mutex<Option<Credentials>>,
    inner: AssumeRoleProvider,
}

impl ProvideCredentials for Probed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.first.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some(credentials) => future::ProvideCredentials::ready(Ok(credentials)),
            None => self.inner.provide_credentials(),
        }
    }
}

/// The session name AWS records for the assumed role (CloudTrail, the role's account): the CI job when
/// there is one. STS allows 2-64 characters of `[\w+=,.@-]`.
fn session_name() -> String {
    let job = std::env::var("CI_JOB_ID").ok().filter(|j| !j.is_empty() && j.chars().all(|c| c.is_ascii_alphanumeric()));
    let name = match job {
        Some(j) => format!("bakeroll-ci-job-{j}"),
        None => format!("bakeroll-{}", std::process::id()),
    };
    name.chars().take(64).collect()
}

#[async_trait]
impl Connector for AwsConnector {
    async fn bake(&self, region: Option<&str>) -> CloudResult<Cloud> {
        Ok(self.clients(&self.in_region(region)))
    }

    async fn deploy(&self, region: Option<&str>, role: Option<&Role>) -> CloudResult<Cloud> {
        let base = self.in_region(region);
        let Some(role) = role else { return Ok(self.clients(&base)) };
        let provider = self.assume(&base, role).await?;
        Ok(self.clients(&base.to_builder().credentials_provider(provider).build()))
    }
}

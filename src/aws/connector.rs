//! The `Connector` over the SDK: each region's clients from the one loaded configuration, and the
//! deploy account's through AssumeRole (aws-config's `AssumeRoleProvider`, chained on whatever the caller's
//! credentials are: a profile, SSO, or GitLab's web identity). The role is assumed once when connecting,
//! so a role that cannot be assumed stops the run before any work, naming the role.

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_sdk_ec2::config::{ProvideCredentials, SharedCredentialsProvider};

use crate::cloud::{actions, Cloud, CallLedger, CloudError, CloudResult, Connector, ErrorKind};
use crate::core::settings::Role;

pub struct AwsConnector {
    pub(crate) config: SdkConfig,
    /// The run's call ledger: the AssumeRole made here counts like any call.
    pub(crate) calls: CallLedger,
}

impl AwsConnector {
    fn in_region(&self, region: Option<&str>) -> SdkConfig {
        match region {
            Some(r) => self.config.to_builder().region(Region::new(r.to_string())).build(),
            None => self.config.clone(),
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
        Ok(super::clients(&self.in_region(region)))
    }

    async fn deploy(&self, region: Option<&str>, role: Option<&Role>) -> CloudResult<Cloud> {
        let base = self.in_region(region);
        let Some(role) = role else { return Ok(super::clients(&base)) };
        let mut builder = AssumeRoleProvider::builder(&role.arn).session_name(session_name()).configure(&base);
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        self.calls.record(actions::ASSUME_ROLE.name);
        provider.provide_credentials().await.map_err(|e| {
            let text = aws_sdk_ec2::error::DisplayErrorContext(&e).to_string();
            let kind = if text.contains("AccessDenied") || text.contains("not authorized") { ErrorKind::Denied } else { ErrorKind::Other };
            let code = (kind == ErrorKind::Denied).then(|| "AccessDenied".to_string());
            CloudError::with_kind(actions::ASSUME_ROLE.name, kind, code.as_deref(), format!("cannot assume role {}: {text}", role.arn))
        })?;
        Ok(super::clients(&base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()))
    }
}

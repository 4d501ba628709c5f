//! What a rollout ends in and why: the releases it moves between, the reason for a rollback (the
//! gate's verdict, AWS's own rollback, an alarm, a timeout, ...) and the outcome. Pure data, shown
//! as text (`Display`) and serialised in the JSON summary.

use std::fmt;

use serde::Serialize;

use super::health::HealthFailure;
use super::model::{Configuration, MixedPolicy, TemplateRef};

/// A release as the group sees it: a launch-template version and the image it launches — and for a
/// mixed instances policy the whole policy at that release (its override templates' versions too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub version: i64,
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<MixedPolicy>,
    /// Other images the release launches: a policy's override templates that kept an image of their own
    /// (before bakeroll first deployed the group). A fleet on any of them is on the release.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

impl Release {
    /// A release of a group on a plain launch template.
    pub fn of(version: i64, image_id: impl Into<String>) -> Self {
        Self { version, image_id: image_id.into(), policy: None, also: Vec::new() }
    }

    /// Every image an instance of this release may run.
    pub fn images(&self) -> Vec<String> {
        let mut v = vec![self.image_id.clone()];
        v.extend(self.also.iter().filter(|i| **i != self.image_id).cloned());
        v
    }

    /// What a refresh back to (or onto) this release sends as its DesiredConfiguration.
    pub fn desired(&self, template_id: &str) -> Configuration {
        match &self.policy {
            Some(p) => Configuration::Mixed(p.clone()),
            None => Configuration::Template(TemplateRef { id: template_id.into(), name: String::new(), version: self.version.to_string() }),
        }
    }

    /// An instance launched from `template`'s version `version` runs this release.
    pub fn launched(&self, primary: &str, template: &str, version: i64) -> bool {
        let of_override = || {
            self.policy.as_ref().is_some_and(|p| p.override_templates().iter().any(|t| t.id == template && t.numbered_version() == Some(version)))
        };
        (template == primary && version == self.version) || of_override()
    }
}

/// Why a deploy was rolled back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RollbackReason {
    Unhealthy { failure: HealthFailure },
    RefreshEnded { status: String, status_reason: Option<String> },
    AwsRollback { reason: Option<String> },
    /// AWS failed the refresh because alarms of its AlarmSpecification went into ALARM (and, with
    /// AutoRollback, rolled it back): `alarms` are the ones DescribeAlarms found in ALARM.
    Alarm { alarms: Vec<String>, status: String, status_reason: Option<String>, rolled_back_by_aws: bool },
    Timeout { after_secs: u64 },
    VerificationFailed { problems: Vec<String> },
    Requested,
    /// The operator asked to stop (the signal) while the refresh was in flight.
    Interrupted { signal: String },
    /// Another group of the release was convicted: every group the release moved goes back.
    Sibling { group: String },
}

impl fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unhealthy { failure } => write!(f, "{failure}"),
            Self::RefreshEnded { status, status_reason } => {
                write!(f, "the instance refresh ended {status}")?;
                status_reason.as_ref().map_or(Ok(()), |r| write!(f, ": {r}"))
            }
            Self::AwsRollback { reason } => {
                write!(f, "AWS rolled the refresh back")?;
                reason.as_ref().map_or(Ok(()), |r| write!(f, ": {r}"))
            }
            Self::Alarm { alarms, status_reason, rolled_back_by_aws, .. } => {
                let s = if alarms.len() == 1 { "" } else { "s" };
                write!(f, "CloudWatch alarm{s} {} in ALARM: AWS failed the refresh", alarms.join(", "))?;
                if *rolled_back_by_aws {
                    write!(f, " and rolled it back")?;
                }
                status_reason.as_ref().map_or(Ok(()), |r| write!(f, " ({r})"))
            }
            Self::Timeout { after_secs } => write!(f, "the refresh did not finish within {after_secs}s (timeout)"),
            Self::VerificationFailed { problems } => write!(f, "the new fleet did not verify: {}", problems.join("; ")),
            Self::Requested => write!(f, "rollback requested"),
            Self::Interrupted { signal } => write!(f, "{signal} received while the refresh was in flight"),
            Self::Sibling { group } => write!(f, "group {group} of the same release failed, so every group it moved goes back"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The fleet is verified on the new release.
    Deployed,
    /// Rolled back and verified healthy on the previous release.
    RolledBack { reason: RollbackReason },
    /// A human must look: rollback failed or the fleet could not be verified.
    Failed { reason: Option<RollbackReason>, detail: String },
}

impl Outcome {
    /// As the JSON summary names it (`outcome` of a group).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deployed => "deployed",
            Self::RolledBack { .. } => "rolled-back",
            Self::Failed { .. } => "failed",
        }
    }
}


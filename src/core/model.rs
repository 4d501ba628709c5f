//! Domain types: what bakeroll knows about images, instances, groups, refreshes and target health,
//! independent of the AWS SDK (the adapters in `crate::aws` convert into these). A group's parts
//! (`shapes.rs`) and launch data (`launch_data.rs`) live below this file and are re-exported here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use super::launch_data::{BlockDevice, Ebs, LaunchConfiguration, MetadataOptions, TemplateData, TemplateInfo};
pub use super::shapes::{
    Configuration, Distribution, GroupInstance, LeftAlone, LeftBehind, MixedPolicy, Override, PoolInstance, ProtectedInstances,
    StandbyInstances, TemplateRef, WarmPool,
};

/// Resource tags, ordered so plans and summaries print deterministically.
pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageState {
    Pending,
    Available,
    Failed,
    Deregistered,
    Other(String),
}

impl ImageState {
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "available" => Self::Available,
            "failed" | "error" | "invalid" => Self::Failed,
            "deregistered" | "disabled" => Self::Deregistered,
            other => Self::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub state: ImageState,
    /// ISO-8601 as EC2 returns it; lexical order is chronological.
    pub creation_date: String,
    pub tags: Tags,
    pub snapshot_ids: Vec<String>,
    pub state_reason: Option<String>,
    /// `x86_64`, `arm64`, ...: an override launching another architecture needs an image of its own.
    pub architecture: Option<String>,
    /// The account that owns it (the bake account for the pipeline's images); None when EC2 did not say.
    pub owner: Option<String>,
    /// Some EBS snapshot of it is encrypted (then only a customer key lets it be shared).
    pub encrypted: bool,
    /// Whether EC2 refuses to deregister it (DescribeImages' `DeregistrationProtection`).
    pub protection: Protection,
}

/// EC2 AMI deregistration protection, as DescribeImages reports it (`DeregistrationProtection`: "disabled",
/// "enabled-without-cooldown", "enabled-with-cooldown", and during a cooldown "disabled after <time>").
/// While it is anything but `Disabled`, DeregisterImage is refused ("Protect an Amazon EC2 AMI from
/// deregistration", EC2 user guide).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    #[default]
    Disabled,
    /// On, and turning it off takes effect at once (what bakeroll sets).
    Enabled,
    /// On, and turning it off leaves it on for 24 more hours (someone chose a slow removal).
    EnabledWithCooldown,
    /// Turned off, but in effect until the time EC2 names (`disabled after …`).
    CoolingDown(String),
}

impl Protection {
    /// DescribeImages' value; absent (an older endpoint) is `Disabled`, AWS's default for every image.
    pub fn parse(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            Some("enabled-without-cooldown") => Self::Enabled,
            Some("enabled-with-cooldown") => Self::EnabledWithCooldown,
            Some(s) if s.starts_with("disabled after") => Self::CoolingDown(s.trim_start_matches("disabled after").trim().to_string()),
            Some(s) if s.starts_with("enabled") => Self::Enabled,
            _ => Self::Disabled,
        }
    }

    /// EC2 refuses DeregisterImage now.
    pub fn is_on(&self) -> bool {
        *self != Self::Disabled
    }
}

/// Which images to look for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageFilter {
    pub ids: Vec<String>,
    pub owners: Vec<String>,
    /// EC2 name filter; `*` and `?` wildcards allowed.
    pub name: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Other(String),
}

impl InstanceState {
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn is_gone(&self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub image_id: String,
    /// Seconds since the Unix epoch, when EC2 reports it.
    pub launch_time: Option<i64>,
    pub tags: Tags,
}

/// What a fresh build instance is launched with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchSpec {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    /// Raw user-data script; the adapter base64-encodes it.
    pub user_data: Option<String>,
    pub tags: Tags,
}

/// One version of a launch template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LtVersion {
    pub template_id: String,
    pub template_name: String,
    pub number: i64,
    pub image_id: Option<String>,
    pub description: Option<String>,
    pub is_default: bool,
    /// ISO-8601 creation time.
    pub created: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    /// The group's top-level LaunchTemplate: None when it uses a launch configuration or a mixed
    /// instances policy (`template()` finds the policy's).
    pub launch_template: Option<TemplateRef>,
    pub mixed_instances: Option<MixedPolicy>,
    /// The launch configuration the group runs instead of a launch template, if any.
    pub launch_configuration: Option<String>,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_capacity: i32,
    pub target_group_arns: Vec<String>,
    pub instances: Vec<GroupInstance>,
    /// The group's own tags (bakeroll keeps its deploy lock in one).
    pub tags: Tags,
    /// Processes suspended with SuspendProcesses (Launch, Terminate, ...): they stall a refresh.
    pub suspended_processes: Vec<String>,
    pub warm_pool: Option<WarmPool>,
}

impl Group {
    /// The launch template the group is built on: its own, or its mixed instances policy's.
    pub fn template(&self) -> Option<&TemplateRef> {
        self.launch_template.as_ref().or(self.mixed_instances.as_ref().map(|p| &p.template))
    }

    /// What the group launches from, unless it is a launch configuration.
    pub fn configuration(&self) -> Option<Configuration> {
        match (&self.mixed_instances, &self.launch_template) {
            (Some(p), _) => Some(Configuration::Mixed(p.clone())),
            (None, Some(t)) => Some(Configuration::Template(t.clone())),
            (None, None) => None,
        }
    }

    /// Members, then warm-pool instances (when the pool was described).
    pub fn all_instances(&self) -> impl Iterator<Item = &GroupInstance> {
        let pool = self.warm_pool.as_ref().and_then(|w| w.instances.as_deref()).unwrap_or_default();
        self.instances.iter().chain(pool.iter())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub enum RefreshStatus {
    #[default]
    Pending,
    InProgress,
    Successful,
    Failed,
    Cancelling,
    Cancelled,
    RollbackInProgress,
    RollbackFailed,
    RollbackSuccessful,
    Baking,
    Unknown(String),
}

impl RefreshStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "InProgress" => Self::InProgress,
            "Successful" => Self::Successful,
            "Failed" => Self::Failed,
            "Cancelling" => Self::Cancelling,
            "Cancelled" => Self::Cancelled,
            "RollbackInProgress" => Self::RollbackInProgress,
            "RollbackFailed" => Self::RollbackFailed,
            "RollbackSuccessful" => Self::RollbackSuccessful,
            "Baking" => Self::Baking,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "InProgress",
            Self::Successful => "Successful",
            Self::Failed => "Failed",
            Self::Cancelling => "Cancelling",
            Self::Cancelled => "Cancelled",
            Self::RollbackInProgress => "RollbackInProgress",
            Self::RollbackFailed => "RollbackFailed",
            Self::RollbackSuccessful => "RollbackSuccessful",
            Self::Baking => "Baking",
            Self::Unknown(s) => s,
        }
    }

    /// Terminal per the Auto Scaling API reference; an unknown status is treated as not terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Cancelled | Self::RollbackFailed | Self::RollbackSuccessful
        )
    }

    /// A refresh in one of these blocks a new StartInstanceRefresh on the group.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Pending | Self::InProgress | Self::Cancelling | Self::RollbackInProgress | Self::Baking
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Refresh {
    pub id: String,
    pub group: String,
    pub status: RefreshStatus,
    pub status_reason: Option<String>,
    pub percentage_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    /// The launch-template version the refresh moves the group to, when it has a desired configuration
    /// (a mixed instances policy's own template's).
    pub desired_version: Option<String>,
    /// The whole DesiredConfiguration, when it has one.
    pub desired: Option<Configuration>,
    pub rollback_reason: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// ProgressDetails.WarmPoolProgress, for a group with a warm pool (AWS replaces it after the
    /// InService instances).
    pub warm_pool_percentage: Option<i32>,
    pub warm_pool_to_update: Option<i32>,
}

/// Preferences passed to StartInstanceRefresh, in AWS units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshPrefs {
    pub min_healthy_percentage: i32,
    pub max_healthy_percentage: i32,
    pub instance_warmup: Option<Duration>,
    pub checkpoints: Vec<i32>,
    pub checkpoint_delay: Option<Duration>,
    pub skip_matching: bool,
    pub auto_rollback: bool,
    pub bake_time: Option<Duration>,
    pub alarms: Vec<String>,
    /// Not sent when None: AWS's default (`Wait`) applies.
    pub standby_instances: Option<StandbyInstances>,
    pub scale_in_protected_instances: Option<ProtectedInstances>,
}

impl RefreshPrefs {
    /// Which instances the refresh leaves on their image because these preferences say so.
    pub fn left_alone(&self) -> LeftAlone {
        LeftAlone::of(self.standby_instances, self.scale_in_protected_instances)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshRequest {
    pub group: String,
    /// DesiredConfiguration: a numbered launch-template version, or a whole mixed instances policy.
    pub desired: Configuration,
    pub prefs: RefreshPrefs,
}

impl RefreshRequest {
    /// A refresh to `version` of a plain launch template.
    pub fn template(group: &str, template_id: &str, version: i64, prefs: RefreshPrefs) -> Self {
        let t = TemplateRef { id: template_id.into(), name: String::new(), version: version.to_string() };
        Self { group: group.into(), desired: Configuration::Template(t), prefs }
    }

    /// The desired version of the configuration's own template (what DescribeInstanceRefreshes reports).
    pub fn version(&self) -> Option<i64> {
        self.desired.template().numbered_version()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
    Other(String),
}

impl TargetState {
    pub fn parse(s: &str) -> Self {
        match s {
            "initial" => Self::Initial,
            "healthy" => Self::Healthy,
            "unhealthy" => Self::Unhealthy,
            "unused" => Self::Unused,
            "draining" => Self::Draining,
            "unavailable" => Self::Unavailable,
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
            Self::Other(s) => s,
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetHealth {
    pub target_id: String,
    pub port: Option<i32>,
    pub state: TargetState,
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// A CloudWatch alarm's state (`OK`, `ALARM`, `INSUFFICIENT_DATA`), as DescribeAlarms reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub name: String,
    pub state: String,
    /// Why it is in that state (CloudWatch's StateReason).
    pub reason: Option<String>,
}

impl Alarm {
    pub fn firing(&self) -> bool {
        self.state == "ALARM"
    }
}

/// An EBS snapshot as `prune` sees it: enough to find the pipeline's and to tell it still exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub tags: Tags,
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`: letters, dash-separated words, a number.
/// What the pipeline file's `region` must be, and what a region from the environment must be when no
/// custom endpoint makes another name usable.
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

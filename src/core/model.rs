//! Domain types: what bakeroll knows about images, instances, groups, refreshes and target health,
//! independent of the AWS SDK (the adapters in `crate::aws` convert into these).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

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

/// The launch template an Auto Scaling group points at, as the group stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    pub id: String,
    pub name: String,
    /// A number, `$Latest` or `$Default`.
    pub version: String,
}

impl TemplateRef {
    /// AWS can only roll back to a numbered version; `$Latest` / `$Default` make a refresh irreversible.
    pub fn numbered_version(&self) -> Option<i64> {
        self.version.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInstance {
    pub id: String,
    /// Pending, Pending:Wait, InService, Terminating, ... (as Auto Scaling reports it).
    pub lifecycle_state: String,
    /// Healthy / Unhealthy.
    pub health_status: String,
    /// The launch template and version the instance was launched from, as DescribeAutoScalingGroups
    /// reports it per instance (None for launch configurations). With the release's versions known,
    /// this names the instance's image without asking EC2.
    pub launch_template: Option<TemplateRef>,
}

impl GroupInstance {
    /// A member as fixtures and tests write it: in service, healthy, template unknown.
    pub fn in_service_healthy(id: &str) -> Self {
        Self { id: id.into(), lifecycle_state: "InService".into(), health_status: "Healthy".into(), launch_template: None }
    }

    pub fn in_service(&self) -> bool {
        self.lifecycle_state == "InService"
    }
    /// Held by a launch lifecycle hook (`Pending:Wait`, or `Warmed:Pending:Wait` leaving a warm pool)
    /// until the application completes the action or the heartbeat times out.
    pub fn waiting_on_hook(&self) -> bool {
        self.lifecycle_state.ends_with("Pending:Wait")
    }
    /// Still part of the fleet (not being terminated or detached).
    pub fn is_member(&self) -> bool {
        !(self.lifecycle_state.starts_with("Terminat")
            || self.lifecycle_state.starts_with("Detach")
            || self.lifecycle_state == "Standby")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    /// None when the group uses a launch configuration or a mixed-instances policy.
    pub launch_template: Option<TemplateRef>,
    /// True when the template comes from a mixed-instances policy (not supported for deploys).
    pub mixed_instances_policy: bool,
    /// The launch configuration the group runs instead of a launch template, if any.
    pub launch_configuration: Option<String>,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_capacity: i32,
    pub target_group_arns: Vec<String>,
    pub instances: Vec<GroupInstance>,
    /// The group's own tags (bakeroll keeps its deploy lock in one).
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RefreshStatus {
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refresh {
    pub id: String,
    pub group: String,
    pub status: RefreshStatus,
    pub status_reason: Option<String>,
    pub percentage_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    /// The launch-template version the refresh moves the group to, when it has a desired configuration.
    pub desired_version: Option<String>,
    pub rollback_reason: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshRequest {
    pub group: String,
    pub template_id: String,
    pub version: i64,
    pub prefs: RefreshPrefs,
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

//! The domain-level cloud interface: the traits the engine calls, the error they return, and a
//! per-action call ledger, the clock waits run on. Implemented by `crate::aws` (the real SDK) and
//! `crate::fake` (in memory); `dry_run` wraps either so that writes and waits are only recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::core::metrics::{MetricRequest, Series};
use crate::core::model::*;

pub mod actions;
mod clock;
pub mod dry_run;
mod error;
pub use clock::{Clock, TokioClock, Wait};
pub use error::{CloudError, CloudResult, ErrorKind, SetupError};

/// An EC2 write asked with `DryRun`: the same request the real call would send, so EC2 checks the same
/// permission (tag-on-create and request-tag conditions included).
#[derive(Debug, Clone, PartialEq)]
pub enum DryRunOp {
    RunInstances(LaunchSpec),
    CreateImage { instance_id: String, name: String, description: String, no_reboot: bool, tags: Tags },
    CreateTags { resource_ids: Vec<String>, tags: Tags },
    TerminateInstances { ids: Vec<String> },
    DeregisterImage { image_id: String },
    DeleteSnapshot { snapshot_id: String },
    CreateLaunchTemplateVersion { template_id: String, source_version: i64, image_id: String, description: String },
    ModifyLaunchTemplate { template_id: String, default_version: i64 },
    CreateLaunchTemplate { name: String, data: TemplateData, description: String },
    DeleteLaunchTemplateVersion { template_id: String, version: i64 },
    DeleteTags { resource_ids: Vec<String>, keys: Vec<String> },
    EnableImageDeregistrationProtection { image_id: String },
    DisableImageDeregistrationProtection { image_id: String },
}

impl DryRunOp {
    /// The IAM action the request needs.
    pub fn action(&self) -> &'static actions::Action {
        match self {
            Self::RunInstances(_) => &actions::RUN_INSTANCES,
            Self::CreateImage { .. } => &actions::CREATE_IMAGE,
            Self::CreateTags { .. } => &actions::CREATE_TAGS,
            Self::TerminateInstances { .. } => &actions::TERMINATE_INSTANCES,
            Self::DeregisterImage { .. } => &actions::DEREGISTER_IMAGE,
            Self::DeleteSnapshot { .. } => &actions::DELETE_SNAPSHOT,
            Self::CreateLaunchTemplateVersion { .. } => &actions::CREATE_LT_VERSION,
            Self::ModifyLaunchTemplate { .. } => &actions::MODIFY_LT,
            Self::CreateLaunchTemplate { .. } => &actions::CREATE_LT,
            Self::DeleteLaunchTemplateVersion { .. } => &actions::DELETE_LT_VERSIONS,
            Self::DeleteTags { .. } => &actions::DELETE_TAGS,
            Self::EnableImageDeregistrationProtection { .. } => &actions::ENABLE_IMAGE_PROTECTION,
            Self::DisableImageDeregistrationProtection { .. } => &actions::DISABLE_IMAGE_PROTECTION,
        }
    }
}

#[async_trait]
pub trait Ec2Api: Send + Sync {
    async fn find_images(&self, filter: &ImageFilter) -> CloudResult<Vec<Image>>;
    /// Launches one instance and returns it as EC2 reported it.
    async fn launch_instance(&self, spec: &LaunchSpec) -> CloudResult<Instance>;
    /// Instances by id; ids EC2 does not know are simply absent from the answer.
    async fn describe_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>>;
    /// Non-terminated instances carrying every one of `tags`.
    async fn find_instances(&self, tags: &Tags) -> CloudResult<Vec<Instance>>;
    /// Some(true) once both EC2 status checks pass (`ready = "status-ok"`).
    async fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>>;
    /// The decoded console output, possibly empty.
    async fn console_output(&self, id: &str) -> CloudResult<String>;
    async fn create_image(
        &self,
        instance_id: &str,
        name: &str,
        description: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> CloudResult<String>;
    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()>;
    /// Removes the tags with these keys (whatever their values) from the resources.
    async fn delete_tags(&self, resource_ids: &[String], keys: &[String]) -> CloudResult<()>;
    /// EnableImageDeregistrationProtection without cooldown: DeregisterImage is refused until it is off.
    async fn enable_deregistration_protection(&self, image_id: &str) -> CloudResult<()>;
    /// DisableImageDeregistrationProtection (at once for protection enabled without cooldown).
    async fn disable_deregistration_protection(&self, image_id: &str) -> CloudResult<()>;
    async fn terminate_instances(&self, ids: &[String]) -> CloudResult<()>;
    async fn deregister_image(&self, image_id: &str) -> CloudResult<()>;
    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()>;
    /// Snapshots owned by this account carrying every one of `tags` (prune verifies deletions with it
    /// and finds snapshots whose image is already gone).
    async fn find_snapshots(&self, tags: &Tags) -> CloudResult<Vec<Snapshot>>;
    /// Versions of a template. `versions` empty = every version (all pages), else the listed ones
    /// (numbers, `$Latest`, `$Default`).
    async fn launch_template_versions(&self, template_id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>>;
    /// New version copied from `source_version`, overriding only the image id.
    async fn create_launch_template_version(
        &self,
        template_id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion>;
    async fn set_default_version(&self, template_id: &str, version: i64) -> CloudResult<()>;
    /// The launch data of one version (DescribeLaunchTemplateVersions); None when it does not exist.
    async fn launch_template_data(&self, template_id: &str, version: i64) -> CloudResult<Option<TemplateData>>;
    /// The launch template named `name`, if there is one (DescribeLaunchTemplates).
    async fn find_launch_template(&self, name: &str) -> CloudResult<Option<TemplateInfo>>;
    /// CreateLaunchTemplate: version 1 (the default) holds `data`, described by `description`.
    async fn create_launch_template(&self, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion>;
    /// Deletes one version (one this run created and never used); a version already gone is Ok.
    async fn delete_launch_template_version(&self, template_id: &str, version: i64) -> CloudResult<()>;
    /// Sends `op` with `DryRun`: Ok when EC2 answers `DryRunOperation` (the call would be allowed), a
    /// `Denied` error for `UnauthorizedOperation`, any other error as EC2 gave it. Changes nothing.
    async fn check_permission(&self, op: &DryRunOp) -> CloudResult<()>;
}

#[async_trait]
pub trait AutoScalingApi: Send + Sync {
    async fn describe_group(&self, name: &str) -> CloudResult<Option<Group>>;
    /// Several groups in one DescribeAutoScalingGroups (one call per 50 names, every page): what one poll
    /// of a release with many groups in flight asks. Unknown names are absent from the answer.
    async fn describe_groups(&self, names: &[String]) -> CloudResult<Vec<Group>>;
    /// UpdateAutoScalingGroup to launch from `config` (a template version, or a mixed instances policy):
    /// pins `$Latest`/`$Default` to a number, and moves a launch-configuration group to its adopted
    /// template. No instance is replaced.
    async fn set_group_configuration(&self, group: &str, config: &Configuration) -> CloudResult<()>;
    /// The instances of the group's warm pool (DescribeWarmPool, every page).
    async fn describe_warm_pool(&self, group: &str) -> CloudResult<Vec<GroupInstance>>;
    /// A launch configuration by name (DescribeLaunchConfigurations); None when it does not exist.
    async fn describe_launch_configuration(&self, name: &str) -> CloudResult<Option<LaunchConfiguration>>;
    /// Sets one tag on the group itself (not propagated to instances).
    async fn set_group_tag(&self, group: &str, key: &str, value: &str) -> CloudResult<()>;
    async fn delete_group_tag(&self, group: &str, key: &str) -> CloudResult<()>;
    async fn start_instance_refresh(&self, req: &RefreshRequest) -> CloudResult<String>;
    /// Newest first, as AWS returns them; `ids` empty = all kept refreshes of the group.
    async fn describe_instance_refreshes(&self, group: &str, ids: &[String]) -> CloudResult<Vec<Refresh>>;
    async fn cancel_instance_refresh(&self, group: &str) -> CloudResult<String>;
    async fn rollback_instance_refresh(&self, group: &str) -> CloudResult<String>;
}

/// A copy of an image into the region of the client that makes it (CopyImage).
#[derive(Debug, Clone, PartialEq)]
pub struct CopyRequest {
    pub source_region: String,
    pub source_image: String,
    /// The copy's name: the source's (AMI names are unique per account and region).
    pub name: String,
    pub description: String,
    /// Encrypt the copy's snapshots with this KMS key (an id, ARN or alias of the destination region).
    pub kms_key_id: Option<String>,
    /// The same for every attempt at this copy (a retry, a re-run): CopyImage then answers with the first
    /// copy instead of making a second.
    pub client_token: String,
    /// Tags for the copy and for its snapshots, set as they are created (TagSpecifications): the source's
    /// own and the copy's provenance. (CopyImageTags is not used: it tags the image only, not its
    /// snapshots, and would carry the source's own provenance over the copy's.)
    pub image_tags: Tags,
    pub snapshot_tags: Tags,
}

/// Copies and sharing: what a release needs to reach other regions and accounts (issue 21).
#[async_trait]
pub trait ImageCopyApi: Send + Sync {
    /// CopyImage into this client's region; the new image's id (pending at first).
    async fn copy_image(&self, req: &CopyRequest) -> CloudResult<String>;
    /// ModifyImageAttribute: a launch permission for `account`.
    async fn share_image(&self, image_id: &str, account: &str) -> CloudResult<()>;
    /// ModifySnapshotAttribute: a create-volume permission for `account`.
    async fn share_snapshot(&self, snapshot_id: &str, account: &str) -> CloudResult<()>;
}

#[async_trait]
pub trait Elbv2Api: Send + Sync {
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>>;
    /// The load balancers (ARNs) each target group sends to, from DescribeTargetGroups'
    /// LoadBalancerArns; a target group no load balancer uses maps to an empty list.
    async fn target_group_balancers(&self, target_group_arns: &[String]) -> CloudResult<BTreeMap<String, Vec<String>>>;
}

#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// The named alarms (metric or composite) with their state; names CloudWatch does not know are
    /// absent from the answer (DescribeAlarms does not fail on them).
    async fn describe_alarms(&self, names: &[String]) -> CloudResult<Vec<Alarm>>;
    /// GetMetricData for every series of `req` (one call per 500 series, every page): the datapoints
    /// CloudWatch has published, per series, in any order; a series without data has no points.
    async fn metric_data(&self, req: &MetricRequest) -> CloudResult<Vec<Series>>;
}

/// Makes the clouds of the regions and account an environment lives in (issue 21): the SDK's (`aws`),
/// the fake's. A role that cannot be assumed is an error here, before any work.
#[async_trait]
pub trait Connector: Send + Sync {
    /// `region`'s cloud (None: the bake region) with the caller's credentials: copies, sharing, the
    /// release records on the bake account's images.
    async fn bake(&self, region: Option<&str>) -> CloudResult<Cloud>;
    /// `region`'s cloud with `role`'s credentials, assumed from the caller's (None: the caller's own).
    async fn deploy(&self, region: Option<&str>, role: Option<&crate::core::settings::Role>) -> CloudResult<Cloud>;
}

/// Counts calls per IAM action (`ec2:CreateImage`), for the JSON summary and the IAM policy check.
#[derive(Debug, Clone, Default)]
pub struct CallLedger(Arc<Mutex<BTreeMap<String, u32>>>);

impl CallLedger {
    pub fn record(&self, action: &str) {
        let mut map = self.0.lock().expect("call ledger poisoned");
        *map.entry(action.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u32> {
        self.0.lock().expect("call ledger poisoned").clone()
    }
}

/// Everything the engine needs to talk to one region, and the clock its waits run on.
#[derive(Clone)]
pub struct Cloud {
    pub ec2: Arc<dyn Ec2Api>,
    pub autoscaling: Arc<dyn AutoScalingApi>,
    pub elbv2: Arc<dyn Elbv2Api>,
    pub cloudwatch: Arc<dyn CloudWatchApi>,
    pub copies: Arc<dyn ImageCopyApi>,
    pub calls: CallLedger,
    pub clock: Arc<dyn Clock>,
}

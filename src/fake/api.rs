//! The domain traits implemented over the fake's state: every call is recorded in the ledger under its IAM
//! action, may be delayed or failed by injected faults, then steps the world to now and is served.

use async_trait::async_trait;

use super::FakeCloud;
use crate::cloud::{AutoScalingApi, CloudResult, DryRunOp, Ec2Api, Elbv2Api};
use crate::core::model::*;

/// IAM action names, as the ledger records them and as an IAM policy must allow them.
pub mod act {
    pub const DESCRIBE_IMAGES: &str = "ec2:DescribeImages";
    pub const RUN_INSTANCES: &str = "ec2:RunInstances";
    pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
    pub const DESCRIBE_INSTANCE_STATUS: &str = "ec2:DescribeInstanceStatus";
    pub const GET_CONSOLE_OUTPUT: &str = "ec2:GetConsoleOutput";
    pub const CREATE_IMAGE: &str = "ec2:CreateImage";
    pub const CREATE_TAGS: &str = "ec2:CreateTags";
    pub const TERMINATE_INSTANCES: &str = "ec2:TerminateInstances";
    pub const DEREGISTER_IMAGE: &str = "ec2:DeregisterImage";
    pub const DELETE_SNAPSHOT: &str = "ec2:DeleteSnapshot";
    pub const DESCRIBE_SNAPSHOTS: &str = "ec2:DescribeSnapshots";
    pub const DESCRIBE_LT_VERSIONS: &str = "ec2:DescribeLaunchTemplateVersions";
    pub const CREATE_LT_VERSION: &str = "ec2:CreateLaunchTemplateVersion";
    pub const MODIFY_LT: &str = "ec2:ModifyLaunchTemplate";
    pub const DESCRIBE_GROUPS: &str = "autoscaling:DescribeAutoScalingGroups";
    pub const UPDATE_GROUP: &str = "autoscaling:UpdateAutoScalingGroup";
    pub const START_REFRESH: &str = "autoscaling:StartInstanceRefresh";
    pub const DESCRIBE_REFRESHES: &str = "autoscaling:DescribeInstanceRefreshes";
    pub const CANCEL_REFRESH: &str = "autoscaling:CancelInstanceRefresh";
    pub const ROLLBACK_REFRESH: &str = "autoscaling:RollbackInstanceRefresh";
    pub const DESCRIBE_TARGET_HEALTH: &str = "elasticloadbalancing:DescribeTargetHealth";
}

/// One handle implements all three traits; `FakeCloud::cloud` hands it out three times.
#[derive(Clone)]
pub(crate) struct FakeApi(pub FakeCloud);

impl FakeApi {
    /// Ledger, latency, injected faults — in that order, so a failed call is still counted.
    async fn enter(&self, action: &str) -> CloudResult<()> {
        self.0.calls.record(action);
        if let Some(latency) = self.0.with(|s| s.faults.latency(action)) {
            tokio::time::sleep(latency).await;
        }
        self.0.with(|s| s.faults.check(action))
    }
}

#[async_trait]
impl Ec2Api for FakeApi {
    async fn find_images(&self, filter: &ImageFilter) -> CloudResult<Vec<Image>> {
        self.enter(act::DESCRIBE_IMAGES).await?;
        self.0.with(|s| s.find_images(filter))
    }

    async fn launch_instance(&self, spec: &LaunchSpec) -> CloudResult<Instance> {
        self.enter(act::RUN_INSTANCES).await?;
        self.0.with(|s| s.launch_instance(spec))
    }

    async fn describe_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        self.enter(act::DESCRIBE_INSTANCES).await?;
        Ok(self.0.with(|s| s.describe_instances(ids)))
    }

    async fn find_instances(&self, tags: &Tags) -> CloudResult<Vec<Instance>> {
        self.enter(act::DESCRIBE_INSTANCES).await?;
        Ok(self.0.with(|s| s.find_instances(tags)))
    }

    async fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>> {
        self.enter(act::DESCRIBE_INSTANCE_STATUS).await?;
        self.0.with(|s| s.instance_status_ok(id))
    }

    async fn console_output(&self, id: &str) -> CloudResult<String> {
        self.enter(act::GET_CONSOLE_OUTPUT).await?;
        self.0.with(|s| s.console_output(id))
    }

    async fn create_image(
        &self,
        instance_id: &str,
        name: &str,
        _description: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> CloudResult<String> {
        self.enter(act::CREATE_IMAGE).await?;
        self.0.with(|s| s.create_image(instance_id, name, no_reboot, tags))
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        self.enter(act::CREATE_TAGS).await?;
        self.0.with(|s| s.create_tags(resource_ids, tags))
    }

    async fn terminate_instances(&self, ids: &[String]) -> CloudResult<()> {
        self.enter(act::TERMINATE_INSTANCES).await?;
        self.0.with(|s| s.terminate_instances(ids, s.now))
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        self.enter(act::DEREGISTER_IMAGE).await?;
        self.0.with(|s| s.deregister_image(image_id))
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        self.enter(act::DELETE_SNAPSHOT).await?;
        self.0.with(|s| s.delete_snapshot(snapshot_id))
    }

    async fn find_snapshots(&self, tags: &Tags) -> CloudResult<Vec<Snapshot>> {
        self.enter(act::DESCRIBE_SNAPSHOTS).await?;
        Ok(self.0.with(|s| s.find_snapshots(tags)))
    }

    async fn launch_template_versions(&self, template_id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>> {
        self.enter(act::DESCRIBE_LT_VERSIONS).await?;
        self.0.with(|s| s.lt_versions(template_id, versions))
    }

    async fn create_launch_template_version(
        &self,
        template_id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion> {
        self.enter(act::CREATE_LT_VERSION).await?;
        self.0
            .with(|s| s.create_lt_version(template_id, source_version, image_id, description))
    }

    async fn set_default_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        self.enter(act::MODIFY_LT).await?;
        self.0.with(|s| s.set_default_version(template_id, version))
    }

    /// EC2's DryRun: counted and refused like the real call (`deny()` answers `UnauthorizedOperation`,
    /// injected faults apply), otherwise "would have succeeded"; the world is never touched.
    async fn check_permission(&self, op: &DryRunOp) -> CloudResult<()> {
        self.enter(op.action().name).await
    }
}

#[async_trait]
impl AutoScalingApi for FakeApi {
    /// Unknown groups are Ok(None): DescribeAutoScalingGroups answers an empty list.
    async fn describe_group(&self, name: &str) -> CloudResult<Option<Group>> {
        self.enter(act::DESCRIBE_GROUPS).await?;
        Ok(self.0.with(|s| s.groups.get(name).map(|g| s.group_view(g))))
    }

    async fn set_group_template_version(&self, group: &str, template_id: &str, version: &str) -> CloudResult<()> {
        self.enter(act::UPDATE_GROUP).await?;
        self.0
            .with(|s| s.set_group_template_version(group, template_id, version))
    }

    async fn start_instance_refresh(&self, req: &RefreshRequest) -> CloudResult<String> {
        self.enter(act::START_REFRESH).await?;
        self.0.with(|s| s.start_refresh(req))
    }

    async fn describe_instance_refreshes(&self, group: &str, ids: &[String]) -> CloudResult<Vec<Refresh>> {
        self.enter(act::DESCRIBE_REFRESHES).await?;
        Ok(self.0.with(|s| s.describe_refreshes(group, ids)))
    }

    async fn cancel_instance_refresh(&self, group: &str) -> CloudResult<String> {
        self.enter(act::CANCEL_REFRESH).await?;
        self.0
            .with(|s| s.cancel_refresh(group, "Cancelled due to user request."))
    }

    async fn rollback_instance_refresh(&self, group: &str) -> CloudResult<String> {
        self.enter(act::ROLLBACK_REFRESH).await?;
        self.0.with(|s| s.rollback_refresh(group))
    }
}

#[async_trait]
impl Elbv2Api for FakeApi {
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.enter(act::DESCRIBE_TARGET_HEALTH).await?;
        self.0.with(|s| s.target_health(target_group_arn))
    }
}

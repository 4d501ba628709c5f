//! The domain traits implemented over the fake's state: every call is recorded in the ledger under its IAM
//! action, may be delayed or failed by injected faults, then steps the world to now and is served.

use crate::cloud::actions;
use async_trait::async_trait;

use super::FakeCloud;
use crate::cloud::{AutoScalingApi, CloudError, CloudResult, CloudWatchApi, CopyRequest, DryRunOp, Ec2Api, Elbv2Api, ErrorKind, ImageCopyApi};
use crate::core::model::*;

/// A served call's answer, unless a fault loses it (the call has taken effect all the same).
fn answer<T>(fake: &FakeCloud, action: &str, result: CloudResult<T>) -> CloudResult<T> {
    if result.is_ok() && fake.with(|s| s.faults.lose_answer(action)) {
        return Err(CloudError::with_kind(action, ErrorKind::Transient, None, "connection reset: the request was carried out, its answer lost"));
    }
    result
}

/// One handle implements every trait; `FakeCloud::cloud` hands it out once per service.
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
        self.enter(actions::DESCRIBE_IMAGES.name).await?;
        self.0.with(|s| s.find_images(filter))
    }

    async fn launch_instance(&self, spec: &LaunchSpec) -> CloudResult<Instance> {
        self.enter(actions::RUN_INSTANCES.name).await?;
        answer(&self.0, actions::RUN_INSTANCES.name, self.0.with(|s| s.launch_instance(spec)))
    }

    async fn describe_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        self.enter(actions::DESCRIBE_INSTANCES.name).await?;
        Ok(self.0.with(|s| s.describe_instances(ids)))
    }

    async fn find_instances(&self, tags: &Tags) -> CloudResult<Vec<Instance>> {
        self.enter(actions::DESCRIBE_INSTANCES.name).await?;
        Ok(self.0.with(|s| s.find_instances(tags)))
    }

    async fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>> {
        self.enter(actions::DESCRIBE_INSTANCE_STATUS.name).await?;
        self.0.with(|s| s.instance_status_ok(id))
    }

    async fn console_output(&self, id: &str) -> CloudResult<String> {
        self.enter(actions::GET_CONSOLE_OUTPUT.name).await?;
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
        self.enter(actions::CREATE_IMAGE.name).await?;
        self.0.with(|s| s.create_image(instance_id, name, no_reboot, tags))
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        self.enter(actions::CREATE_TAGS.name).await?;
        self.0.with(|s| s.create_tags(resource_ids, tags))
    }

    async fn delete_tags(&self, resource_ids: &[String], keys: &[String]) -> CloudResult<()> {
        self.enter(actions::DELETE_TAGS.name).await?;
        self.0.with(|s| s.delete_tags(resource_ids, keys))
    }

    async fn enable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        self.enter(actions::ENABLE_IMAGE_PROTECTION.name).await?;
        self.0.with(|s| s.set_protection(actions::ENABLE_IMAGE_PROTECTION.name, image_id, true))
    }

    async fn disable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        self.enter(actions::DISABLE_IMAGE_PROTECTION.name).await?;
        self.0.with(|s| s.set_protection(actions::DISABLE_IMAGE_PROTECTION.name, image_id, false))
    }

    async fn terminate_instances(&self, ids: &[String]) -> CloudResult<()> {
        self.enter(actions::TERMINATE_INSTANCES.name).await?;
        self.0.with(|s| s.terminate_instances(ids, s.now))
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        self.enter(actions::DEREGISTER_IMAGE.name).await?;
        self.0.with(|s| s.deregister_image(image_id))
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        self.enter(actions::DELETE_SNAPSHOT.name).await?;
        self.0.with(|s| s.delete_snapshot(snapshot_id))
    }

    async fn find_snapshots(&self, tags: &Tags) -> CloudResult<Vec<Snapshot>> {
        self.enter(actions::DESCRIBE_SNAPSHOTS.name).await?;
        Ok(self.0.with(|s| s.find_snapshots(tags)))
    }

    async fn launch_template_versions(&self, template_id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>> {
        self.enter(actions::DESCRIBE_LT_VERSIONS.name).await?;
        self.0.with(|s| s.lt_versions(template_id, versions))
    }

    async fn create_launch_template_version(
        &self,
        template_id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion> {
        self.enter(actions::CREATE_LT_VERSION.name).await?;
        self.0
            .with(|s| s.create_lt_version(template_id, source_version, image_id, description))
    }

    async fn set_default_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        self.enter(actions::MODIFY_LT.name).await?;
        self.0.with(|s| s.set_default_version(template_id, version))
    }

    async fn launch_template_data(&self, template_id: &str, version: i64) -> CloudResult<Option<TemplateData>> {
        self.enter(actions::DESCRIBE_LT_VERSIONS.name).await?;
        self.0.with(|s| s.template_data(template_id, version))
    }

    async fn find_launch_template(&self, name: &str) -> CloudResult<Option<TemplateInfo>> {
        self.enter(actions::DESCRIBE_LTS.name).await?;
        Ok(self.0.with(|s| s.find_template(name)))
    }

    async fn create_launch_template(&self, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion> {
        self.enter(actions::CREATE_LT.name).await?;
        answer(&self.0, actions::CREATE_LT.name, self.0.with(|s| s.create_template(name, data, description)))
    }

    async fn delete_launch_template_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        self.enter(actions::DELETE_LT_VERSIONS.name).await?;
        self.0.with(|s| s.delete_lt_version(template_id, version))
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
        self.enter(actions::DESCRIBE_GROUPS.name).await?;
        Ok(self.0.with(|s| s.groups.get(name).map(|g| s.group_view(g))))
    }

    async fn describe_groups(&self, names: &[String]) -> CloudResult<Vec<Group>> {
        let mut found = Vec::new();
        for chunk in names.chunks(50) {
            self.enter(actions::DESCRIBE_GROUPS.name).await?;
            found.extend(self.0.with(|s| chunk.iter().filter_map(|n| s.groups.get(n).map(|g| s.group_view(g))).collect::<Vec<_>>()));
        }
        Ok(found)
    }

    async fn set_group_configuration(&self, group: &str, config: &Configuration) -> CloudResult<()> {
        self.enter(actions::UPDATE_GROUP.name).await?;
        answer(&self.0, actions::UPDATE_GROUP.name, self.0.with(|s| s.set_group_configuration(group, config)))
    }

    async fn describe_warm_pool(&self, group: &str) -> CloudResult<Vec<GroupInstance>> {
        self.enter(actions::DESCRIBE_WARM_POOL.name).await?;
        self.0.with(|s| {
            s.group_or_err(actions::DESCRIBE_WARM_POOL.name, group)?;
            Ok(s.warm_view(group))
        })
    }

    async fn describe_launch_configuration(&self, name: &str) -> CloudResult<Option<LaunchConfiguration>> {
        self.enter(actions::DESCRIBE_LCS.name).await?;
        Ok(self.0.with(|s| s.launch_configs.get(name).cloned()))
    }

    async fn set_group_tag(&self, group: &str, key: &str, value: &str) -> CloudResult<()> {
        self.enter(actions::TAG_GROUP.name).await?;
        self.0.with(|s| s.set_group_tag(group, key, Some(value)))
    }

    async fn delete_group_tag(&self, group: &str, key: &str) -> CloudResult<()> {
        self.enter(actions::UNTAG_GROUP.name).await?;
        self.0.with(|s| s.set_group_tag(group, key, None))
    }

    async fn start_instance_refresh(&self, req: &RefreshRequest) -> CloudResult<String> {
        self.enter(actions::START_REFRESH.name).await?;
        answer(&self.0, actions::START_REFRESH.name, self.0.with(|s| s.start_refresh(req)))
    }

    async fn describe_instance_refreshes(&self, group: &str, ids: &[String]) -> CloudResult<Vec<Refresh>> {
        self.enter(actions::DESCRIBE_REFRESHES.name).await?;
        Ok(self.0.with(|s| s.describe_refreshes(group, ids)))
    }

    async fn cancel_instance_refresh(&self, group: &str) -> CloudResult<String> {
        self.enter(actions::CANCEL_REFRESH.name).await?;
        self.0
            .with(|s| s.cancel_refresh(group, "Cancelled due to user request."))
    }

    async fn rollback_instance_refresh(&self, group: &str) -> CloudResult<String> {
        self.enter(actions::ROLLBACK_REFRESH.name).await?;
        self.0.with(|s| s.rollback_refresh(group))
    }
}

#[async_trait]
impl Elbv2Api for FakeApi {
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.enter(actions::DESCRIBE_TARGET_HEALTH.name).await?;
        self.0.with(|s| s.target_health(target_group_arn))
    }

    async fn target_group_balancers(&self, target_group_arns: &[String]) -> CloudResult<std::collections::BTreeMap<String, Vec<String>>> {
        self.enter(actions::DESCRIBE_TARGET_GROUPS.name).await?;
        self.0.with(|s| s.target_group_balancers(target_group_arns))
    }
}

#[async_trait]
impl CloudWatchApi for FakeApi {
    async fn describe_alarms(&self, names: &[String]) -> CloudResult<Vec<Alarm>> {
        self.enter(actions::DESCRIBE_ALARMS.name).await?;
        Ok(self.0.with(|s| s.describe_alarms(names)))
    }

    async fn metric_data(&self, req: &crate::core::metrics::MetricRequest) -> CloudResult<Vec<crate::core::metrics::Series>> {
        self.enter(actions::GET_METRIC_DATA.name).await?;
        Ok(self.0.with(|s| s.metric_data(req)))
    }
}

#[async_trait]
impl ImageCopyApi for FakeApi {
    async fn copy_image(&self, req: &CopyRequest) -> CloudResult<String> {
        self.enter(actions::COPY_IMAGE.name).await?;
        answer(&self.0, actions::COPY_IMAGE.name, self.0.copy_image_from(req))
    }

    async fn share_image(&self, image_id: &str, account: &str) -> CloudResult<()> {
        self.enter(actions::SHARE_IMAGE.name).await?;
        self.0.share(image_id, account);
        Ok(())
    }

    async fn share_snapshot(&self, snapshot_id: &str, account: &str) -> CloudResult<()> {
        self.enter(actions::SHARE_SNAPSHOT.name).await?;
        self.0.share(snapshot_id, account);
        Ok(())
    }
}

//! `DryRunApi` for Auto Scaling, ELBv2 and CloudWatch: group, refresh, target-health, target-group, alarm
//! and metric reads pass through; the writes (pin, start, cancel, roll back a refresh) are only recorded, unverified because
//! Auto Scaling has no DryRun.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::ec2::{args, effect, split_planned, DryRunApi};
use super::{planned_id, Change};
use crate::cloud::actions;
use std::collections::BTreeMap;

use crate::cloud::{AutoScalingApi, CloudResult, CloudWatchApi, Elbv2Api};
use crate::core::health::tg_name;
use crate::core::metrics::{MetricRequest, Series};
use crate::core::model::*;

#[async_trait]
impl AutoScalingApi for DryRunApi {
    async fn describe_group(&self, name: &str) -> CloudResult<Option<Group>> {
        self.read(&actions::DESCRIBE_GROUPS, args(&[("group", json!(name))]), self.real.autoscaling.describe_group(name)).await
    }

    async fn describe_groups(&self, names: &[String]) -> CloudResult<Vec<Group>> {
        self.read(&actions::DESCRIBE_GROUPS, args(&[("groups", json!(names))]), self.real.autoscaling.describe_groups(names)).await
    }

    async fn set_group_configuration(&self, group: &str, config: &Configuration) -> CloudResult<()> {
        let t = config.template();
        let a = args(&[
            ("group", json!(group)),
            ("template_id", json!(t.id)),
            ("version", json!(t.version)),
            ("mixed_instances_policy", json!(config.policy().is_some())),
        ]);
        let detail = format!("launches from launch template {} version {} (no instance is replaced)", t.id, t.version);
        self.asg_write(&actions::UPDATE_GROUP, a, vec![effect(Change::Change, "auto-scaling-group", group, detail)]);
        Ok(())
    }

    async fn describe_warm_pool(&self, group: &str) -> CloudResult<Vec<GroupInstance>> {
        self.read(&actions::DESCRIBE_WARM_POOL, args(&[("group", json!(group))]), self.real.autoscaling.describe_warm_pool(group)).await
    }

    async fn describe_launch_configuration(&self, name: &str) -> CloudResult<Option<LaunchConfiguration>> {
        let a = args(&[("launch_configuration", json!(name))]);
        self.read(&actions::DESCRIBE_LCS, a, self.real.autoscaling.describe_launch_configuration(name)).await
    }

    async fn set_group_tag(&self, group: &str, key: &str, value: &str) -> CloudResult<()> {
        let a = args(&[("group", json!(group)), ("key", json!(key)), ("value", json!(value))]);
        self.asg_write(&actions::TAG_GROUP, a, vec![effect(Change::Change, "auto-scaling-group", group, format!("tag {key} set"))]);
        Ok(())
    }

    async fn delete_group_tag(&self, group: &str, key: &str) -> CloudResult<()> {
        let a = args(&[("group", json!(group)), ("key", json!(key))]);
        self.asg_write(&actions::UNTAG_GROUP, a, vec![effect(Change::Change, "auto-scaling-group", group, format!("tag {key} removed"))]);
        Ok(())
    }

    async fn start_instance_refresh(&self, req: &RefreshRequest) -> CloudResult<String> {
        let id = self.dry.with_world(|w| {
            let id = planned_id("refresh", w.refreshes.len() + 1);
            w.refreshes.push((req.group.clone(), id.clone()));
            id
        });
        let p = &req.prefs;
        let secs = |d: Option<std::time::Duration>| json!(d.map(|d| d.as_secs()));
        let prefs = args(&[
            ("min_healthy_percentage", json!(p.min_healthy_percentage)),
            ("max_healthy_percentage", json!(p.max_healthy_percentage)),
            ("instance_warmup_seconds", secs(p.instance_warmup)),
            ("checkpoints", json!(p.checkpoints)),
            ("checkpoint_delay_seconds", secs(p.checkpoint_delay)),
            ("skip_matching", json!(p.skip_matching)),
            ("auto_rollback", json!(p.auto_rollback)),
            ("bake_time_seconds", secs(p.bake_time)),
            ("alarms", json!(p.alarms)),
            ("standby_instances", json!(p.standby_instances.map(|s| s.as_str()))),
            ("scale_in_protected_instances", json!(p.scale_in_protected_instances.map(|s| s.as_str()))),
        ]);
        let t = req.desired.template();
        let overrides: Vec<Value> = req
            .desired
            .policy()
            .map(|p| p.override_templates().iter().map(|t| json!({ "template_id": t.id, "version": t.version })).collect())
            .unwrap_or_default();
        let a = args(&[
            ("group", json!(req.group)),
            ("template_id", json!(t.id)),
            ("version", json!(t.version)),
            ("mixed_instances_policy", json!(req.desired.policy().is_some())),
            ("override_templates", json!(overrides)),
            ("preferences", prefs),
        ]);
        let what = if req.desired.policy().is_some() { "its mixed instances policy on launch-template version" } else { "launch-template version" };
        let detail = format!(
            "replaces the instances of {} with {what} {}; the group takes it only if the refresh succeeds",
            req.group, t.version
        );
        self.asg_write(&actions::START_REFRESH, a, vec![effect(Change::Create, "instance-refresh", &id, detail)]);
        Ok(id)
    }

    async fn describe_instance_refreshes(&self, group: &str, ids: &[String]) -> CloudResult<Vec<Refresh>> {
        let (planned, real_ids) = split_planned(ids);
        let mut out: Vec<Refresh> = planned
            .iter()
            .map(|id| Refresh {
                id: id.clone(),
                group: group.to_string(),
                status: RefreshStatus::Pending,
                status_reason: None,
                percentage_complete: None,
                instances_to_update: None,
                desired_version: None,
                desired: None,
                rollback_reason: None,
                start_time: None,
                end_time: None,
                warm_pool_percentage: None,
                warm_pool_to_update: None,
            })
            .collect();
        if planned.is_empty() || !real_ids.is_empty() {
            let a = args(&[("group", json!(group)), ("ids", json!(real_ids))]);
            out.extend(self.read(&actions::DESCRIBE_REFRESHES, a, self.real.autoscaling.describe_instance_refreshes(group, &real_ids)).await?);
        }
        Ok(out)
    }

    async fn cancel_instance_refresh(&self, group: &str) -> CloudResult<String> {
        let effects = vec![effect(Change::Change, "instance-refresh", format!("active refresh of {group}"), "cancelled (nothing is undone)")];
        self.asg_write(&actions::CANCEL_REFRESH, args(&[("group", json!(group))]), effects);
        Ok(planned_id("refresh", 1))
    }

    async fn rollback_instance_refresh(&self, group: &str) -> CloudResult<String> {
        let effects = vec![effect(Change::Change, "instance-refresh", format!("active refresh of {group}"), "rolled back to the group's configuration")];
        self.asg_write(&actions::ROLLBACK_REFRESH, args(&[("group", json!(group))]), effects);
        Ok(planned_id("refresh", 1))
    }
}

#[async_trait]
impl Elbv2Api for DryRunApi {
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        let a = args(&[("target_group_arn", json!(target_group_arn))]);
        self.read(&actions::DESCRIBE_TARGET_HEALTH, a, self.real.elbv2.target_health(target_group_arn)).await
    }

    async fn target_group_balancers(&self, target_group_arns: &[String]) -> CloudResult<BTreeMap<String, Vec<String>>> {
        let a = args(&[("target_group_arns", json!(target_group_arns))]);
        self.read(&actions::DESCRIBE_TARGET_GROUPS, a, self.real.elbv2.target_group_balancers(target_group_arns)).await
    }
}

#[async_trait]
impl CloudWatchApi for DryRunApi {
    async fn describe_alarms(&self, names: &[String]) -> CloudResult<Vec<Alarm>> {
        let a = args(&[("alarm_names", json!(names))]);
        self.read(&actions::DESCRIBE_ALARMS, a, self.real.cloudwatch.describe_alarms(names)).await
    }

    async fn metric_data(&self, req: &MetricRequest) -> CloudResult<Vec<Series>> {
        let tgs: std::collections::BTreeSet<&str> = req.series.iter().map(|s| tg_name(&s.target_group)).collect();
        let a = args(&[("target_groups", json!(tgs)), ("series", json!(req.series.len())), ("start_ms", json!(req.start_ms)), ("end_ms", json!(req.end_ms))]);
        self.read(&actions::GET_METRIC_DATA, a, self.real.cloudwatch.metric_data(req)).await
    }
}

//! `AutoScaling`: the `AutoScalingApi` adapter over aws-sdk-autoscaling (groups and instance refreshes),
//! with the SDK → domain conversions it needs.

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    self as sdk, AlarmSpecification, DesiredConfiguration, LaunchTemplateSpecification, RefreshPreferences,
    RefreshStrategy,
};
use aws_sdk_autoscaling::Client;

use super::error::{missing, SdkResultExt};
use super::{epoch_secs, secs_i32};
use crate::cloud::{actions, AutoScalingApi, CallLedger, CloudResult};
use crate::core::model::*;

/// The API maximum for DescribeInstanceRefreshes' MaxRecords (AWS keeps six weeks of refreshes).
const REFRESH_PAGE_SIZE: i32 = 100;

/// What a group uses when its template spec names no version (the API's documented default).
const DEFAULT_VERSION: &str = "$Default";

pub struct AutoScaling {
    client: Client,
    calls: CallLedger,
}

impl AutoScaling {
    pub fn new(client: Client, calls: CallLedger) -> Self {
        Self { client, calls }
    }
}

#[async_trait]
impl AutoScalingApi for AutoScaling {
    async fn describe_group(&self, name: &str) -> CloudResult<Option<Group>> {
        const A: &str = actions::DESCRIBE_GROUPS.name;
        self.calls.record(A);
        // An unknown name is not an error here: AWS (and moto) answer with an empty list.
        let out = self.client.describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.cloud(A)?;
        Ok(out.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(name)).map(group))
    }

    async fn set_group_template_version(&self, group: &str, template_id: &str, version: &str) -> CloudResult<()> {
        const A: &str = actions::UPDATE_GROUP.name;
        self.calls.record(A);
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .launch_template(template_spec(template_id, version))
            .send()
            .await
            .cloud(A)?;
        Ok(())
    }

    async fn set_group_tag(&self, group: &str, key: &str, value: &str) -> CloudResult<()> {
        const A: &str = actions::TAG_GROUP.name;
        self.calls.record(A);
        let tag = sdk::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client.create_or_update_tags().tags(tag).send().await.cloud(A)?;
        Ok(())
    }

    async fn delete_group_tag(&self, group: &str, key: &str) -> CloudResult<()> {
        const A: &str = actions::UNTAG_GROUP.name;
        self.calls.record(A);
        let tag = sdk::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .build();
        self.client.delete_tags().tags(tag).send().await.cloud(A)?;
        Ok(())
    }

    async fn start_instance_refresh(&self, req: &RefreshRequest) -> CloudResult<String> {
        const A: &str = actions::START_REFRESH.name;
        self.calls.record(A);
        // The desired configuration is applied to the group only if the refresh succeeds, which is what
        // makes AutoRollback / RollbackInstanceRefresh restore the previous (good) template version.
        let desired =
            DesiredConfiguration::builder().launch_template(template_spec(&req.template_id, &req.version.to_string()));
        let out = self
            .client
            .start_instance_refresh()
            .auto_scaling_group_name(&req.group)
            .strategy(RefreshStrategy::Rolling)
            .desired_configuration(desired.build())
            .preferences(preferences(&req.prefs))
            .send()
            .await
            .cloud(A)?;
        out.instance_refresh_id().map(str::to_string).ok_or_else(|| missing(A, "InstanceRefreshId"))
    }

    async fn describe_instance_refreshes(&self, group: &str, ids: &[String]) -> CloudResult<Vec<Refresh>> {
        const A: &str = actions::DESCRIBE_REFRESHES.name;
        self.calls.record(A);
        let pages = self
            .client
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .set_instance_refresh_ids((!ids.is_empty()).then(|| ids.to_vec()))
            .max_records(REFRESH_PAGE_SIZE)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .cloud(A)?;
        pages.iter().flat_map(|p| p.instance_refreshes()).map(|r| refresh(A, group, r)).collect()
    }

    async fn cancel_instance_refresh(&self, group: &str) -> CloudResult<String> {
        const A: &str = actions::CANCEL_REFRESH.name;
        self.calls.record(A);
        let out = self.client.cancel_instance_refresh().auto_scaling_group_name(group).send().await.cloud(A)?;
        out.instance_refresh_id().map(str::to_string).ok_or_else(|| missing(A, "InstanceRefreshId"))
    }

    async fn rollback_instance_refresh(&self, group: &str) -> CloudResult<String> {
        const A: &str = actions::ROLLBACK_REFRESH.name;
        self.calls.record(A);
        let out = self.client.rollback_instance_refresh().auto_scaling_group_name(group).send().await.cloud(A)?;
        out.instance_refresh_id().map(str::to_string).ok_or_else(|| missing(A, "InstanceRefreshId"))
    }
}

fn template_spec(template_id: &str, version: &str) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder().launch_template_id(template_id).version(version).build()
}

/// Preferences in AWS units. Optional ones are left out when unset so AWS applies its own defaults
/// (warm-up falls back to the group's DefaultInstanceWarmup; an empty alarm list would be rejected).
fn preferences(p: &RefreshPrefs) -> RefreshPreferences {
    let mut b = RefreshPreferences::builder()
        .min_healthy_percentage(p.min_healthy_percentage)
        .max_healthy_percentage(p.max_healthy_percentage)
        .skip_matching(p.skip_matching)
        .auto_rollback(p.auto_rollback)
        .set_instance_warmup(p.instance_warmup.map(secs_i32))
        .set_checkpoint_delay(p.checkpoint_delay.map(secs_i32))
        .set_bake_time(p.bake_time.map(secs_i32));
    if !p.checkpoints.is_empty() {
        b = b.set_checkpoint_percentages(Some(p.checkpoints.clone()));
    }
    if !p.alarms.is_empty() {
        b = b.alarm_specification(AlarmSpecification::builder().set_alarms(Some(p.alarms.clone())).build());
    }
    b.build()
}

fn template_ref(spec: &LaunchTemplateSpecification) -> TemplateRef {
    TemplateRef {
        id: spec.launch_template_id().unwrap_or_default().to_string(),
        name: spec.launch_template_name().unwrap_or_default().to_string(),
        version: spec.version().unwrap_or(DEFAULT_VERSION).to_string(),
    }
}

fn group(g: &sdk::AutoScalingGroup) -> Group {
    let mixed = g.mixed_instances_policy().and_then(|m| m.launch_template()?.launch_template_specification());
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        launch_template: g.launch_template().or(mixed).map(template_ref),
        mixed_instances_policy: g.mixed_instances_policy().is_some(),
        launch_configuration: g.launch_configuration_name().map(str::to_string),
        min_size: g.min_size().unwrap_or_default(),
        max_size: g.max_size().unwrap_or_default(),
        desired_capacity: g.desired_capacity().unwrap_or_default(),
        target_group_arns: g.target_group_arns().to_vec(),
        instances: g
            .instances()
            .iter()
            .filter_map(|i| {
                Some(GroupInstance {
                    id: i.instance_id()?.to_string(),
                    lifecycle_state: i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default().to_string(),
                    health_status: i.health_status().unwrap_or_default().to_string(),
                    launch_template: i.launch_template().map(template_ref),
                })
            })
            .collect(),
        tags: g.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect(),
    }
}

fn refresh(action: &str, group: &str, r: &sdk::InstanceRefresh) -> CloudResult<Refresh> {
    let desired = r.desired_configuration();
    let desired_spec = desired.and_then(|d| {
        d.launch_template().or_else(|| d.mixed_instances_policy()?.launch_template()?.launch_template_specification())
    });
    Ok(Refresh {
        id: r.instance_refresh_id().ok_or_else(|| missing(action, "InstanceRefreshId"))?.to_string(),
        group: r.auto_scaling_group_name().unwrap_or(group).to_string(),
        // No status at all is as good as "not started yet"; RefreshStatus treats unknown values as not terminal.
        status: r.status().map_or(RefreshStatus::Pending, |s| RefreshStatus::parse(s.as_str())),
        status_reason: r.status_reason().map(str::to_string),
        percentage_complete: r.percentage_complete(),
        instances_to_update: r.instances_to_update(),
        desired_version: desired_spec.and_then(|s| s.version()).map(str::to_string),
        rollback_reason: r.rollback_details().and_then(|d| d.rollback_reason()).map(str::to_string),
        start_time: epoch_secs(r.start_time()),
        end_time: epoch_secs(r.end_time()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_autoscaling::primitives::DateTime;
    use aws_sdk_autoscaling::types::{InstanceRefreshStatus, LifecycleState, MixedInstancesPolicy, RollbackDetails};

    use super::*;

    fn prefs() -> RefreshPrefs {
        RefreshPrefs {
            min_healthy_percentage: 100,
            max_healthy_percentage: 200,
            instance_warmup: None,
            checkpoints: vec![],
            checkpoint_delay: None,
            skip_matching: false,
            auto_rollback: true,
            bake_time: None,
            alarms: vec![],
        }
    }

    #[test]
    fn preferences_leave_out_what_is_unset() {
        let p = preferences(&prefs());
        assert_eq!((p.min_healthy_percentage(), p.max_healthy_percentage()), (Some(100), Some(200)));
        assert_eq!((p.auto_rollback(), p.skip_matching()), (Some(true), Some(false)));
        assert_eq!((p.instance_warmup(), p.checkpoint_delay(), p.bake_time()), (None, None, None));
        assert!(p.alarm_specification().is_none());
        // The getter flattens None to []; Debug shows the field really is absent from the request.
        assert!(format!("{p:?}").contains("checkpoint_percentages: None"), "{p:?}");
    }

    #[test]
    fn preferences_carry_durations_in_seconds() {
        let p = preferences(&RefreshPrefs {
            instance_warmup: Some(Duration::from_secs(90)),
            checkpoints: vec![50, 100],
            checkpoint_delay: Some(Duration::from_secs(600)),
            bake_time: Some(Duration::from_millis(300_900)),
            alarms: vec!["web-5xx".into()],
            ..prefs()
        });
        assert_eq!(p.instance_warmup(), Some(90));
        assert_eq!(p.checkpoint_percentages(), &[50, 100]);
        assert_eq!(p.checkpoint_delay(), Some(600));
        assert_eq!(p.bake_time(), Some(300));
        assert_eq!(p.alarm_specification().map(|a| a.alarms().to_vec()), Some(vec!["web-5xx".to_string()]));
    }

    fn spec(version: Option<&str>) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_id("lt-1")
            .launch_template_name("web")
            .set_version(version.map(str::to_string))
            .build()
    }

    #[test]
    fn group_maps_template_sizes_and_instances() {
        let g = sdk::AutoScalingGroup::builder()
            .auto_scaling_group_name("web")
            .launch_template(spec(Some("4")))
            .min_size(2)
            .max_size(4)
            .desired_capacity(2)
            .target_group_arns("arn:tg")
            .instances(
                sdk::Instance::builder()
                    .instance_id("i-1")
                    .lifecycle_state(LifecycleState::InService)
                    .health_status("Healthy")
                    .launch_template(spec(Some("3")))
                    .build(),
            )
            .build();
        let got = group(&g);
        let lt = got.launch_template.clone().unwrap();
        assert_eq!((lt.id.as_str(), lt.name.as_str(), lt.numbered_version()), ("lt-1", "web", Some(4)));
        assert!(!got.mixed_instances_policy);
        assert_eq!((got.min_size, got.max_size, got.desired_capacity), (2, 4, 2));
        assert_eq!(got.target_group_arns, vec!["arn:tg".to_string()]);
        assert!(got.instances[0].in_service());
        assert_eq!(got.instances[0].health_status, "Healthy");
        // The version each instance was launched from, which names its image without EC2.
        let of_instance = got.instances[0].launch_template.as_ref().unwrap();
        assert_eq!((of_instance.id.as_str(), of_instance.numbered_version()), ("lt-1", Some(3)));
    }

    #[test]
    fn mixed_instances_policy_is_flagged_and_its_template_taken() {
        let mip = MixedInstancesPolicy::builder()
            .launch_template(sdk::LaunchTemplate::builder().launch_template_specification(spec(None)).build())
            .build();
        let got =
            group(&sdk::AutoScalingGroup::builder().auto_scaling_group_name("web").mixed_instances_policy(mip).build());
        assert!(got.mixed_instances_policy);
        assert_eq!(got.launch_template.map(|t| t.version), Some("$Default".to_string()));
    }

    #[test]
    fn refresh_maps_status_version_and_rollback() {
        let r = sdk::InstanceRefresh::builder()
            .instance_refresh_id("r-1")
            .status(InstanceRefreshStatus::RollbackSuccessful)
            .status_reason("alarm")
            .percentage_complete(50)
            .instances_to_update(1)
            .desired_configuration(DesiredConfiguration::builder().launch_template(spec(Some("5"))).build())
            .rollback_details(RollbackDetails::builder().rollback_reason("unhealthy").build())
            .start_time(DateTime::from_secs(100))
            .end_time(DateTime::from_secs(200))
            .build();
        let got = refresh("autoscaling:DescribeInstanceRefreshes", "web", &r).unwrap();
        assert_eq!(got.group, "web");
        assert_eq!(got.status, RefreshStatus::RollbackSuccessful);
        assert!(got.status.is_terminal());
        assert_eq!(got.desired_version.as_deref(), Some("5"));
        assert_eq!(got.rollback_reason.as_deref(), Some("unhealthy"));
        assert_eq!((got.start_time, got.end_time), (Some(100), Some(200)));
        assert_eq!((got.percentage_complete, got.instances_to_update), (Some(50), Some(1)));
    }

    #[test]
    fn refresh_without_id_is_an_error_and_unknown_status_is_kept() {
        let no_id = sdk::InstanceRefresh::builder().status(InstanceRefreshStatus::Pending).build();
        assert!(refresh("autoscaling:DescribeInstanceRefreshes", "web", &no_id).is_err());
        let odd = sdk::InstanceRefresh::builder().instance_refresh_id("r-2").status("Paused".into()).build();
        let got = refresh("autoscaling:DescribeInstanceRefreshes", "web", &odd).unwrap();
        assert_eq!(got.status, RefreshStatus::Unknown("Paused".into()));
        assert!(!got.status.is_terminal());
    }
}

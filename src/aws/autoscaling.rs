//! `AutoScaling`: the `AutoScalingApi` adapter over aws-sdk-autoscaling (groups and instance refreshes),
//! with the SDK → domain conversions it needs.

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{self as sdk, RefreshStrategy};
use aws_sdk_autoscaling::Client;

use super::error::{missing, SdkResultExt};
use crate::cloud::{actions, AutoScalingApi, CallLedger, CloudResult};
use crate::core::model::*;

mod convert;

use convert::{desired, group, launch_configuration, policy_to_sdk, preferences, refresh, template_spec};

/// The API maximum for DescribeInstanceRefreshes' MaxRecords (AWS keeps six weeks of refreshes).
const REFRESH_PAGE_SIZE: i32 = 100;

/// DescribeAutoScalingGroups' default MaxRecords: the names of one request (the API allows up to 100).
const GROUP_PAGE_SIZE: i32 = 50;

/// The API maximum for DescribeWarmPool's MaxRecords.
const WARM_POOL_PAGE_SIZE: i32 = 100;

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

    async fn describe_groups(&self, names: &[String]) -> CloudResult<Vec<Group>> {
        const A: &str = actions::DESCRIBE_GROUPS.name;
        let mut found = Vec::new();
        // AutoScalingGroupNames takes as many names as MaxRecords allows (at most 100; 50 by default).
        for chunk in names.chunks(GROUP_PAGE_SIZE as usize) {
            self.calls.record(A);
            let pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(GROUP_PAGE_SIZE)
                .into_paginator()
                .send()
                .collect::<Vec<_>>()
                .await;
            for page in pages {
                let page = page.cloud(A)?;
                found.extend(page.auto_scaling_groups().iter().filter(|g| g.auto_scaling_group_name().is_some_and(|n| chunk.iter().any(|c| c == n))).map(group));
            }
        }
        Ok(found)
    }

    async fn set_group_configuration(&self, group: &str, config: &Configuration) -> CloudResult<()> {
        const A: &str = actions::UPDATE_GROUP.name;
        self.calls.record(A);
        let req = self.client.update_auto_scaling_group().auto_scaling_group_name(group);
        let req = match config {
            Configuration::Template(t) => req.launch_template(template_spec(&t.id, &t.version)),
            Configuration::Mixed(p) => req.mixed_instances_policy(policy_to_sdk(p)),
        };
        req.send().await.cloud(A)?;
        Ok(())
    }

    async fn describe_warm_pool(&self, group: &str) -> CloudResult<Vec<GroupInstance>> {
        const A: &str = actions::DESCRIBE_WARM_POOL.name;
        self.calls.record(A);
        let pages = self
            .client
            .describe_warm_pool()
            .auto_scaling_group_name(group)
            .max_records(WARM_POOL_PAGE_SIZE)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .cloud(A)?;
        Ok(pages.iter().flat_map(|p| p.instances()).filter_map(convert::instance).collect())
    }

    async fn describe_launch_configuration(&self, name: &str) -> CloudResult<Option<LaunchConfiguration>> {
        const A: &str = actions::DESCRIBE_LCS.name;
        self.calls.record(A);
        let out = self.client.describe_launch_configurations().launch_configuration_names(name).send().await.cloud(A)?;
        Ok(out.launch_configurations().iter().find(|c| c.launch_configuration_name() == Some(name)).map(launch_configuration))
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
        // makes AutoRollback / RollbackInstanceRefresh restore the previous (good) configuration. A
        // mixed instances policy goes whole: overrides and distribution unchanged, new versions only.
        let out = self
            .client
            .start_instance_refresh()
            .auto_scaling_group_name(&req.group)
            .strategy(RefreshStrategy::Rolling)
            .desired_configuration(desired(&req.desired))
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

//! Pure conversions between aws-sdk-autoscaling types and the domain model, both ways: groups (with
//! their mixed instances policy, warm pool and per-instance launch source), refreshes, preferences,
//! desired configurations and launch configurations. Tested with SDK builders and no network.

use aws_sdk_autoscaling::types::{
    self as sdk, AlarmSpecification, DesiredConfiguration, InstancesDistribution, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, RefreshPreferences,
};

use crate::aws::error::missing;
use crate::aws::{epoch_secs, secs_i32};
use crate::cloud::CloudResult;
use crate::core::model::*;

/// What a group uses when its template spec names no version (the API's documented default).
const DEFAULT_VERSION: &str = "$Default";

pub(super) fn template_spec(template_id: &str, version: &str) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder().launch_template_id(template_id).version(version).build()
}

/// Preferences in AWS units. Optional ones are left out when unset so AWS applies its own defaults
/// (warm-up falls back to the group's DefaultInstanceWarmup; an empty alarm list would be rejected;
/// Standby and protected instances: `Wait`).
pub(super) fn preferences(p: &RefreshPrefs) -> RefreshPreferences {
    let mut b = RefreshPreferences::builder()
        .min_healthy_percentage(p.min_healthy_percentage)
        .max_healthy_percentage(p.max_healthy_percentage)
        .skip_matching(p.skip_matching)
        .auto_rollback(p.auto_rollback)
        .set_instance_warmup(p.instance_warmup.map(secs_i32))
        .set_checkpoint_delay(p.checkpoint_delay.map(secs_i32))
        .set_bake_time(p.bake_time.map(secs_i32))
        .set_standby_instances(p.standby_instances.map(|s| sdk::StandbyInstances::from(s.as_str())))
        .set_scale_in_protected_instances(p.scale_in_protected_instances.map(|s| sdk::ScaleInProtectedInstances::from(s.as_str())));
    if !p.checkpoints.is_empty() {
        b = b.set_checkpoint_percentages(Some(p.checkpoints.clone()));
    }
    if !p.alarms.is_empty() {
        b = b.alarm_specification(AlarmSpecification::builder().set_alarms(Some(p.alarms.clone())).build());
    }
    b.build()
}

/// The whole policy, as a group or a refresh takes it.
pub(super) fn policy_to_sdk(p: &MixedPolicy) -> MixedInstancesPolicy {
    let overrides = p
        .overrides
        .iter()
        .map(|o| {
            LaunchTemplateOverrides::builder()
                .set_instance_type(o.instance_type.clone())
                .set_weighted_capacity(o.weighted_capacity.clone())
                .set_launch_template_specification(o.template.as_ref().map(|t| template_spec(&t.id, &t.version)))
                .build()
        })
        .collect();
    let template = sdk::LaunchTemplate::builder()
        .launch_template_specification(template_spec(&p.template.id, &p.template.version))
        .set_overrides(Some(overrides))
        .build();
    let distribution = p.distribution.as_ref().map(|d| {
        InstancesDistribution::builder()
            .set_on_demand_allocation_strategy(d.on_demand_allocation_strategy.clone())
            .set_on_demand_base_capacity(d.on_demand_base_capacity)
            .set_on_demand_percentage_above_base_capacity(d.on_demand_percentage_above_base_capacity)
            .set_spot_allocation_strategy(d.spot_allocation_strategy.clone())
            .set_spot_instance_pools(d.spot_instance_pools)
            .set_spot_max_price(d.spot_max_price.clone())
            .build()
    });
    MixedInstancesPolicy::builder().launch_template(template).set_instances_distribution(distribution).build()
}

/// A refresh's DesiredConfiguration: a template version, or the whole policy.
pub(super) fn desired(c: &Configuration) -> DesiredConfiguration {
    match c {
        Configuration::Template(t) => DesiredConfiguration::builder().launch_template(template_spec(&t.id, &t.version)).build(),
        Configuration::Mixed(p) => DesiredConfiguration::builder().mixed_instances_policy(policy_to_sdk(p)).build(),
    }
}

fn template_ref(spec: &LaunchTemplateSpecification) -> TemplateRef {
    TemplateRef {
        id: spec.launch_template_id().unwrap_or_default().to_string(),
        name: spec.launch_template_name().unwrap_or_default().to_string(),
        version: spec.version().unwrap_or(DEFAULT_VERSION).to_string(),
    }
}

pub(super) fn policy(m: &MixedInstancesPolicy) -> Option<MixedPolicy> {
    let lt = m.launch_template()?;
    let mut unsupported = Vec::new();
    let overrides = lt
        .overrides()
        .iter()
        .map(|o| {
            let what = o.instance_type().unwrap_or("an override");
            if o.instance_requirements().is_some() {
                unsupported.push(format!("{what}: InstanceRequirements (attribute-based instance types)"));
            }
            if let Some(image) = o.image_id() {
                unsupported.push(format!("{what}: its own ImageId {image}"));
            }
            Override {
                instance_type: o.instance_type().map(str::to_string),
                weighted_capacity: o.weighted_capacity().map(str::to_string),
                template: o.launch_template_specification().map(template_ref),
            }
        })
        .collect();
    let distribution = m.instances_distribution().map(|d| {
        if !d.distribution_segments().is_empty() {
            unsupported.push("InstancesDistribution.DistributionSegments".to_string());
        }
        Distribution {
            on_demand_allocation_strategy: d.on_demand_allocation_strategy().map(str::to_string),
            on_demand_base_capacity: d.on_demand_base_capacity(),
            on_demand_percentage_above_base_capacity: d.on_demand_percentage_above_base_capacity(),
            spot_allocation_strategy: d.spot_allocation_strategy().map(str::to_string),
            spot_instance_pools: d.spot_instance_pools(),
            spot_max_price: d.spot_max_price().map(str::to_string),
        }
    });
    Some(MixedPolicy { template: template_ref(lt.launch_template_specification()?), overrides, distribution, unsupported })
}

pub(super) fn instance(i: &sdk::Instance) -> Option<GroupInstance> {
    Some(GroupInstance {
        id: i.instance_id()?.to_string(),
        lifecycle_state: i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default().to_string(),
        health_status: i.health_status().unwrap_or_default().to_string(),
        launch_template: i.launch_template().map(template_ref),
        launch_configuration: i.launch_configuration_name().map(str::to_string),
        protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
        instance_type: i.instance_type().map(str::to_string),
    })
}

pub(super) fn group(g: &sdk::AutoScalingGroup) -> Group {
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        launch_template: g.launch_template().map(template_ref),
        mixed_instances: g.mixed_instances_policy().and_then(policy),
        launch_configuration: g.launch_configuration_name().map(str::to_string),
        min_size: g.min_size().unwrap_or_default(),
        max_size: g.max_size().unwrap_or_default(),
        desired_capacity: g.desired_capacity().unwrap_or_default(),
        target_group_arns: g.target_group_arns().to_vec(),
        instances: g.instances().iter().filter_map(instance).collect(),
        tags: g.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect(),
        suspended_processes: g.suspended_processes().iter().filter_map(|p| p.process_name()).map(str::to_string).collect(),
        warm_pool: g.warm_pool_configuration().map(|w| WarmPool {
            min_size: w.min_size(),
            max_group_prepared_capacity: w.max_group_prepared_capacity(),
            pool_state: w.pool_state().map(|s| s.as_str().to_string()),
            status: w.status().map(|s| s.as_str().to_string()),
            instances: None,
        }),
    }
}

pub(super) fn refresh(action: &str, group: &str, r: &sdk::InstanceRefresh) -> CloudResult<Refresh> {
    let desired = r.desired_configuration();
    let desired_spec = desired.and_then(|d| {
        d.launch_template().or_else(|| d.mixed_instances_policy()?.launch_template()?.launch_template_specification())
    });
    let warm = r.progress_details().and_then(|p| p.warm_pool_progress());
    Ok(Refresh {
        id: r.instance_refresh_id().ok_or_else(|| missing(action, "InstanceRefreshId"))?.to_string(),
        group: r.auto_scaling_group_name().unwrap_or(group).to_string(),
        // No status at all is as good as "not started yet"; RefreshStatus treats unknown values as not terminal.
        status: r.status().map_or(RefreshStatus::Pending, |s| RefreshStatus::parse(s.as_str())),
        status_reason: r.status_reason().map(str::to_string),
        percentage_complete: r.percentage_complete(),
        instances_to_update: r.instances_to_update(),
        desired_version: desired_spec.and_then(|s| s.version()).map(str::to_string),
        desired: desired.and_then(|d| match (d.mixed_instances_policy(), d.launch_template()) {
            (Some(m), _) => policy(m).map(Configuration::Mixed),
            (None, Some(t)) => Some(Configuration::Template(template_ref(t))),
            (None, None) => None,
        }),
        rollback_reason: r.rollback_details().and_then(|d| d.rollback_reason()).map(str::to_string),
        start_time: epoch_secs(r.start_time()),
        end_time: epoch_secs(r.end_time()),
        warm_pool_percentage: warm.and_then(|w| w.percentage_complete()),
        warm_pool_to_update: warm.and_then(|w| w.instances_to_update()),
    })
}

fn block_device(b: &sdk::BlockDeviceMapping) -> BlockDevice {
    BlockDevice {
        device_name: b.device_name().unwrap_or_default().to_string(),
        virtual_name: b.virtual_name().map(str::to_string),
        no_device: b.no_device().unwrap_or(false),
        ebs: b.ebs().map(|e| Ebs {
            snapshot_id: e.snapshot_id().map(str::to_string),
            volume_size: e.volume_size(),
            volume_type: e.volume_type().map(str::to_string),
            delete_on_termination: e.delete_on_termination(),
            iops: e.iops(),
            encrypted: e.encrypted(),
            throughput: e.throughput(),
        }),
    }
}

pub(super) fn launch_configuration(c: &sdk::LaunchConfiguration) -> LaunchConfiguration {
    let s = |v: Option<&str>| v.map(str::to_string);
    LaunchConfiguration {
        name: c.launch_configuration_name().unwrap_or_default().to_string(),
        image_id: s(c.image_id()),
        instance_type: s(c.instance_type()),
        key_name: s(c.key_name()),
        security_groups: c.security_groups().to_vec(),
        user_data: s(c.user_data()),
        iam_instance_profile: s(c.iam_instance_profile()),
        block_devices: c.block_device_mappings().iter().map(block_device).collect(),
        monitoring: c.instance_monitoring().and_then(|m| m.enabled()),
        metadata: c.metadata_options().map(|m| MetadataOptions {
            http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
            http_put_response_hop_limit: m.http_put_response_hop_limit(),
            http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
        }),
        placement_tenancy: s(c.placement_tenancy()),
        associate_public_ip: c.associate_public_ip_address(),
        spot_price: s(c.spot_price()),
        ebs_optimized: c.ebs_optimized(),
        kernel_id: s(c.kernel_id()),
        ramdisk_id: s(c.ramdisk_id()),
        classic_link_vpc_id: s(c.classic_link_vpc_id()),
        classic_link_security_groups: c.classic_link_vpc_security_groups().to_vec(),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;

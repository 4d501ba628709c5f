//! Conversion tests: SDK builders in, domain types out (and back), no network.

use std::time::Duration;

use aws_sdk_autoscaling::primitives::DateTime;
use aws_sdk_autoscaling::types::{InstanceRefreshStatus, InstancesDistribution, LaunchTemplateOverrides, LifecycleState, MixedInstancesPolicy, RollbackDetails};

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
        standby_instances: None,
        scale_in_protected_instances: None,
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
    assert!(got.mixed_instances.is_none());
    assert_eq!((got.min_size, got.max_size, got.desired_capacity), (2, 4, 2));
    assert_eq!(got.target_group_arns, vec!["arn:tg".to_string()]);
    assert!(got.instances[0].in_service());
    assert_eq!(got.instances[0].health_status, "Healthy");
    // The version each instance was launched from, which names its image without EC2.
    let of_instance = got.instances[0].launch_template.as_ref().unwrap();
    assert_eq!((of_instance.id.as_str(), of_instance.numbered_version()), ("lt-1", Some(3)));
}

fn spec_of(id: &str, version: &str) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder().launch_template_id(id).version(version).build()
}

fn mixed_sdk() -> MixedInstancesPolicy {
    let lt = sdk::LaunchTemplate::builder()
        .launch_template_specification(spec(Some("3")))
        .overrides(LaunchTemplateOverrides::builder().instance_type("t3.micro").build())
        .overrides(
            LaunchTemplateOverrides::builder().instance_type("c7g.large").weighted_capacity("2").launch_template_specification(spec_of("lt-arm", "7")).build(),
        )
        .build();
    let dist = InstancesDistribution::builder()
        .on_demand_base_capacity(1)
        .on_demand_percentage_above_base_capacity(0)
        .spot_allocation_strategy("price-capacity-optimized")
        .build();
    MixedInstancesPolicy::builder().launch_template(lt).instances_distribution(dist).build()
}

#[test]
fn a_mixed_instances_policy_is_read_whole_and_the_top_level_template_stays_empty() {
    let got = group(&sdk::AutoScalingGroup::builder().auto_scaling_group_name("web").mixed_instances_policy(mixed_sdk()).build());
    assert!(got.launch_template.is_none(), "AWS leaves the top-level LaunchTemplate empty");
    let p = got.mixed_instances.clone().expect("policy");
    assert_eq!((p.template.id.as_str(), p.template.version.as_str()), ("lt-1", "3"));
    assert_eq!(got.template().map(|t| t.id.as_str()), Some("lt-1"));
    assert_eq!(p.overrides.len(), 2);
    assert_eq!(p.overrides[1].template.as_ref().map(|t| (t.id.as_str(), t.version.as_str())), Some(("lt-arm", "7")));
    assert_eq!(p.overrides[1].weighted_capacity.as_deref(), Some("2"));
    let d = p.distribution.clone().unwrap();
    assert_eq!((d.on_demand_base_capacity, d.on_demand_percentage_above_base_capacity), (Some(1), Some(0)));
    assert_eq!(d.spot_allocation_strategy.as_deref(), Some("price-capacity-optimized"));
    assert!(p.unsupported.is_empty());
    // Back to the SDK, as a refresh's DesiredConfiguration: the same policy, unchanged (templates are
    // named by id only).
    let back = desired(&Configuration::Mixed(p.clone()));
    assert!(back.launch_template().is_none());
    let mut by_id = p.clone();
    by_id.template.name.clear();
    assert_eq!(policy(back.mixed_instances_policy().unwrap()), Some(by_id));
}

#[test]
fn parts_of_a_policy_bakeroll_cannot_pass_on_are_named() {
    let lt = sdk::LaunchTemplate::builder()
        .launch_template_specification(spec(Some("3")))
        .overrides(LaunchTemplateOverrides::builder().instance_type("t3.micro").image_id("ami-own").build())
        .overrides(LaunchTemplateOverrides::builder().instance_requirements(sdk::InstanceRequirements::builder().build()).build())
        .build();
    let p = policy(&MixedInstancesPolicy::builder().launch_template(lt).build()).unwrap();
    assert_eq!(p.unsupported.len(), 2, "{:?}", p.unsupported);
    assert!(p.unsupported[0].contains("ami-own") && p.unsupported[1].contains("InstanceRequirements"), "{:?}", p.unsupported);
}

#[test]
fn group_reads_suspended_processes_warm_pool_and_each_instances_launch_source() {
    let g = sdk::AutoScalingGroup::builder()
        .auto_scaling_group_name("web")
        .launch_configuration_name("web-lc")
        .suspended_processes(sdk::SuspendedProcess::builder().process_name("Launch").build())
        .warm_pool_configuration(sdk::WarmPoolConfiguration::builder().min_size(1).pool_state(sdk::WarmPoolState::Stopped).build())
        .instances(
            sdk::Instance::builder()
                .instance_id("i-1")
                .lifecycle_state(LifecycleState::Standby)
                .launch_configuration_name("web-lc")
                .protected_from_scale_in(true)
                .instance_type("t3.micro")
                .build(),
        )
        .build();
    let got = group(&g);
    assert_eq!(got.launch_configuration.as_deref(), Some("web-lc"));
    assert!(got.configuration().is_none(), "a launch configuration is not a template configuration");
    assert_eq!(got.suspended_processes, vec!["Launch".to_string()]);
    let pool = got.warm_pool.clone().unwrap();
    assert_eq!((pool.min_size, pool.pool_state.as_deref(), pool.instances.is_none()), (Some(1), Some("Stopped"), true));
    let i = &got.instances[0];
    assert!(i.in_standby() && !i.is_member() && i.protected_from_scale_in);
    assert_eq!(i.launch_configuration.as_deref(), Some("web-lc"));
}

#[test]
fn preferences_carry_standby_and_protected_settings_only_when_set() {
    let p = preferences(&RefreshPrefs {
        standby_instances: Some(StandbyInstances::Ignore),
        scale_in_protected_instances: Some(ProtectedInstances::Refresh),
        ..prefs()
    });
    assert_eq!(p.standby_instances().map(|s| s.as_str()), Some("Ignore"));
    assert_eq!(p.scale_in_protected_instances().map(|s| s.as_str()), Some("Refresh"));
    let unset = preferences(&prefs());
    assert!(unset.standby_instances().is_none() && unset.scale_in_protected_instances().is_none(), "AWS's default (Wait) applies");
}

#[test]
fn launch_configuration_fields_are_read() {
    let c = sdk::LaunchConfiguration::builder()
        .launch_configuration_name("web-lc")
        .image_id("ami-1")
        .instance_type("t3.micro")
        .key_name("ops")
        .security_groups("sg-1")
        .user_data("IyEvYmluL3NoCg==")
        .iam_instance_profile("web-profile")
        .block_device_mappings(
            sdk::BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(sdk::Ebs::builder().volume_size(20).volume_type("gp3").encrypted(true).build())
                .build(),
        )
        .instance_monitoring(sdk::InstanceMonitoring::builder().enabled(true).build())
        .metadata_options(sdk::InstanceMetadataOptions::builder().http_tokens(sdk::InstanceMetadataHttpTokensState::Required).http_put_response_hop_limit(2).build())
        .placement_tenancy("dedicated")
        .associate_public_ip_address(true)
        .spot_price("0.05")
        .build();
    let got = launch_configuration(&c);
    assert_eq!(got.name, "web-lc");
    assert_eq!((got.image_id.as_deref(), got.key_name.as_deref(), got.spot_price.as_deref()), (Some("ami-1"), Some("ops"), Some("0.05")));
    assert_eq!(got.block_devices[0].ebs.as_ref().map(|e| (e.volume_size, e.encrypted)), Some((Some(20), Some(true))));
    assert_eq!(got.metadata.as_ref().and_then(|m| m.http_tokens.as_deref()), Some("required"));
    assert_eq!((got.monitoring, got.associate_public_ip, got.placement_tenancy.as_deref()), (Some(true), Some(true), Some("dedicated")));
}

#[test]
fn refresh_reads_warm_pool_progress() {
    let r = sdk::InstanceRefresh::builder()
        .instance_refresh_id("r-1")
        .status(InstanceRefreshStatus::InProgress)
        .progress_details(
            sdk::InstanceRefreshProgressDetails::builder()
                .warm_pool_progress(sdk::InstanceRefreshWarmPoolProgress::builder().percentage_complete(50).instances_to_update(1).build())
                .build(),
        )
        .build();
    let got = refresh("autoscaling:DescribeInstanceRefreshes", "web", &r).unwrap();
    assert_eq!((got.warm_pool_percentage, got.warm_pool_to_update), (Some(50), Some(1)));
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

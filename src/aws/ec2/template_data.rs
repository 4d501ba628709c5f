//! Launch-template data between the domain (`TemplateData`) and aws-sdk-ec2: the request a new
//! template is created with, and the version data EC2 answers with, read back field by field so `adopt`
//! can compare them. A public IP association lives on the primary network interface, which then also
//! carries the security groups (EC2 refuses them at both places).

use aws_sdk_ec2::types::{
    self as sdk, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMarketOptionsRequest,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplatePlacementRequest, LaunchTemplateSpotMarketOptionsRequest, LaunchTemplatesMonitoringRequest, MarketType,
    RequestLaunchTemplateData,
};

use crate::core::model::{BlockDevice, Ebs, MetadataOptions, TemplateData};

fn some_vec(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn block_device(b: &BlockDevice) -> LaunchTemplateBlockDeviceMappingRequest {
    let ebs = b.ebs.as_ref().map(|e| {
        LaunchTemplateEbsBlockDeviceRequest::builder()
            .set_snapshot_id(e.snapshot_id.clone())
            .set_volume_size(e.volume_size)
            .set_volume_type(e.volume_type.as_deref().map(sdk::VolumeType::from))
            .set_delete_on_termination(e.delete_on_termination)
            .set_iops(e.iops)
            .set_encrypted(e.encrypted)
            .set_throughput(e.throughput)
            .build()
    });
    LaunchTemplateBlockDeviceMappingRequest::builder()
        .device_name(&b.device_name)
        .set_virtual_name(b.virtual_name.clone())
        .set_ebs(ebs)
        // An empty NoDevice suppresses the image's mapping of that device.
        .set_no_device(b.no_device.then(String::new))
        .build()
}

/// The RequestLaunchTemplateData for `d`.
pub(crate) fn request(d: &TemplateData) -> RequestLaunchTemplateData {
    let profile = d.iam_instance_profile.as_ref().map(|p| {
        let b = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        if p.starts_with("arn:") { b.arn(p).build() } else { b.name(p).build() }
    });
    let metadata = d.metadata.as_ref().map(|m| {
        LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .set_http_tokens(m.http_tokens.as_deref().map(sdk::LaunchTemplateHttpTokensState::from))
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
            .set_http_endpoint(m.http_endpoint.as_deref().map(sdk::LaunchTemplateInstanceMetadataEndpointState::from))
            .build()
    });
    let market = d.spot_max_price.as_ref().map(|p| {
        LaunchTemplateInstanceMarketOptionsRequest::builder()
            .market_type(MarketType::Spot)
            .spot_options(LaunchTemplateSpotMarketOptionsRequest::builder().max_price(p).build())
            .build()
    });
    let mut b = RequestLaunchTemplateData::builder()
        .set_image_id(d.image_id.clone())
        .set_instance_type(d.instance_type.as_deref().map(sdk::InstanceType::from))
        .set_key_name(d.key_name.clone())
        .set_security_groups(some_vec(&d.security_group_names))
        .set_user_data(d.user_data.clone())
        .set_iam_instance_profile(profile)
        .set_block_device_mappings((!d.block_devices.is_empty()).then(|| d.block_devices.iter().map(block_device).collect()))
        .set_monitoring(d.monitoring.map(|m| LaunchTemplatesMonitoringRequest::builder().enabled(m).build()))
        .set_metadata_options(metadata)
        .set_placement(d.tenancy.as_deref().map(|t| LaunchTemplatePlacementRequest::builder().tenancy(sdk::Tenancy::from(t)).build()))
        .set_instance_market_options(market)
        .set_ebs_optimized(d.ebs_optimized)
        .set_kernel_id(d.kernel_id.clone())
        .set_ram_disk_id(d.ramdisk_id.clone());
    match d.associate_public_ip {
        Some(public) => {
            let nic = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .associate_public_ip_address(public)
                .set_groups(some_vec(&d.security_group_ids))
                .build();
            b = b.network_interfaces(nic);
        }
        None => b = b.set_security_group_ids(some_vec(&d.security_group_ids)),
    }
    b.build()
}

/// A version's data as EC2 reports it.
pub(crate) fn response(r: &sdk::ResponseLaunchTemplateData) -> TemplateData {
    let s = |v: Option<&str>| v.map(str::to_string);
    let primary = r.network_interfaces().iter().find(|n| n.device_index().unwrap_or(0) == 0);
    let mut groups = r.security_group_ids().to_vec();
    if let Some(nic) = primary {
        groups.extend(nic.groups().iter().cloned());
    }
    let profile = r.iam_instance_profile().and_then(|p| p.arn().or(p.name())).map(str::to_string);
    TemplateData {
        image_id: s(r.image_id()),
        instance_type: r.instance_type().map(|t| t.as_str().to_string()),
        key_name: s(r.key_name()),
        security_group_ids: groups,
        security_group_names: r.security_groups().to_vec(),
        user_data: s(r.user_data()),
        iam_instance_profile: profile,
        block_devices: r
            .block_device_mappings()
            .iter()
            .map(|b| BlockDevice {
                device_name: b.device_name().unwrap_or_default().to_string(),
                virtual_name: s(b.virtual_name()),
                no_device: b.no_device().is_some(),
                ebs: b.ebs().map(|e| Ebs {
                    snapshot_id: s(e.snapshot_id()),
                    volume_size: e.volume_size(),
                    volume_type: e.volume_type().map(|t| t.as_str().to_string()),
                    delete_on_termination: e.delete_on_termination(),
                    iops: e.iops(),
                    encrypted: e.encrypted(),
                    throughput: e.throughput(),
                }),
            })
            .collect(),
        monitoring: r.monitoring().and_then(|m| m.enabled()),
        metadata: r.metadata_options().map(|m| MetadataOptions {
            http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
            http_put_response_hop_limit: m.http_put_response_hop_limit(),
            http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
        }),
        tenancy: r.placement().and_then(|p| p.tenancy()).map(|t| t.as_str().to_string()),
        associate_public_ip: primary.and_then(|n| n.associate_public_ip_address()),
        spot_max_price: r
            .instance_market_options()
            .filter(|m| m.market_type() == Some(&MarketType::Spot))
            .map(|m| m.spot_options().and_then(|o| o.max_price()).unwrap_or_default().to_string()),
        ebs_optimized: r.ebs_optimized(),
        kernel_id: s(r.kernel_id()),
        ramdisk_id: s(r.ram_disk_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> TemplateData {
        TemplateData {
            image_id: Some("ami-1".into()),
            instance_type: Some("t3.micro".into()),
            key_name: Some("ops".into()),
            security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            user_data: Some("IyEvYmluL3NoCg==".into()),
            iam_instance_profile: Some("arn:aws:iam::1:instance-profile/web".into()),
            block_devices: vec![BlockDevice {
                device_name: "/dev/xvda".into(),
                ebs: Some(Ebs { volume_size: Some(20), volume_type: Some("gp3".into()), encrypted: Some(true), ..Default::default() }),
                ..Default::default()
            }],
            monitoring: Some(true),
            metadata: Some(MetadataOptions { http_tokens: Some("required".into()), http_put_response_hop_limit: Some(2), http_endpoint: None }),
            tenancy: Some("dedicated".into()),
            associate_public_ip: Some(true),
            spot_max_price: Some("0.05".into()),
            ebs_optimized: Some(true),
            ..Default::default()
        }
    }

    /// What EC2 stores is what it was sent: the request's fields read back through the response shape.
    fn round_trip(d: &TemplateData) -> TemplateData {
        let req = request(d);
        let nics = req
            .network_interfaces()
            .iter()
            .map(|n| {
                sdk::LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                    .set_device_index(n.device_index())
                    .set_associate_public_ip_address(n.associate_public_ip_address())
                    .set_groups(Some(n.groups().to_vec()))
                    .build()
            })
            .collect();
        let bdm = req
            .block_device_mappings()
            .iter()
            .map(|b| {
                let ebs = b.ebs().map(|e| {
                    sdk::LaunchTemplateEbsBlockDevice::builder()
                        .set_volume_size(e.volume_size())
                        .set_volume_type(e.volume_type().cloned())
                        .set_encrypted(e.encrypted())
                        .build()
                });
                sdk::LaunchTemplateBlockDeviceMapping::builder().set_device_name(b.device_name().map(str::to_string)).set_ebs(ebs).build()
            })
            .collect();
        let resp = sdk::ResponseLaunchTemplateData::builder()
            .set_image_id(req.image_id().map(str::to_string))
            .set_instance_type(req.instance_type().cloned())
            .set_key_name(req.key_name().map(str::to_string))
            .set_security_group_ids(Some(req.security_group_ids().to_vec()))
            .set_user_data(req.user_data().map(str::to_string))
            .iam_instance_profile(
                sdk::LaunchTemplateIamInstanceProfileSpecification::builder()
                    .set_arn(req.iam_instance_profile().and_then(|p| p.arn()).map(str::to_string))
                    .build(),
            )
            .set_block_device_mappings(Some(bdm))
            .monitoring(sdk::LaunchTemplatesMonitoring::builder().set_enabled(req.monitoring().and_then(|m| m.enabled())).build())
            .metadata_options(
                sdk::LaunchTemplateInstanceMetadataOptions::builder()
                    .set_http_tokens(req.metadata_options().and_then(|m| m.http_tokens()).cloned())
                    .set_http_put_response_hop_limit(req.metadata_options().and_then(|m| m.http_put_response_hop_limit()))
                    .build(),
            )
            .placement(sdk::LaunchTemplatePlacement::builder().set_tenancy(req.placement().and_then(|p| p.tenancy()).cloned()).build())
            .set_network_interfaces(Some(nics))
            .instance_market_options(
                sdk::LaunchTemplateInstanceMarketOptions::builder()
                    .set_market_type(req.instance_market_options().and_then(|m| m.market_type()).cloned())
                    .spot_options(
                        sdk::LaunchTemplateSpotMarketOptions::builder()
                            .set_max_price(req.instance_market_options().and_then(|m| m.spot_options()?.max_price()).map(str::to_string))
                            .build(),
                    )
                    .build(),
            )
            .set_ebs_optimized(req.ebs_optimized())
            .build();
        response(&resp)
    }

    #[test]
    fn a_public_ip_puts_the_security_groups_on_the_primary_interface() {
        let req = request(&full());
        assert!(req.security_group_ids().is_empty(), "EC2 refuses groups at both places");
        let nic = &req.network_interfaces()[0];
        assert_eq!((nic.device_index(), nic.associate_public_ip_address()), (Some(0), Some(true)));
        assert_eq!(nic.groups(), &["sg-1".to_string(), "sg-2".to_string()]);
        assert_eq!(req.instance_market_options().and_then(|m| m.market_type()), Some(&MarketType::Spot));
        assert_eq!(req.iam_instance_profile().and_then(|p| p.arn()), Some("arn:aws:iam::1:instance-profile/web"));
    }

    #[test]
    fn every_field_reads_back_as_it_was_sent() {
        let d = full();
        assert_eq!(round_trip(&d), d);
        let plain = TemplateData { associate_public_ip: None, spot_max_price: None, ..full() };
        assert_eq!(request(&plain).security_group_ids(), &["sg-1".to_string(), "sg-2".to_string()]);
        assert_eq!(round_trip(&plain), plain);
    }
}

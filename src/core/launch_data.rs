//! Launch data as `bakeroll adopt` moves it: a launch configuration as DescribeLaunchConfigurations
//! reports it, and the launch-template data (RequestLaunchTemplateData / ResponseLaunchTemplateData)
//! it becomes. Domain types only; `core::adopt` decides the translation, the adapters convert.

use serde::Serialize;

/// An EBS volume of a block-device mapping (same fields in a configuration and a template).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ebs {
    pub snapshot_id: Option<String>,
    pub volume_size: Option<i32>,
    pub volume_type: Option<String>,
    pub delete_on_termination: Option<bool>,
    pub iops: Option<i32>,
    pub encrypted: Option<bool>,
    pub throughput: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    pub device_name: String,
    pub virtual_name: Option<String>,
    /// Suppresses a device the image would otherwise map.
    pub no_device: bool,
    pub ebs: Option<Ebs>,
}

/// Instance metadata options (IMDS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataOptions {
    /// `optional` or `required` (IMDSv2).
    pub http_tokens: Option<String>,
    pub http_put_response_hop_limit: Option<i32>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
}

/// A launch configuration, every field DescribeLaunchConfigurations reports that says how an
/// instance launches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaunchConfiguration {
    pub name: String,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    /// Security group ids (or names, for a default VPC).
    pub security_groups: Vec<String>,
    /// Base64, as Auto Scaling returns it.
    pub user_data: Option<String>,
    /// A name or an ARN.
    pub iam_instance_profile: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    /// InstanceMonitoring.Enabled (detailed monitoring).
    pub monitoring: Option<bool>,
    pub metadata: Option<MetadataOptions>,
    /// `default` or `dedicated`.
    pub placement_tenancy: Option<String>,
    pub associate_public_ip: Option<bool>,
    /// Set: the group launches Spot instances at this maximum price.
    pub spot_price: Option<String>,
    pub ebs_optimized: Option<bool>,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// EC2-Classic's ClassicLink: retired, nothing a launch template can say.
    pub classic_link_vpc_id: Option<String>,
    pub classic_link_security_groups: Vec<String>,
}

/// Launch-template data, as much of it as a launch configuration can say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateData {
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    /// SecurityGroupIds — or, with a public IP association, the primary network interface's Groups.
    pub security_group_ids: Vec<String>,
    /// SecurityGroups by name (default VPC only; never with a network interface).
    pub security_group_names: Vec<String>,
    /// Base64.
    pub user_data: Option<String>,
    /// IamInstanceProfile: an ARN (`arn:…`) or a name.
    pub iam_instance_profile: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    /// Monitoring.Enabled.
    pub monitoring: Option<bool>,
    pub metadata: Option<MetadataOptions>,
    /// Placement.Tenancy.
    pub tenancy: Option<String>,
    /// NetworkInterfaces[DeviceIndex 0].AssociatePublicIpAddress.
    pub associate_public_ip: Option<bool>,
    /// InstanceMarketOptions: MarketType `spot` with SpotOptions.MaxPrice (None: On-Demand).
    pub spot_max_price: Option<String>,
    pub ebs_optimized: Option<bool>,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
}

/// A launch template found by name (DescribeLaunchTemplates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateInfo {
    pub id: String,
    pub name: String,
    pub default_version: Option<i64>,
    pub latest_version: Option<i64>,
}

//! `bakeroll adopt`'s decisions, pure: the launch-template data a launch configuration becomes, field by
//! field (AWS's migration path: "Migrate your Auto Scaling groups to launch templates" — a template with
//! the same settings, then UpdateAutoScalingGroup, which replaces no instance), the fields a template
//! cannot carry, the name and mark of the template, and what a group needs (adopt, resume, nothing).

use serde::Serialize;

use super::launch_data::{LaunchConfiguration, TemplateData, TemplateInfo};
use super::model::Group;

/// Marks version 1 of a template `adopt` created; `format_mark` writes it, `parse_mark` reads it. A
/// re-run after an interrupted adopt recognises its own template by it (and refuses anyone else's).
pub const ADOPT_MARK: &str = "bakeroll:adopted";

/// The translation of a launch configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    pub data: TemplateData,
    /// Fields a launch template cannot say (refused unless `--force`), with their values.
    pub not_carried: Vec<String>,
}

/// The template data that launches what `lc` launches.
pub fn translate(lc: &LaunchConfiguration) -> Translation {
    let mut not_carried = Vec::new();
    if let Some(vpc) = &lc.classic_link_vpc_id {
        not_carried.push(format!("ClassicLinkVPCId {vpc} (EC2-Classic is retired; launch templates have no ClassicLink)"));
    }
    if !lc.classic_link_security_groups.is_empty() {
        not_carried.push(format!("ClassicLinkVPCSecurityGroups {}", lc.classic_link_security_groups.join(", ")));
    }
    let (ids, names): (Vec<String>, Vec<String>) = lc.security_groups.iter().cloned().partition(|g| g.starts_with("sg-"));
    let names = if lc.associate_public_ip.is_some() && !names.is_empty() {
        // A network interface takes security groups by id only.
        not_carried.push(format!(
            "SecurityGroups by name ({}) together with AssociatePublicIpAddress (a network interface needs group ids)",
            names.join(", ")
        ));
        Vec::new()
    } else {
        names
    };
    let data = TemplateData {
        image_id: lc.image_id.clone(),
        instance_type: lc.instance_type.clone(),
        key_name: lc.key_name.clone().filter(|k| !k.is_empty()),
        security_group_ids: ids,
        security_group_names: names,
        user_data: lc.user_data.clone().filter(|u| !u.is_empty()),
        iam_instance_profile: lc.iam_instance_profile.clone().filter(|p| !p.is_empty()),
        block_devices: lc.block_devices.clone(),
        monitoring: lc.monitoring,
        metadata: lc.metadata.clone(),
        tenancy: lc.placement_tenancy.clone().filter(|t| !t.is_empty()),
        associate_public_ip: lc.associate_public_ip,
        spot_max_price: lc.spot_price.clone().filter(|p| !p.is_empty()),
        ebs_optimized: lc.ebs_optimized,
        kernel_id: lc.kernel_id.clone().filter(|k| !k.is_empty()),
        ramdisk_id: lc.ramdisk_id.clone().filter(|r| !r.is_empty()),
    };
    Translation { data, not_carried }
}

/// Names of the fields where `got` (read back from EC2) differs from `want`.
pub fn differences(want: &TemplateData, got: &TemplateData) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    check("ImageId", want.image_id == got.image_id);
    check("InstanceType", want.instance_type == got.instance_type);
    check("KeyName", want.key_name == got.key_name);
    check("SecurityGroupIds", sorted(&want.security_group_ids) == sorted(&got.security_group_ids));
    check("SecurityGroups", sorted(&want.security_group_names) == sorted(&got.security_group_names));
    check("UserData", want.user_data == got.user_data);
    check("IamInstanceProfile", want.iam_instance_profile == got.iam_instance_profile);
    check("BlockDeviceMappings", want.block_devices == got.block_devices);
    check("Monitoring", want.monitoring.unwrap_or(false) == got.monitoring.unwrap_or(false));
    check("MetadataOptions", want.metadata == got.metadata);
    check("Placement.Tenancy", want.tenancy == got.tenancy);
    check("NetworkInterfaces.AssociatePublicIpAddress", want.associate_public_ip == got.associate_public_ip);
    check("InstanceMarketOptions", want.spot_max_price == got.spot_max_price);
    check("EbsOptimized", want.ebs_optimized.unwrap_or(false) == got.ebs_optimized.unwrap_or(false));
    check("KernelId", want.kernel_id == got.kernel_id);
    check("RamDiskId", want.ramdisk_id == got.ramdisk_id);
    out
}

/// What the adopted template's version 1 says about where it came from.
pub fn format_mark(configuration: &str, group: &str) -> String {
    format!("{ADOPT_MARK} launch-configuration={configuration} group={group}")
}

/// (launch configuration, group) of a version description `format_mark` wrote.
pub fn parse_mark(description: &str) -> Option<(String, String)> {
    let rest = description.trim().strip_prefix(ADOPT_MARK)?.trim();
    let mut lc = None;
    let mut group = None;
    for word in rest.split_whitespace() {
        match word.split_once('=') {
            Some(("launch-configuration", v)) => lc = Some(v.to_string()),
            Some(("group", v)) => group = Some(v.to_string()),
            _ => {}
        }
    }
    Some((lc?, group?))
}

/// The template `adopt` creates is named after the group; EC2 allows 3-128 characters of letters,
/// digits and `( ) . - / _`.
pub fn template_name(group: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "()./-_".contains(c);
    if (3..=128).contains(&group.len()) && group.chars().all(allowed) {
        Ok(group.to_string())
    } else {
        Err(format!(
            "group name {group:?} is not a valid launch-template name (3-128 letters, digits and ( ) . - / _); rename the group or create the template by hand"
        ))
    }
}

/// What one group needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The group launches from a template bakeroll adopt made: nothing to do.
    AlreadyAdopted { template: TemplateInfo },
    /// The group already uses a launch template (or a mixed instances policy) of its own.
    NotAConfiguration,
    /// Create the template, then switch the group.
    Create { configuration: String, name: String },
    /// An earlier adopt created the template (its mark says so) but did not switch the group.
    Resume { configuration: String, template: TemplateInfo },
    /// The name is taken by a template this group does not use and adopt did not make for it.
    NameTaken { template: TemplateInfo, configuration: String },
}

/// Decides from the group, the template named after it (if any) and that template's version-1
/// description.
pub fn need(group: &Group, existing: Option<&TemplateInfo>, existing_mark: Option<&str>) -> Need {
    let ours = |lc: Option<&str>| existing_mark.and_then(parse_mark).is_some_and(|(c, g)| g == group.name && lc.is_none_or(|lc| lc == c));
    match (&group.launch_configuration, existing) {
        (None, Some(t)) if group.template().is_some_and(|g| g.id == t.id) && ours(None) => {
            Need::AlreadyAdopted { template: t.clone() }
        }
        (None, _) => Need::NotAConfiguration,
        (Some(lc), None) => Need::Create { configuration: lc.clone(), name: group.name.clone() },
        (Some(lc), Some(t)) if ours(Some(lc)) => Need::Resume { configuration: lc.clone(), template: t.clone() },
        (Some(lc), Some(t)) => Need::NameTaken { template: t.clone(), configuration: lc.clone() },
    }
}

/// The command that deletes a launch configuration once nothing uses it (adopt never does).
pub fn delete_command(configuration: &str) -> String {
    format!("aws autoscaling delete-launch-configuration --launch-configuration-name {configuration}")
}

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;

//! Pure conversions between aws-sdk-ec2 types and the domain model (and the small request builders
//! the EC2 adapter repeats), kept apart so they can be tested with SDK builders and no network.

use aws_sdk_ec2::types::{self as sdk, Filter, ResourceType, TagSpecification};
use base64::prelude::{Engine as _, BASE64_STANDARD};

use crate::aws::error::missing;
use crate::aws::{epoch_secs, iso8601};
use crate::cloud::CloudResult;
use crate::core::model::*;

/// `Some(list)` only when there is something to send: an empty list is not "no filter" to EC2.
pub(super) fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

pub(super) fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

pub(super) fn filter_values(name: &str, values: &[String]) -> Filter {
    Filter::builder().name(name).set_values(Some(values.to_vec())).build()
}

pub(super) fn tags_to_sdk(tags: &Tags) -> Vec<sdk::Tag> {
    tags.iter().map(|(k, v)| sdk::Tag::builder().key(k).value(v).build()).collect()
}

pub(super) fn tags_from_sdk(tags: &[sdk::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

pub(super) fn tag_spec(resource: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder().resource_type(resource).set_tags(Some(tags_to_sdk(tags))).build()
}

pub(super) fn image(action: &str, i: &sdk::Image) -> CloudResult<Image> {
    Ok(Image {
        id: i.image_id().ok_or_else(|| missing(action, "ImageId"))?.to_string(),
        name: i.name().unwrap_or_default().to_string(),
        // An image without a state is one EC2 is still registering.
        state: i.state().map_or(ImageState::Pending, |s| ImageState::parse(s.as_str())),
        creation_date: i.creation_date().unwrap_or_default().to_string(),
        tags: tags_from_sdk(i.tags()),
        snapshot_ids: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs()?.snapshot_id())
            .map(str::to_string)
            .collect(),
        // The message is what an operator can act on ("Client.InternalError: ..."); the code is the fallback.
        state_reason: i.state_reason().and_then(|r| r.message().or(r.code())).map(str::to_string),
        architecture: i.architecture().map(|a| a.as_str().to_string()),
        owner: i.owner_id().map(str::to_string),
        encrypted: i.block_device_mappings().iter().any(|m| m.ebs().and_then(|e| e.encrypted()).unwrap_or(false)),
        protection: Protection::parse(i.deregistration_protection()),
    })
}

pub(super) fn instance(action: &str, i: &sdk::Instance) -> CloudResult<Instance> {
    Ok(Instance {
        id: i.instance_id().ok_or_else(|| missing(action, "InstanceId"))?.to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map_or_else(|| InstanceState::Other(String::new()), |n| InstanceState::parse(n.as_str())),
        image_id: i.image_id().unwrap_or_default().to_string(),
        launch_time: epoch_secs(i.launch_time()),
        tags: tags_from_sdk(i.tags()),
    })
}

pub(super) fn lt_version(action: &str, v: &sdk::LaunchTemplateVersion) -> CloudResult<LtVersion> {
    Ok(LtVersion {
        template_id: v.launch_template_id().unwrap_or_default().to_string(),
        template_name: v.launch_template_name().unwrap_or_default().to_string(),
        number: v.version_number().ok_or_else(|| missing(action, "VersionNumber"))?,
        image_id: v.launch_template_data().and_then(|d| d.image_id()).map(str::to_string),
        description: v.version_description().map(str::to_string),
        is_default: v.default_version().unwrap_or(false),
        created: iso8601(v.create_time()),
    })
}

/// Console output arrives base64-encoded; invalid UTF-8 (a garbled serial console) is kept lossily.
/// If it is not base64 at all (an emulator's shortcut), the raw text is more useful than nothing.
pub(super) fn decode_console(encoded: &str) -> String {
    match BASE64_STANDARD.decode(encoded.trim()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => encoded.to_string(),
    }
}

/// VersionDescription holds at most 255 characters; cut on a char boundary, never inside one.
pub(super) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((byte, _)) => &s[..byte],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::primitives::DateTime;
    use aws_sdk_ec2::types::{
        BlockDeviceMapping, EbsBlockDevice, ImageState as SdkImageState, InstanceStateName, ResponseLaunchTemplateData,
        StateReason,
    };

    use super::*;

    fn tag(k: &str, v: &str) -> sdk::Tag {
        sdk::Tag::builder().key(k).value(v).build()
    }

    #[test]
    fn image_maps_state_tags_and_snapshots() {
        let sdk_image = sdk::Image::builder()
            .image_id("ami-1")
            .name("web-2026")
            .state(SdkImageState::Failed)
            .creation_date("2026-11-26T08:00:00.000Z")
            .tags(tag("app", "web"))
            .block_device_mappings(
                BlockDeviceMapping::builder().ebs(EbsBlockDevice::builder().snapshot_id("snap-1").build()).build(),
            )
            // An instance-store mapping has no snapshot and must not produce an empty id.
            .block_device_mappings(BlockDeviceMapping::builder().virtual_name("ephemeral0").build())
            .state_reason(StateReason::builder().code("Client.Error").message("boom").build())
            .build();
        let img = image("ec2:DescribeImages", &sdk_image).unwrap();
        assert_eq!(img.id, "ami-1");
        assert_eq!(img.state, ImageState::Failed);
        assert_eq!(img.snapshot_ids, vec!["snap-1".to_string()]);
        assert_eq!(img.tags.get("app").map(String::as_str), Some("web"));
        assert_eq!(img.state_reason.as_deref(), Some("boom"));
        assert_eq!(img.creation_date, "2026-11-26T08:00:00.000Z");
    }

    /// DescribeImages' `DeregistrationProtection`, as AWS spells it (absent on an older endpoint: off).
    #[test]
    fn image_deregistration_protection_is_read_into_the_domain() {
        let with = |p: Option<&str>| image("ec2:DescribeImages", &sdk::Image::builder().image_id("ami-1").set_deregistration_protection(p.map(str::to_string)).build()).unwrap().protection;
        assert_eq!(with(Some("enabled-without-cooldown")), Protection::Enabled);
        assert_eq!(with(Some("enabled-with-cooldown")), Protection::EnabledWithCooldown);
        assert_eq!(with(Some("disabled after 2026-12-04T20:36:55.482Z")), Protection::CoolingDown("2026-12-04T20:36:55.482Z".into()));
        assert_eq!(with(Some("disabled")), Protection::Disabled);
        assert_eq!(with(None), Protection::Disabled);
        assert!(with(Some("disabled after 2026-12-04T20:36:55.482Z")).is_on(), "a cooldown still refuses DeregisterImage");
        assert!(!with(Some("disabled")).is_on());
    }

    #[test]
    fn image_without_id_names_the_field() {
        let err = image("ec2:DescribeImages", &sdk::Image::builder().name("x").build()).unwrap_err();
        assert!(err.message.contains("ImageId"), "{err}");
    }

    #[test]
    fn instance_maps_state_and_launch_time() {
        let i = sdk::Instance::builder()
            .instance_id("i-1")
            .image_id("ami-1")
            .state(sdk::InstanceState::builder().name(InstanceStateName::ShuttingDown).build())
            .launch_time(DateTime::from_secs(1_700_000_000))
            .tags(tag("Name", "bake"))
            .build();
        let got = instance("ec2:DescribeInstances", &i).unwrap();
        assert_eq!(got.state, InstanceState::ShuttingDown);
        assert!(got.state.is_gone());
        assert_eq!(got.launch_time, Some(1_700_000_000));
        assert_eq!(got.tags.get("Name").map(String::as_str), Some("bake"));
    }

    #[test]
    fn launch_template_version_maps_image_and_default() {
        let v = sdk::LaunchTemplateVersion::builder()
            .launch_template_id("lt-1")
            .launch_template_name("web")
            .version_number(7)
            .version_description("bakeroll ami-2")
            .default_version(true)
            .create_time(DateTime::from_secs(1_764_144_000))
            .launch_template_data(ResponseLaunchTemplateData::builder().image_id("ami-2").build())
            .build();
        let got = lt_version("ec2:DescribeLaunchTemplateVersions", &v).unwrap();
        assert_eq!((got.number, got.is_default), (7, true));
        assert_eq!(got.image_id.as_deref(), Some("ami-2"));
        assert_eq!(got.created.as_deref(), Some("2025-11-26T08:00:00Z"));
        let no_number = sdk::LaunchTemplateVersion::builder().launch_template_id("lt-1").build();
        assert!(lt_version("ec2:DescribeLaunchTemplateVersions", &no_number).is_err());
    }

    #[test]
    fn console_output_is_decoded() {
        assert_eq!(decode_console(&BASE64_STANDARD.encode("boot ok\n")), "boot ok\n");
        assert_eq!(decode_console("not base64!"), "not base64!");
    }

    #[test]
    fn descriptions_are_cut_on_char_boundaries() {
        assert_eq!(truncate_chars("abc", 255), "abc");
        let long = "é".repeat(300);
        let cut = truncate_chars(&long, 255);
        assert_eq!(cut.chars().count(), 255);
        assert_eq!(cut.len(), 510);
    }

    #[test]
    fn tags_round_trip_in_order() {
        let tags: Tags = [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into();
        let sdk_tags = tags_to_sdk(&tags);
        assert_eq!(sdk_tags[0].key(), Some("a"));
        assert_eq!(tags_from_sdk(&sdk_tags), tags);
        assert_eq!(non_empty(&[]), None);
    }
}

//! Table tests for `adopt`'s decisions: the translation field by field, the comparison, the mark, the
//! template name, and what each kind of group needs.

use super::*;
use crate::core::model::{BlockDevice, Ebs, MetadataOptions, TemplateRef};

fn lc() -> LaunchConfiguration {
    LaunchConfiguration {
        name: "web-lc".into(),
        image_id: Some("ami-1".into()),
        instance_type: Some("t3.micro".into()),
        key_name: Some("ops".into()),
        security_groups: vec!["sg-1".into()],
        user_data: Some("IyEvYmluL3NoCg==".into()),
        iam_instance_profile: Some("web-profile".into()),
        block_devices: vec![BlockDevice { device_name: "/dev/xvda".into(), ebs: Some(Ebs { volume_size: Some(20), ..Default::default() }), ..Default::default() }],
        monitoring: Some(true),
        metadata: Some(MetadataOptions { http_tokens: Some("required".into()), ..Default::default() }),
        placement_tenancy: Some("dedicated".into()),
        associate_public_ip: Some(true),
        spot_price: Some("0.05".into()),
        ebs_optimized: Some(true),
        kernel_id: Some(String::new()),
        ramdisk_id: None,
        classic_link_vpc_id: None,
        classic_link_security_groups: vec![],
    }
}

#[test]
fn every_field_a_template_can_say_is_carried_over() {
    let t = translate(&lc());
    assert!(t.not_carried.is_empty(), "{:?}", t.not_carried);
    let d = t.data;
    assert_eq!((d.image_id.as_deref(), d.instance_type.as_deref(), d.key_name.as_deref()), (Some("ami-1"), Some("t3.micro"), Some("ops")));
    assert_eq!(d.security_group_ids, vec!["sg-1".to_string()]);
    assert_eq!(d.user_data.as_deref(), Some("IyEvYmluL3NoCg=="));
    assert_eq!(d.iam_instance_profile.as_deref(), Some("web-profile"));
    assert_eq!(d.block_devices, lc().block_devices);
    assert_eq!((d.monitoring, d.ebs_optimized, d.associate_public_ip), (Some(true), Some(true), Some(true)));
    assert_eq!(d.metadata, lc().metadata);
    assert_eq!(d.tenancy.as_deref(), Some("dedicated"));
    assert_eq!(d.spot_max_price.as_deref(), Some("0.05"), "a Spot price becomes market options");
    assert_eq!(d.kernel_id, None, "an empty string AWS reports for no kernel is no kernel");
}

#[test]
fn what_a_template_cannot_say_is_listed() {
    let classic = LaunchConfiguration { classic_link_vpc_id: Some("vpc-1".into()), classic_link_security_groups: vec!["sg-9".into()], ..lc() };
    let t = translate(&classic);
    assert_eq!(t.not_carried.len(), 2, "{:?}", t.not_carried);
    assert!(t.not_carried[0].contains("ClassicLinkVPCId vpc-1"));
    // Security groups by name cannot go on a network interface.
    let named = LaunchConfiguration { security_groups: vec!["default".into(), "sg-1".into()], ..lc() };
    let t = translate(&named);
    assert!(t.not_carried.iter().any(|n| n.contains("default")), "{:?}", t.not_carried);
    assert_eq!(t.data.security_group_ids, vec!["sg-1".to_string()]);
    // Without a public IP association, names are fine (a default VPC's SecurityGroups).
    let t = translate(&LaunchConfiguration { associate_public_ip: None, ..named });
    assert!(t.not_carried.is_empty());
    assert_eq!(t.data.security_group_names, vec!["default".to_string()]);
}

#[test]
fn differences_name_the_fields_that_did_not_read_back() {
    let want = translate(&lc()).data;
    assert!(differences(&want, &want).is_empty());
    let got = TemplateData { key_name: None, security_group_ids: vec![], ..want.clone() };
    assert_eq!(differences(&want, &got), vec!["KeyName", "SecurityGroupIds"]);
    // Monitoring and EBS optimisation default to off: unset and false are the same launch.
    let off = TemplateData { monitoring: Some(false), ebs_optimized: None, ..Default::default() };
    assert!(differences(&TemplateData::default(), &off).is_empty());
    // Group order is not a difference.
    let two = TemplateData { security_group_ids: vec!["sg-1".into(), "sg-2".into()], ..Default::default() };
    let swapped = TemplateData { security_group_ids: vec!["sg-2".into(), "sg-1".into()], ..Default::default() };
    assert!(differences(&two, &swapped).is_empty());
}

#[test]
fn the_mark_reads_back_and_other_descriptions_are_not_marks() {
    let m = format_mark("web-lc", "web");
    assert_eq!(parse_mark(&m), Some(("web-lc".into(), "web".into())));
    assert_eq!(parse_mark("bakeroll:release commit=abc"), None);
    assert_eq!(parse_mark("initial"), None);
}

#[test]
fn templates_are_named_after_the_group_when_ec2_allows_it() {
    assert_eq!(template_name("shop-web").as_deref(), Ok("shop-web"));
    assert!(template_name("ab").is_err(), "at least 3 characters");
    assert!(template_name("shop web").unwrap_err().contains("shop web"));
}

fn group(lc: Option<&str>, template: Option<&str>) -> Group {
    Group {
        name: "web".into(),
        launch_configuration: lc.map(str::to_string),
        launch_template: template.map(|id| TemplateRef { id: id.into(), name: "web".into(), version: "1".into() }),
        ..Default::default()
    }
}

fn info(id: &str) -> TemplateInfo {
    TemplateInfo { id: id.into(), name: "web".into(), default_version: Some(1), latest_version: Some(1) }
}

#[test]
fn what_each_group_needs() {
    let mark = format_mark("web-lc", "web");
    let on_lc = group(Some("web-lc"), None);
    assert_eq!(need(&on_lc, None, None), Need::Create { configuration: "web-lc".into(), name: "web".into() });
    // Interrupted after CreateLaunchTemplate: our template, the group not yet switched.
    assert_eq!(need(&on_lc, Some(&info("lt-1")), Some(&mark)), Need::Resume { configuration: "web-lc".into(), template: info("lt-1") });
    // Someone else's template under that name: refused.
    assert!(matches!(need(&on_lc, Some(&info("lt-1")), Some("initial")), Need::NameTaken { .. }));
    // Adopted from another configuration: not ours to reuse for this one.
    assert!(matches!(need(&on_lc, Some(&info("lt-1")), Some(&format_mark("old-lc", "web"))), Need::NameTaken { .. }));
    // Done: the group runs the template adopt made.
    assert_eq!(need(&group(None, Some("lt-1")), Some(&info("lt-1")), Some(&mark)), Need::AlreadyAdopted { template: info("lt-1") });
    // A group on a template of its own never was a launch-configuration group.
    assert_eq!(need(&group(None, Some("lt-9")), Some(&info("lt-1")), Some(&mark)), Need::NotAConfiguration);
    assert_eq!(need(&group(None, Some("lt-9")), None, None), Need::NotAConfiguration);
}

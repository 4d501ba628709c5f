//! EC2 behaviour: build-instance lifecycle, images and snapshots, launch templates, call-level faults.

use super::*;
use crate::cloud::ErrorKind;

fn build_spec(image: &str, user_data: &str) -> LaunchSpec {
    LaunchSpec {
        image_id: image.to_string(),
        instance_type: "t3.small".to_string(),
        user_data: Some(user_data.to_string()),
        tags: Tags::from([("bakeroll:build".to_string(), "shop-web".to_string())]),
        ..LaunchSpec::default()
    }
}

const SCRIPT: &str = "#!/bin/bash\nset -e\necho \"BAKE-MARKER provisioning done\"\nshutdown -h now\n";

#[tokio::test(start_paused = true)]
async fn build_instance_runs_its_script_then_stops_and_is_imaged() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let ec2 = fake.cloud().ec2;
    let inst = ec2.launch_instance(&build_spec(&base, SCRIPT)).await.unwrap();
    assert_eq!(inst.state, InstanceState::Pending);
    assert_eq!(
        ec2.instance_status_ok(&inst.id).await.unwrap(),
        None,
        "no status while pending"
    );
    assert_eq!(ec2.console_output(&inst.id).await.unwrap(), "");

    sleep(15).await; // Timings::instance_running
    assert_eq!(fake.instance(&inst.id).unwrap().state, InstanceState::Running);
    assert_eq!(
        ec2.instance_status_ok(&inst.id).await.unwrap(),
        Some(false),
        "checks initializing"
    );
    sleep(60).await;
    assert_eq!(ec2.instance_status_ok(&inst.id).await.unwrap(), Some(true));
    sleep(30).await; // 90 s of provisioning since running
    assert_eq!(fake.instance(&inst.id).unwrap().state, InstanceState::Stopping);
    sleep(10).await;
    assert_eq!(fake.instance(&inst.id).unwrap().state, InstanceState::Stopped);
    let console = ec2.console_output(&inst.id).await.unwrap();
    assert!(console.contains("BAKE-MARKER provisioning done"), "{console}");
    assert!(console.trim_end().ends_with("reboot: Power down"), "{console}");

    let tags = Tags::from([("bakeroll:service".to_string(), "shop-web".to_string())]);
    let ami = ec2
        .create_image(&inst.id, "shop-web 2026-01-01T00-01-55", "", true, &tags)
        .await
        .unwrap();
    let img = fake.image(&ami).unwrap();
    assert_eq!(img.state, ImageState::Pending);
    assert_eq!(img.creation_date, "2026-01-01T00:01:55.000Z");
    assert_eq!(img.snapshot_ids.len(), 1, "one snapshot per image");
    assert_eq!(
        fake.snapshot_tags(&img.snapshot_ids[0]),
        Some(Tags::new()),
        "CreateImage tags the image only"
    );
    sleep(119).await;
    assert_eq!(fake.image(&ami).unwrap().state, ImageState::Pending);
    sleep(1).await; // Timings::image_available = 120 s
    assert_eq!(fake.image(&ami).unwrap().state, ImageState::Available);
    let mine = ImageFilter {
        owners: vec!["self".into()],
        tags: tags.clone(),
        ..ImageFilter::default()
    };
    assert_eq!(ec2.find_images(&mine).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn hung_provisioning_and_failed_images_never_settle_well() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let ec2 = fake.cloud().ec2;
    let stuck = ec2.launch_instance(&build_spec(&base, SCRIPT)).await.unwrap();
    fake.fail_provisioning(&stuck.id);
    fake.fail_all_provisioning(true);
    let stuck_too = ec2.launch_instance(&build_spec(&base, SCRIPT)).await.unwrap();
    fake.fail_all_provisioning(false);
    let fine = ec2.launch_instance(&build_spec(&base, SCRIPT)).await.unwrap();
    sleep(3600).await;
    assert_eq!(fake.instance(&stuck.id).unwrap().state, InstanceState::Running);
    assert_eq!(fake.instance(&stuck_too.id).unwrap().state, InstanceState::Running);
    assert_eq!(fake.instance(&fine.id).unwrap().state, InstanceState::Stopped);
    assert!(
        ec2.console_output(&stuck.id).await.unwrap().contains("BAKE-MARKER"),
        "the script's output so far"
    );

    fake.fail_new_images(true);
    let ami = ec2
        .create_image(&fine.id, "shop-web-broken", "", true, &Tags::new())
        .await
        .unwrap();
    sleep(120).await;
    let img = fake.image(&ami).unwrap();
    assert_eq!(img.state, ImageState::Failed);
    assert!(img.state_reason.unwrap().contains("InternalError"));
}

#[tokio::test(start_paused = true)]
async fn image_names_are_unique_and_validated() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let ec2 = fake.cloud().ec2;
    let inst = ec2.launch_instance(&build_spec(&base, "echo hi")).await.unwrap();
    let e = ec2
        .create_image(&inst.id, "shop-web-1", "", true, &Tags::new())
        .await
        .unwrap_err();
    assert!(
        e.is("IncorrectInstanceState"),
        "pending instances cannot be imaged: {e}"
    );
    sleep(15).await;
    ec2.create_image(&inst.id, "shop-web-1", "", false, &Tags::new())
        .await
        .unwrap();
    let e = ec2
        .create_image(&inst.id, "shop-web-1", "", true, &Tags::new())
        .await
        .unwrap_err();
    assert!(e.is("InvalidAMIName.Duplicate") && e.kind == ErrorKind::Conflict, "{e}");
    let e = ec2
        .create_image(&inst.id, "shop-web 12:00", "", true, &Tags::new())
        .await
        .unwrap_err();
    assert!(
        e.is("InvalidAMIName.Malformed"),
        "colons are not allowed in AMI names: {e}"
    );
    let e = ec2
        .create_image("i-0000000000000dead", "x-y-z", "", true, &Tags::new())
        .await
        .unwrap_err();
    assert!(e.is("InvalidInstanceID.NotFound") && e.kind == ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn snapshots_stay_in_use_until_their_image_is_deregistered() {
    let fake = FakeCloud::new();
    let ami = fake.add_image(ImageSpec::named("shop-web-old").tag("bakeroll:service", "shop-web"));
    let snap = fake.image(&ami).unwrap().snapshot_ids[0].clone();
    let ec2 = fake.cloud().ec2;
    let tags = Tags::from([("bakeroll:service".to_string(), "shop-web".to_string())]);
    ec2.create_tags(std::slice::from_ref(&snap), &tags).await.unwrap();
    assert_eq!(fake.snapshot_tags(&snap), Some(tags));

    let e = ec2.delete_snapshot(&snap).await.unwrap_err();
    assert!(e.is("InvalidSnapshot.InUse") && e.message.contains(&ami), "{e}");
    ec2.deregister_image(&ami).await.unwrap();
    assert_eq!(fake.image(&ami).unwrap().state, ImageState::Deregistered);
    let all = ImageFilter {
        owners: vec!["self".into()],
        ..ImageFilter::default()
    };
    assert!(
        ec2.find_images(&all).await.unwrap().is_empty(),
        "deregistered images are not listed"
    );
    assert!(ec2
        .deregister_image(&ami)
        .await
        .unwrap_err()
        .is("InvalidAMIID.NotFound"));
    ec2.delete_snapshot(&snap).await.unwrap();
    assert!(ec2
        .delete_snapshot(&snap)
        .await
        .unwrap_err()
        .is("InvalidSnapshot.NotFound"));
    assert_eq!(fake.snapshot_tags(&snap), None);
}

#[tokio::test(start_paused = true)]
async fn find_images_filters_by_owner_name_wildcards_and_tags() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let old = fake.add_image(ImageSpec::named("shop-web-2025-12-31").tag("bakeroll:service", "shop-web"));
    let other = fake.add_image(ImageSpec::named("shop-api-2025-12-31").tag("bakeroll:service", "shop-api"));
    let ec2 = fake.cloud().ec2;
    let ids = |imgs: Vec<Image>| {
        let mut v: Vec<String> = imgs.into_iter().map(|i| i.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let f = |owners: &[&str], name: Option<&str>, tag: Option<(&str, &str)>| ImageFilter {
        owners: owners.iter().map(|s| s.to_string()).collect(),
        name: name.map(str::to_string),
        tags: tag.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..ImageFilter::default()
    };
    assert_eq!(
        ids(ec2
            .find_images(&f(&["amazon"], Some("al2023-ami-*-x86_64"), None))
            .await
            .unwrap()),
        vec![base.clone()]
    );
    assert_eq!(
        ids(ec2.find_images(&f(&["self"], None, None)).await.unwrap()),
        sorted(vec![old.clone(), other.clone()])
    );
    assert_eq!(
        ids(ec2
            .find_images(&f(&[ACCOUNT], Some("shop-???-2025-*"), None))
            .await
            .unwrap()),
        sorted(vec![old.clone(), other])
    );
    assert_eq!(
        ids(ec2
            .find_images(&f(&[], None, Some(("bakeroll:service", "shop-w*"))))
            .await
            .unwrap()),
        vec![old]
    );
    let by_id = ImageFilter {
        ids: vec!["ami-00000000000000bad".into()],
        ..ImageFilter::default()
    };
    assert_eq!(ec2.find_images(&by_id).await.unwrap_err().kind, ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn terminated_instances_linger_for_an_hour_then_vanish() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let ec2 = fake.cloud().ec2;
    let inst = ec2.launch_instance(&build_spec(&base, SCRIPT)).await.unwrap();
    let tag = Tags::from([("bakeroll:build".to_string(), "shop-web".to_string())]);
    assert_eq!(ec2.find_instances(&tag).await.unwrap().len(), 1);
    let e = ec2
        .terminate_instances(&[inst.id.clone(), "i-0000000000000dead".into()])
        .await
        .unwrap_err();
    assert!(e.is("InvalidInstanceID.NotFound"));
    assert_eq!(
        fake.instance(&inst.id).unwrap().state,
        InstanceState::Pending,
        "all or nothing"
    );
    ec2.terminate_instances(std::slice::from_ref(&inst.id)).await.unwrap();
    assert_eq!(fake.instance(&inst.id).unwrap().state, InstanceState::ShuttingDown);
    assert!(ec2.find_instances(&tag).await.unwrap().is_empty());
    assert!(fake.live_instances_with_tag("bakeroll:build", "shop-web").is_empty());
    sleep(10).await;
    assert_eq!(
        ec2.describe_instances(std::slice::from_ref(&inst.id)).await.unwrap()[0].state,
        InstanceState::Terminated
    );
    sleep(3600).await;
    assert!(ec2
        .describe_instances(std::slice::from_ref(&inst.id))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn create_tags_is_all_or_nothing() {
    let fake = FakeCloud::new();
    let ami = fake.add_image(ImageSpec::named("shop-web-1"));
    let ec2 = fake.cloud().ec2;
    let tags = Tags::from([("k".to_string(), "v".to_string())]);
    let e = ec2
        .create_tags(&[ami.clone(), "snap-0000000000000dead".into()], &tags)
        .await
        .unwrap_err();
    assert!(e.is("InvalidSnapshot.NotFound"));
    assert!(fake.image(&ami).unwrap().tags.is_empty());
    let reserved = Tags::from([("aws:owner".to_string(), "me".to_string())]);
    assert!(ec2
        .create_tags(&[ami], &reserved)
        .await
        .unwrap_err()
        .is("InvalidParameterValue"));
}

#[tokio::test(start_paused = true)]
async fn launch_template_versions_copy_their_source() {
    let fake = FakeCloud::new();
    let stack = fake.add_stack(StackSpec::new("shop-web"));
    let new = fake.add_image(ImageSpec::named("shop-web-v2"));
    let ec2 = fake.cloud().ec2;
    let v2 = ec2
        .create_launch_template_version(&stack.template_id, 1, &new, "bakeroll deploy")
        .await
        .unwrap();
    assert_eq!(
        (v2.number, v2.image_id.as_deref(), v2.is_default),
        (2, Some(new.as_str()), false)
    );
    let (one, two) = (
        fake.template_version(&stack.template_id, 1).unwrap(),
        fake.template_version(&stack.template_id, 2).unwrap(),
    );
    assert_eq!(
        two.instance_type, one.instance_type,
        "SourceVersion's settings are kept"
    );
    assert_eq!(
        (two.user_data, two.security_group_ids, two.instance_tags),
        (one.user_data, one.security_group_ids, one.instance_tags)
    );

    let pick = |vs: &[&str]| vs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let got = ec2
        .launch_template_versions(&stack.template_id, &pick(&["$Latest", "$Default"]))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|v| v.number).collect::<Vec<_>>(), vec![2, 1]);
    ec2.set_default_version(&stack.template_id, 2).await.unwrap();
    let all = ec2.launch_template_versions(&stack.template_id, &[]).await.unwrap();
    assert_eq!(
        all.iter().map(|v| (v.number, v.is_default)).collect::<Vec<_>>(),
        vec![(2, true), (1, false)]
    );

    let e = ec2
        .launch_template_versions(&stack.template_id, &pick(&["7"]))
        .await
        .unwrap_err();
    assert!(e.is("InvalidLaunchTemplateId.VersionNotFound"), "{e}");
    let e = ec2
        .create_launch_template_version("lt-0000000000000dead", 1, &new, "")
        .await
        .unwrap_err();
    assert!(e.is("InvalidLaunchTemplateId.NotFound") && e.kind == ErrorKind::NotFound);
    let e = ec2
        .create_launch_template_version(&stack.template_id, 1, &new, &"x".repeat(256))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(ec2.set_default_version(&stack.template_id, 9).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn injected_faults_denials_and_latency() {
    let fake = FakeCloud::new();
    let stack = fake.add_stack(StackSpec::new("shop-web"));
    let cloud = fake.cloud();
    fake.fail_next("ec2:DescribeImages", ErrorKind::Transient, "RequestLimitExceeded");
    let e = cloud.ec2.find_images(&ImageFilter::default()).await.unwrap_err();
    assert!(e.is_transient() && e.is("RequestLimitExceeded") && e.action == "ec2:DescribeImages");
    assert!(cloud.ec2.find_images(&ImageFilter::default()).await.is_ok(), "one-shot");

    fake.deny("ec2:CreateLaunchTemplateVersion");
    fake.deny("autoscaling:*");
    let e = cloud
        .ec2
        .create_launch_template_version(&stack.template_id, 1, &stack.image_id, "")
        .await
        .unwrap_err();
    assert!(e.kind == ErrorKind::Denied && e.is("UnauthorizedOperation"), "{e}");
    let e = cloud.autoscaling.describe_group("shop-web").await.unwrap_err();
    assert!(e.kind == ErrorKind::Denied && e.is("AccessDenied"), "{e}");

    fake.clear_faults();
    fake.fail_always(
        "elasticloadbalancing:DescribeTargetHealth",
        ErrorKind::Transient,
        "Throttling",
    );
    for _ in 0..3 {
        assert!(cloud.elbv2.target_health(&stack.target_group_arns[0]).await.is_err());
    }
    fake.clear_faults();
    fake.set_latency("autoscaling:DescribeAutoScalingGroups", Duration::from_secs(5));
    let before = fake.now_offset();
    assert!(cloud.autoscaling.describe_group("shop-web").await.unwrap().is_some());
    assert_eq!(fake.now_offset() - before, Duration::from_secs(5));

    let calls = fake.calls();
    assert_eq!(calls["ec2:DescribeImages"], 2, "failed calls are counted");
    assert_eq!(calls["elasticloadbalancing:DescribeTargetHealth"], 3);
    assert_eq!(calls["autoscaling:DescribeAutoScalingGroups"], 2);
    assert_eq!(cloud.calls.snapshot(), calls, "the Cloud's ledger is the fake's");
}

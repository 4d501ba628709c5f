//! The dry-run layer over the fake cloud: reads are real, writes change nothing and are checked with
//! DryRun (denied by the fake's `deny()`), placeholders answer later reads consistently.

use super::*;
use crate::cloud::DryRunOp;
use crate::core::model::{ImageFilter, LaunchSpec, RefreshPrefs, RefreshRequest, Tags};
use crate::fake::{FakeCloud, ImageSpec, StackSpec};

fn prefs() -> RefreshPrefs {
    RefreshPrefs {
        min_healthy_percentage: 100,
        max_healthy_percentage: 200,
        instance_warmup: None,
        checkpoints: vec![],
        checkpoint_delay: None,
        skip_matching: true,
        auto_rollback: true,
        bake_time: None,
        alarms: vec![],
        standby_instances: None,
        scale_in_protected_instances: None,
    }
}

#[tokio::test(start_paused = true)]
async fn writes_change_nothing_and_answer_with_placeholders() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let stack = fake.add_stack(StackSpec::new("web"));
    let plan = DryRun::default();
    let cloud = plan.wrap(fake.cloud());
    let images_before = fake.images().len();

    let spec = LaunchSpec { image_id: base.clone(), instance_type: "t3.micro".into(), ..Default::default() };
    let instance = cloud.ec2.launch_instance(&spec).await.unwrap();
    assert_eq!(instance.id, "i-(planned)");
    // A later read of the planned instance is answered by the plan, not sent to EC2.
    let seen = cloud.ec2.describe_instances(std::slice::from_ref(&instance.id)).await.unwrap();
    assert_eq!(seen.len(), 1);
    let ami = cloud.ec2.create_image(&instance.id, "web-1", "d", true, &Tags::new()).await.unwrap();
    assert_eq!(ami, "ami-(planned)");
    let found = cloud.ec2.find_images(&ImageFilter { ids: vec![ami.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(found[0].snapshot_ids, vec!["snap-(planned)".to_string()]);

    let v = cloud.ec2.create_launch_template_version(&stack.template_id, 1, &ami, "release").await.unwrap();
    assert_eq!(v.number, 2, "the next number after the template's only version");
    let back = cloud.ec2.launch_template_versions(&stack.template_id, &["2".into()]).await.unwrap();
    assert_eq!(back[0].image_id.as_deref(), Some("ami-(planned)"), "verify-after-write reads the planned version");
    let req = RefreshRequest::template("web", &stack.template_id, 2, prefs());
    assert_eq!(cloud.autoscaling.start_instance_refresh(&req).await.unwrap(), "refresh-(planned)");
    cloud.ec2.terminate_instances(std::slice::from_ref(&instance.id)).await.unwrap();

    // The world is as it was.
    assert_eq!(fake.images().len(), images_before);
    assert!(fake.refreshes("web").is_empty());
    assert!(fake.template_version(&stack.template_id, 2).is_none(), "no version was created");
    assert!(!fake.calls().contains_key("autoscaling:StartInstanceRefresh"), "Auto Scaling writes are never sent");

    let json = serde_json::to_value(plan.report()).unwrap();
    let allowed: Vec<&str> = json["permissions"]["allowed"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(allowed, ["ec2:CreateImage", "ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"]);
    let unverified: Vec<&str> = json["permissions"]["unverified"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(unverified, ["autoscaling:StartInstanceRefresh", "ec2:TerminateInstances"]);
    let creates = plan.resources().into_iter().filter(|(_, e)| e.change == Change::Create).count();
    assert_eq!(creates, 6, "instance, volume, image, snapshot, version, refresh: {:?}", plan.resources());
    assert!(plan.denials().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_denied_dry_run_is_recorded_with_the_action() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    fake.deny("ec2:RunInstances");
    let plan = DryRun::default();
    let cloud = plan.wrap(fake.cloud());
    let spec = LaunchSpec { image_id: base, instance_type: "t3.micro".into(), ..Default::default() };
    cloud.ec2.launch_instance(&spec).await.expect("planning goes on after a denial");
    let denials = plan.denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].action, "ec2:RunInstances");
    assert_eq!(denials[0].code.as_deref(), Some("UnauthorizedOperation"));
    assert_eq!(plan.steps()[0].permission, Some(Permission::Denied));
    assert!(fake.live_instances_with_tag("bakeroll:role", "build-instance").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_denied_read_fails_the_call_as_it_would_for_real() {
    let fake = FakeCloud::new();
    fake.deny("ec2:DescribeImages");
    let plan = DryRun::default();
    let err = plan.wrap(fake.cloud()).ec2.find_images(&ImageFilter::default()).await.unwrap_err();
    assert_eq!(err.kind, crate::cloud::ErrorKind::Denied);
    assert_eq!(plan.steps()[0].permission, Some(Permission::Denied));
}

#[tokio::test(start_paused = true)]
async fn the_fake_answers_dry_runs_without_touching_the_world() {
    let fake = FakeCloud::new();
    let base = fake.add_image(ImageSpec::amazon_linux());
    let op = DryRunOp::DeregisterImage { image_id: base.clone() };
    fake.cloud().ec2.check_permission(&op).await.expect("allowed");
    assert!(fake.image(&base).is_some(), "DryRun never deregisters");
    fake.deny("ec2:DeregisterImage");
    let err = fake.cloud().ec2.check_permission(&op).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (crate::cloud::ErrorKind::Denied, Some("UnauthorizedOperation")));
}

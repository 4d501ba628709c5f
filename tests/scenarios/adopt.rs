//! `bakeroll adopt` in the fake cloud: a launch-configuration group moves to a template with every
//! field of its configuration and the same instances, then deploys; a second run changes nothing; a run
//! cut off between creating the template and switching the group is finished by the next; a name taken
//! by someone else's template, a field a template cannot carry and a template that reads back wrong are
//! refused with the group untouched; the dry run lists every call and changes nothing.

use bakeroll::cli::dry_run::context;
use bakeroll::cloud::dry_run::{DryRun, StepKind};
use bakeroll::cloud::ErrorKind;
use bakeroll::core::model::{BlockDevice, Ebs, LaunchConfiguration, MetadataOptions};
use bakeroll::engine::adopt::{adopt, AdoptOutcome};
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::error::exit;
use bakeroll::fake::ImageSpec;

use crate::{world, World};

/// Every field a launch configuration can set that a template carries over.
fn settings() -> LaunchConfiguration {
    LaunchConfiguration {
        key_name: Some("ops".into()),
        user_data: Some("IyEvYmluL3NoCnN5c3RlbWN0bCBzdGFydCBhcHAK".into()),
        iam_instance_profile: Some("shop-web".into()),
        block_devices: vec![BlockDevice {
            device_name: "/dev/xvda".into(),
            ebs: Some(Ebs { volume_size: Some(16), volume_type: Some("gp3".into()), encrypted: Some(true), ..Default::default() }),
            ..Default::default()
        }],
        monitoring: Some(true),
        metadata: Some(MetadataOptions { http_tokens: Some("required".into()), http_put_response_hop_limit: Some(2), http_endpoint: Some("enabled".into()) }),
        placement_tenancy: Some("default".into()),
        associate_public_ip: Some(true),
        ebs_optimized: Some(true),
        ..Default::default()
    }
}

fn on_lc(extra: LaunchConfiguration) -> (World, String) {
    let w = world();
    let lc = w.fake.use_launch_configuration("shop-web", extra);
    (w, lc)
}

fn ids(w: &World) -> Vec<String> {
    let mut v: Vec<String> = w.fake.group_instances("shop-web").into_iter().map(|(id, ..)| id).collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn a_launch_configuration_group_is_adopted_field_by_field_without_replacing_an_instance_then_deploys() {
    let (w, lc) = on_lc(settings());
    let before = ids(&w);
    // deploy refuses the group, naming it and the way forward.
    let req = DeployRequest { env: "prod".into(), image_id: w.stack.image_id.clone(), commit: None, force: false, targets: Default::default(), images: Default::default() };
    let err = deploy(&w.ctx, &w.env(), &req).await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("shop-web") && err.to_string().contains("bakeroll adopt"), "{err}");

    // So does rollback.
    let (_, result) = crate::releases::roll_back(&w, "previous").await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("bakeroll adopt"), "{err}");

    let (reports, result) = adopt(&w.ctx, &w.env(), false).await;
    result.expect("adopted");
    let r = &reports[0];
    assert_eq!(r.outcome, AdoptOutcome::Adopted);
    assert_eq!(r.launch_configuration.as_deref(), Some(lc.as_str()));
    assert!(r.delete_command.as_deref().unwrap().contains(&format!("--launch-configuration-name {lc}")));
    assert_eq!(ids(&w), before, "no instance was replaced");
    assert_eq!(w.calls("ec2:TerminateInstances") + w.calls("autoscaling:StartInstanceRefresh"), 0);
    let id = w.fake.template_id("shop-web").expect("a template named after the group");
    assert_eq!(r.template_id.as_deref(), Some(id.as_str()));
    let g = w.fake.group("shop-web").unwrap();
    assert_eq!((g.launch_template.as_ref().map(|t| (t.id.as_str(), t.version.as_str())), g.launch_configuration.as_deref()), (Some((id.as_str(), "1")), None));
    // Version 1 holds every field of the configuration.
    let data = w.fake.template_data(&id, 1).unwrap();
    let s = settings();
    assert_eq!(data.image_id.as_deref(), Some(w.stack.image_id.as_str()));
    assert_eq!(data.instance_type.as_deref(), Some("t3.micro"));
    assert_eq!((data.key_name, data.user_data, data.iam_instance_profile), (s.key_name, s.user_data, s.iam_instance_profile));
    assert_eq!((data.block_devices, data.metadata), (s.block_devices, s.metadata));
    assert_eq!((data.monitoring, data.associate_public_ip, data.ebs_optimized, data.tenancy.as_deref()), (Some(true), Some(true), Some(true), Some("default")));
    assert_eq!(data.security_group_ids, vec!["sg-0fake0000000000001".to_string()]);
    assert_eq!(w.fake.group_launch_configuration("shop-web"), None);

    // A second run: already adopted, nothing changes.
    let writes = w.mutations().len();
    let creates = w.calls("ec2:CreateLaunchTemplate");
    let (again, result) = adopt(&w.ctx, &w.env(), false).await;
    result.unwrap();
    assert_eq!(again[0].outcome, AdoptOutcome::AlreadyAdopted);
    assert_eq!((w.calls("ec2:CreateLaunchTemplate"), w.calls("autoscaling:UpdateAutoScalingGroup")), (creates, 1));
    assert_eq!(w.mutations().len(), writes);

    // And now it deploys like any template group.
    let ami = w.fake.add_image(ImageSpec::named("shop-c2"));
    let req = DeployRequest { image_id: ami.clone(), ..req };
    deploy(&w.ctx, &w.env(), &req).await.1.expect("deployed after adopt");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
}

#[tokio::test(start_paused = true)]
async fn an_adopt_cut_off_before_the_switch_is_finished_by_the_next_run() {
    let (w, lc) = on_lc(settings());
    let before = ids(&w);
    w.fake.fail_next("autoscaling:UpdateAutoScalingGroup", ErrorKind::Transient, "ServiceUnavailable");
    let (_, result) = adopt(&w.ctx, &w.env(), false).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::AWS_ERROR, "{err}");
    assert!(err.state().unwrap().contains("still on launch configuration"), "{:?}", err.state());
    assert_eq!(w.fake.group_launch_configuration("shop-web"), Some(lc), "the group is untouched");

    let (reports, result) = adopt(&w.ctx, &w.env(), false).await;
    result.expect("the second run converges");
    assert_eq!(reports[0].outcome, AdoptOutcome::Adopted);
    assert!(reports[0].resumed);
    assert_eq!(w.calls("ec2:CreateLaunchTemplate"), 1, "the first run's template is reused, not duplicated");
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.map(|t| t.version).as_deref(), Some("1"));
    assert_eq!(ids(&w), before);
}

#[tokio::test(start_paused = true)]
async fn a_name_taken_by_another_template_a_field_a_template_cannot_carry_and_a_bad_read_back_are_refused() {
    // Someone else's template named like the group.
    let (w, lc) = on_lc(settings());
    w.fake.add_template("shop-web", &w.stack.image_id, "t3.micro");
    let (_, result) = adopt(&w.ctx, &w.env(), false).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("is taken by launch template"), "{err}");
    assert_eq!(w.fake.group_launch_configuration("shop-web").as_deref(), Some(lc.as_str()));
    assert_eq!(w.calls("autoscaling:UpdateAutoScalingGroup"), 0);

    // ClassicLink: refused unless --force, then adopted and listed.
    let (w, _) = on_lc(LaunchConfiguration { classic_link_vpc_id: Some("vpc-0classic".into()), ..settings() });
    let (_, result) = adopt(&w.ctx, &w.env(), false).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("ClassicLinkVPCId vpc-0classic") && err.to_string().contains("--force"), "{err}");
    assert_eq!(w.calls("ec2:CreateLaunchTemplate"), 0);
    let (reports, result) = adopt(&w.ctx, &w.env(), true).await;
    result.expect("adopted with --force");
    assert_eq!(reports[0].not_carried.len(), 1);

    // The template reads back without a field: exit 7, the group stays on its configuration.
    let (w, lc) = on_lc(settings());
    w.fake.drop_key_name_on_next_template();
    let (_, result) = adopt(&w.ctx, &w.env(), false).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::AWS_ERROR);
    assert!(err.to_string().contains("KeyName"), "{err}");
    assert_eq!(w.fake.group_launch_configuration("shop-web"), Some(lc));
    assert_eq!(w.calls("autoscaling:UpdateAutoScalingGroup"), 0);
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_lists_every_call_and_changes_nothing() {
    let (w, lc) = on_lc(settings());
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let (reports, result) = adopt(&ctx, &w.env(), false).await;
    result.expect("planned");
    assert_eq!(reports[0].template_id.as_deref(), Some("lt-(planned)"));
    let writes: Vec<String> = plan.steps().into_iter().filter(|s| s.kind == StepKind::Write).filter_map(|s| s.action).collect();
    assert_eq!(writes, vec!["ec2:CreateLaunchTemplate", "autoscaling:UpdateAutoScalingGroup"]);
    let reads: Vec<String> = plan.steps().into_iter().filter(|s| s.kind == StepKind::Read).filter_map(|s| s.action).collect();
    for r in ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplates", "autoscaling:DescribeLaunchConfigurations"] {
        assert!(reads.iter().any(|a| a == r), "{r} not in {reads:?}");
    }
    assert_eq!(w.fake.group_launch_configuration("shop-web"), Some(lc));
    assert_eq!(w.fake.template_id("shop-web"), None, "nothing was created");
    assert_eq!(w.calls("ec2:CreateLaunchTemplate"), 1, "the DryRun request proves the permission");
}

//! Dry runs against the fake cloud: the engine plans every write of a ship in order without changing the
//! world or waiting, names a permission the principal lacks, plans the pin of a `$Latest` group, and
//! plans nothing for a bake that would reuse its image.

use bakeroll::core::model::Image;
use bakeroll::engine::bake::{bake, BakeRequest};
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::fake::{ImageSpec, StackSpec};
use bakeroll::cli::dry_run::context;
use bakeroll::cloud::dry_run::{DryRun, Permission, StepKind};
use tokio::time::{Duration, Instant};

use crate::{world, world_of, World, PIPELINE};

fn req(commit: &str) -> BakeRequest {
    BakeRequest { commit: commit.into(), ..Default::default() }
}

fn deploy_req(ami: &str) -> DeployRequest {
    DeployRequest { env: "prod".into(), image_id: ami.into(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() }
}

/// What a dry run must leave exactly as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    images: Vec<Image>,
    group: Vec<(String, String, String)>,
    template: Option<String>,
    refreshes: usize,
    builds: Vec<String>,
    version_2: bool,
}

fn snapshot(w: &World) -> Snapshot {
    Snapshot {
        images: w.fake.images(),
        group: w.fake.group_instances("shop-web"),
        template: w.fake.group("shop-web").and_then(|g| g.launch_template).map(|t| t.version),
        refreshes: w.fake.refreshes("shop-web").len(),
        builds: w.fake.live_instances_with_tag("bakeroll:role", "build-instance"),
        version_2: w.fake.template_version(&w.stack.template_id, 2).is_some(),
    }
}

fn writes(plan: &DryRun) -> Vec<String> {
    plan.steps().into_iter().filter(|s| s.kind == StepKind::Write).filter_map(|s| s.action).collect()
}

#[tokio::test(start_paused = true)]
async fn dry_run_ship_plans_every_write_in_order_and_changes_nothing() {
    let w = world();
    let before = snapshot(&w);
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let started = Instant::now();

    let baked = bake(&ctx, &req("abc123")).await.expect("bake planned");
    assert_eq!(baked.ami_id, "ami-(planned)");
    let (report, result) = deploy(&ctx, &w.env(), &deploy_req(&baked.ami_id)).await;
    result.expect("deploy planned");

    assert_eq!(snapshot(&w), before, "the world is untouched");
    assert!(started.elapsed() < Duration::from_secs(1), "nothing was waited for: {:?}", started.elapsed());
    assert_eq!(
        writes(&plan),
        [
            "ec2:RunInstances",
            "ec2:CreateImage",
            "ec2:CreateTags",
            "ec2:TerminateInstances",
            "ec2:CreateLaunchTemplateVersion",
            "autoscaling:StartInstanceRefresh",
            "ec2:ModifyLaunchTemplate",
            // The verified release's mark on its (planned) image, and that image's protection.
            "ec2:CreateTags",
            "ec2:EnableImageDeregistrationProtection",
        ]
    );
    let waits: Vec<String> = plan.steps().into_iter().filter(|s| s.kind == StepKind::Wait).filter_map(|s| s.what).collect();
    assert_eq!(waits.len(), 3, "build instance ready, image available, refresh watched: {waits:?}");
    assert!(waits[2].contains("roll back"), "{}", waits[2]);
    let g = &report.groups[0];
    assert_eq!((g.old_version, g.new_version, g.outcome.clone()), (1, Some(2), None), "planned, not deployed");
    assert_eq!(g.refresh_ids, ["refresh-(planned)"]);
    // The start of the refresh is the one write no DryRun can prove.
    let start = plan.steps().into_iter().find(|s| s.action.as_deref() == Some("autoscaling:StartInstanceRefresh")).unwrap();
    assert_eq!(start.permission, Some(Permission::Unverified));
    assert!(plan.denials().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_missing_permission_is_named_and_planning_goes_on() {
    let w = world();
    w.fake.deny("ec2:CreateImage");
    let before = snapshot(&w);
    let plan = DryRun::default();
    bake(&context(&plan, &w.ctx), &req("abc123")).await.expect("the plan is complete despite the denial");
    let denied: Vec<String> = plan.denials().into_iter().map(|d| d.action).collect();
    assert_eq!(denied, ["ec2:CreateImage"]);
    assert!(writes(&plan).contains(&"ec2:TerminateInstances".to_string()), "the rest of the bake is still planned");
    assert_eq!(snapshot(&w), before);
}

#[tokio::test(start_paused = true)]
async fn a_group_on_latest_is_pinned_in_the_plan_only() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web").version_ref("$Latest"));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let before = snapshot(&w);
    let plan = DryRun::default();
    let (_, result) = deploy(&context(&plan, &w.ctx), &w.env(), &deploy_req(&ami)).await;
    result.expect("planned");
    assert_eq!(writes(&plan)[0], "autoscaling:UpdateAutoScalingGroup");
    assert_eq!(snapshot(&w), before, "still on $Latest");
}

#[tokio::test(start_paused = true)]
async fn a_bake_that_would_reuse_its_image_plans_no_write() {
    let w = world();
    let real = bake(&w.ctx, &req("abc123")).await.expect("real bake");
    let plan = DryRun::default();
    let planned = bake(&context(&plan, &w.ctx), &req("abc123")).await.expect("planned");
    assert_eq!((planned.ami_id, planned.reused), (real.ami_id, true));
    assert!(writes(&plan).is_empty(), "{:?}", plan.steps());
    assert!(plan.notes().iter().any(|n| n.message.contains("reusing image")), "{:?}", plan.notes());
}

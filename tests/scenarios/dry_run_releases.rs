//! Dry runs of rollback, prune and gc against the fake cloud: every write is planned (with EC2's DryRun
//! verdict where there is one), nothing changes, and nothing is waited for.

use std::time::Duration;

use bakeroll::core::releases::TargetSpec;
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::engine::gc::{gc_decision, gc_execute};
use bakeroll::engine::retention::prune_execute;
use bakeroll::engine::rollback;
use bakeroll::fake::Health;
use bakeroll::cli::dry_run::context;
use bakeroll::cloud::dry_run::{DryRun, Permission, StepKind};
use tokio::time::Instant;

use crate::releases::{baked, ship};
use crate::{world, World};

fn writes(plan: &DryRun) -> Vec<(String, Option<Permission>)> {
    plan.steps().into_iter().filter(|s| s.kind == StepKind::Write).map(|s| (s.action.unwrap_or_default(), s.permission)).collect()
}

fn waits(plan: &DryRun) -> usize {
    plan.steps().iter().filter(|s| s.kind == StepKind::Wait).count()
}

async fn planned_rollback(w: &World, plan: &DryRun, to: &str) {
    let ctx = context(plan, &w.ctx);
    let env = w.env();
    let p = rollback::decide(&ctx, &env, &TargetSpec::parse(to).unwrap(), to, false).await.expect("planned");
    let (_, result) = rollback::execute(&ctx, &env, &p).await;
    result.expect("a dry run succeeds");
}

#[tokio::test(start_paused = true)]
async fn dry_run_rollback_plans_the_refresh_and_changes_nothing() {
    let w = world();
    ship(&w, "aaaaaaa", Health::Healthy).await.1.unwrap();
    let (b, _) = ship(&w, "bbbbbbb", Health::Healthy).await;
    let refreshes = w.fake.refreshes("shop-web").len();
    let plan = DryRun::default();
    let started = Instant::now();
    planned_rollback(&w, &plan, "previous").await;
    assert!(started.elapsed() < Duration::from_secs(1), "nothing waited for");
    let planned = writes(&plan);
    assert!(planned.iter().any(|(a, _)| a == "autoscaling:StartInstanceRefresh"), "{planned:?}");
    assert!(planned.iter().all(|(a, _)| a != "ec2:CreateLaunchTemplateVersion"), "A's version is reused: {planned:?}");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![b; 3]);
    assert_eq!(w.fake.refreshes("shop-web").len(), refreshes);
}

#[tokio::test(start_paused = true)]
async fn dry_run_rollback_of_a_refresh_in_flight_plans_rollback_instance_refresh() {
    let w = world();
    ship(&w, "aaaaaaa", Health::Healthy).await.1.unwrap();
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    let deploying = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = DeployRequest { env: "prod".into(), image_id: b, commit: Some("bbbbbbb".into()), force: false, targets: Default::default(), images: Default::default() };
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    w.until_refresh("shop-web", "Baking").await;
    let plan = DryRun::default();
    planned_rollback(&w, &plan, "previous").await;
    assert_eq!(writes(&plan), [("autoscaling:RollbackInstanceRefresh".to_string(), Some(Permission::Unverified))]);
    assert_eq!(waits(&plan), 1);
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 0, "not sent");
    assert_eq!(w.fake.refreshes("shop-web")[0].status.as_str(), "Baking");
    deploying.await.unwrap().1.expect("the deploy carries on, untouched");
}

#[tokio::test(start_paused = true)]
async fn dry_run_prune_and_gc_check_permissions_and_delete_nothing() {
    let w = world();
    for c in ["r100000", "r200000", "r300000", "r400000"] {
        ship(&w, c, Health::Healthy).await.1.unwrap();
    }
    let images = w.fake.images().len();
    let snapshots = w.fake.snapshot_ids().len();
    w.fake.deny("ec2:DeleteSnapshot");
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let decided = crate::prune_plan(&ctx, 0).await;
    assert_eq!(decided.decision.delete.len(), 2, "{:?}", decided.decision);
    let started = Instant::now();
    let (_, result) = prune_execute(std::slice::from_ref(&decided)).await;
    result.expect("planned");
    assert!(started.elapsed() < Duration::from_secs(1), "nothing waited for");
    let planned = writes(&plan);
    assert_eq!(planned.iter().filter(|(a, p)| a == "ec2:DeregisterImage" && *p == Some(Permission::Allowed)).count(), 2, "{planned:?}");
    assert_eq!(planned.iter().filter(|(a, p)| a == "ec2:DeleteSnapshot" && *p == Some(Permission::Denied)).count(), 2, "{planned:?}");
    assert_eq!(plan.denials().len(), 2);
    assert_eq!((w.fake.images().len(), w.fake.snapshot_ids().len()), (images, snapshots));

    w.fake.fail_all_provisioning(true);
    let req = bakeroll::engine::bake::BakeRequest { commit: "dead0001".into(), ..Default::default() };
    let _ = tokio::time::timeout(Duration::from_secs(120), bakeroll::engine::bake::bake(&w.ctx, &req)).await;
    let leaked = w.fake.live_instances_with_tag("bakeroll:role", "build-instance");
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let decided = gc_decision(&ctx, &bakeroll::engine::sites::read_all(&ctx).await.unwrap(), Duration::ZERO, i64::MAX / 2).await.unwrap();
    assert_eq!(decided.build_instances.terminate.len(), 1);
    gc_execute(&ctx, &[], &decided).await.1.expect("planned");
    assert_eq!(writes(&plan), [("ec2:TerminateInstances".to_string(), Some(Permission::Allowed))]);
    assert_eq!(w.fake.live_instances_with_tag("bakeroll:role", "build-instance"), leaked, "still running");
}

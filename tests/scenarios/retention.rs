//! prune and gc scenarios: with many releases prune never deletes an image in use, at `$Default` or
//! `$Latest`, or the rollback target, and deletes the snapshots of what it deregisters; gc terminates
//! the build instance a killed bake left behind, and nothing younger or of another pipeline.

use std::time::Duration;

use bakeroll::core::model::{ImageState, LaunchSpec, Tags};
use bakeroll::core::tags;
use bakeroll::engine::bake::{bake, BakeRequest};
use bakeroll::engine::gc::{gc_decision, gc_execute};
use bakeroll::engine::retention::prune_execute;
use bakeroll::error::exit;
use bakeroll::fake::Health;

use crate::releases::ship;
use crate::{world, World};

fn available(w: &World, ami: &str) -> bool {
    w.fake.image(ami).is_some_and(|i| i.state == ImageState::Available)
}

#[tokio::test(start_paused = true)]
async fn prune_keeps_what_is_in_use_or_needed_for_rollback_and_deletes_the_rest_with_snapshots() {
    let w = world();
    let mut amis = Vec::new();
    for c in ["r1", "r2", "r3", "r4", "r5", "r6"] {
        let (ami, result) = ship(&w, &format!("{c}00000"), Health::Healthy).await;
        result.expect("deployed");
        amis.push(ami);
    }
    let (bad, result) = ship(&w, "r700000", Health::Unhealthy).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let snapshots = |ami: &str| w.fake.image(ami).unwrap().snapshot_ids;

    // Without --yes: the plan, and nothing touched.
    let plan = crate::prune_plan(&w.ctx, 0).await;
    let kept: Vec<&str> = plan.decision.keep.iter().map(|k| k.ami.as_str()).collect();
    let deleted: Vec<&str> = plan.decision.delete.iter().map(|d| d.ami.as_str()).collect();
    assert_eq!(kept, [bad.as_str(), &amis[5], &amis[4]], "{:#?}", plan.decision.keep);
    assert_eq!(deleted, [&amis[3], &amis[2], &amis[1], &amis[0]]);
    let why = |ami: &str| plan.decision.keep.iter().find(|k| k.ami == ami).unwrap().reasons.join("; ");
    assert!(why(&bad).contains("$Latest"), "{}", why(&bad));
    assert!(why(&amis[5]).contains("in use by group shop-web") && why(&amis[5]).contains("$Default"), "{}", why(&amis[5]));
    assert!(why(&amis[4]).contains("rollback target"), "{}", why(&amis[4]));
    assert!(w.mutations().iter().all(|m| !m.contains("Deregister") && !m.contains("DeleteSnapshot")));

    // With --yes: exactly the plan, snapshots included.
    let doomed_snaps: Vec<String> = amis[..4].iter().flat_map(|a| snapshots(a)).collect();
    let (done, result) = prune_execute(std::slice::from_ref(&plan)).await;
    result.expect("pruned");
    assert_eq!(done.done.len(), 4);
    for ami in &amis[..4] {
        assert!(!available(&w, ami), "{ami} deregistered");
    }
    for ami in [&bad, &amis[5], &amis[4]] {
        assert!(available(&w, ami), "{ami} kept");
    }
    let left = w.fake.snapshot_ids();
    assert!(doomed_snaps.iter().all(|s| !left.contains(s)), "snapshots deleted: {doomed_snaps:?} / {left:?}");
    assert!(snapshots(&amis[4]).iter().all(|s| left.contains(s)), "kept images keep their snapshots");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![amis[5].clone(); 3], "the fleet never noticed");

    // --keep counts the newest available images; in-use ones are kept on top.
    let plan = crate::prune_plan(&w.ctx, 1).await;
    assert!(plan.decision.delete.is_empty(), "{:?}", plan.decision.delete);
}

#[tokio::test(start_paused = true)]
async fn prune_protects_what_a_group_runs_even_mid_rollout_and_only_this_pipeline() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    // An image of another pipeline and the stack's own first image are not ours to prune.
    let other = w.fake.add_image(bakeroll::fake::ImageSpec::named("billing-1").tag(tags::PIPELINE, "billing"));
    let plan = crate::prune_plan(&w.ctx, 0).await;
    assert!(plan.decision.delete.is_empty() && plan.decision.keep.len() == 1 && plan.decision.keep[0].ami == a, "{:?}", plan.decision);
    assert!(available(&w, &other));
}

/// A bake killed mid-provisioning: its future is dropped after two minutes, so no cleanup runs (as with
/// SIGKILL). Returns the build instances alive afterwards.
async fn leaked_bake(w: &World, commit: &str) -> Vec<String> {
    let req = BakeRequest { commit: commit.into(), ..Default::default() };
    let cut = tokio::time::timeout(Duration::from_secs(120), bake(&w.ctx, &req)).await;
    assert!(cut.is_err(), "the bake was still provisioning");
    w.fake.live_instances_with_tag(tags::ROLE, tags::ROLE_BUILD)
}

#[tokio::test(start_paused = true)]
async fn gc_terminates_the_build_instance_a_killed_bake_left_and_nothing_else() {
    let w = world();
    w.fake.fail_all_provisioning(true);
    // A bake killed mid-provisioning (the task is dropped: no cleanup runs, as with SIGKILL).
    let old = leaked_bake(&w, "dead0001").await;
    assert_eq!(old.len(), 1);
    let launched = w.fake.instance(&old[0]).unwrap().launch_time.unwrap();
    let t0 = w.fake.now_offset();
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    // A younger leak, and a build instance of another pipeline.
    let both = leaked_bake(&w, "dead0002").await;
    let other_tags = Tags::from([
        (tags::ROLE.to_string(), tags::ROLE_BUILD.to_string()),
        (tags::PIPELINE.to_string(), "billing".to_string()),
    ]);
    let spec = LaunchSpec { image_id: w.base.clone(), instance_type: "t3.micro".into(), tags: other_tags, ..Default::default() };
    let other = w.ctx.cloud.ec2.launch_instance(&spec).await.unwrap().id;
    let now = launched + (w.fake.now_offset() - t0).as_secs() as i64;

    let plan = gc_decision(&w.ctx, &bakeroll::engine::sites::read_all(&w.ctx).await.unwrap(), Duration::from_secs(2 * 3600), now).await.unwrap();
    let doomed: Vec<&str> = plan.build_instances.terminate.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(doomed, [old[0].as_str()]);
    assert_eq!(plan.build_instances.terminate[0].commit.as_deref(), Some("dead0001"));
    assert_eq!(plan.build_instances.spared.len(), 1, "the young one: {:?}", plan.build_instances.spared);
    let (done, result) = gc_execute(&w.ctx, &[], &plan).await;
    result.expect("terminated");
    assert_eq!(done.done, [old[0].clone()]);
    let live = w.fake.live_instances_with_tag(tags::ROLE, tags::ROLE_BUILD);
    assert!(!live.contains(&old[0]), "{live:?}");
    let young_id = both.iter().find(|i| **i != old[0]).unwrap();
    assert!(live.contains(young_id) && live.contains(&other), "younger and foreign build instances untouched: {live:?}");
}

#[tokio::test(start_paused = true)]
async fn gc_reports_versions_no_group_uses_and_deletes_none() {
    let w = world();
    ship(&w, "aaaaaaa", Health::Healthy).await.1.unwrap();
    ship(&w, "bbbbbbb", Health::Unhealthy).await.1.unwrap_err();
    ship(&w, "ccccccc", Health::Healthy).await.1.unwrap();
    // v2 = A (ran; C was deployed from it), v3 = B (rolled back; nothing refers to it), v4 = C (current).
    let plan = gc_decision(&w.ctx, &bakeroll::engine::sites::read_all(&w.ctx).await.unwrap(), Duration::from_secs(7200), 0).await.unwrap();
    assert_eq!(plan.unreferenced_versions.len(), 1);
    assert_eq!(plan.unreferenced_versions[0].versions, [3]);
    let (_, result) = gc_execute(&w.ctx, &[], &plan).await;
    result.unwrap();
    assert!(w.fake.template_version(&w.stack.template_id, 3).is_some(), "reported, never deleted");
}

#[tokio::test(start_paused = true)]
async fn prune_finishes_an_earlier_prune_that_left_snapshots_behind() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    let (b, _) = ship(&w, "bbbbbbb", Health::Healthy).await;
    let (c, _) = ship(&w, "ccccccc", Health::Healthy).await;
    let snaps = |ami: &str| w.fake.image(ami).unwrap().snapshot_ids;
    let (a_snaps, b_snaps) = (snaps(&a), snaps(&b));
    // A prune deregistered A and then lost its connection before deleting the snapshot.
    w.fake.fail_next("ec2:DeleteSnapshot", bakeroll::cloud::ErrorKind::Other, "InternalError");
    let plan = crate::prune_plan(&w.ctx, 0).await;
    assert_eq!(plan.decision.delete.iter().map(|d| d.ami.as_str()).collect::<Vec<_>>(), [a.as_str()], "B is C's rollback target");
    let (_, result) = prune_execute(std::slice::from_ref(&plan)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::AWS_ERROR, "{err}");
    assert!(err.state().unwrap().contains(&a_snaps[0]), "{:?}", err.state());
    assert!(w.fake.snapshot_ids().contains(&a_snaps[0]), "the snapshot was left behind");

    // The next prune finds it although its image is gone, and deletes only it.
    let plan = crate::prune_plan(&w.ctx, 0).await;
    assert!(plan.decision.delete.is_empty(), "{:?}", plan.decision.delete);
    assert_eq!(plan.decision.orphan_snapshots, a_snaps);
    let (done, result) = prune_execute(std::slice::from_ref(&plan)).await;
    result.expect("finished");
    assert_eq!(done.snapshots_deleted, a_snaps);
    let left = w.fake.snapshot_ids();
    assert!(!left.contains(&a_snaps[0]) && left.contains(&b_snaps[0]) && snaps(&c).iter().all(|s| left.contains(s)));
}

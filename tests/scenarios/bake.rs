//! Bake scenarios: success with provenance, reuse on retry, image failure, provisioning timeout with
//! the console tail shown, permission denied mid-way, and cancellation — the build instance is gone
//! after every one of them.

use std::time::Duration;

use bakeroll::cloud::ErrorKind;
use bakeroll::core::tags;
use bakeroll::engine::bake::{bake, BakeRequest};
use bakeroll::events::Event;
use bakeroll::error::exit;

use crate::world;

fn req(commit: &str) -> BakeRequest {
    BakeRequest { commit: commit.into(), ..Default::default() }
}

fn build_instances_alive(w: &crate::World) -> Vec<String> {
    w.fake.live_instances_with_tag(tags::ROLE, tags::ROLE_BUILD)
}

#[tokio::test(start_paused = true)]
async fn bake_tags_image_and_snapshots_and_terminates_the_build_instance() {
    let w = world();
    let mut r = req("abc123");
    r.provenance.insert("bakeroll:ci-job-id".into(), "42".into());
    let baked = bake(&w.ctx, &r).await.expect("bake succeeds");
    assert_eq!(baked.ami_name, "shop-abc123");
    assert!(!baked.reused);
    assert_eq!(baked.source, w.base, "the newest amazon base image");
    let image = w.fake.image(&baked.ami_id).expect("image exists");
    assert_eq!(image.tags.get(tags::COMMIT).map(String::as_str), Some("abc123"));
    assert_eq!(image.tags.get("bakeroll:ci-job-id").map(String::as_str), Some("42"));
    assert_eq!(image.tags.get("app").map(String::as_str), Some("shop"));
    assert!(!image.snapshot_ids.is_empty());
    for snap in &image.snapshot_ids {
        let t = w.fake.snapshot_tags(snap).expect("snapshot exists");
        assert_eq!(t.get(tags::COMMIT).map(String::as_str), Some("abc123"), "snapshot {snap}");
    }
    assert!(build_instances_alive(&w).is_empty(), "build instance terminated");
}

#[tokio::test(start_paused = true)]
async fn retried_bake_reuses_the_image() {
    let w = world();
    let first = bake(&w.ctx, &req("abc123")).await.unwrap();
    let second = bake(&w.ctx, &req("abc123")).await.unwrap();
    assert_eq!(first.ami_id, second.ami_id);
    assert!(second.reused);
    assert_eq!(w.calls("ec2:RunInstances"), 1, "no second build instance");
    assert_eq!(w.calls("ec2:CreateImage"), 1, "no duplicate image");
    assert_eq!(w.fake.images().iter().filter(|i| i.name == "shop-abc123").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn image_that_fails_is_reported_and_cleaned_up() {
    let w = world();
    w.fake.fail_new_images(true);
    let err = bake(&w.ctx, &req("abc123")).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::BAKE_FAILED, "{err}");
    assert!(err.to_string().contains("did not become available"), "{err}");
    assert!(build_instances_alive(&w).is_empty());
    let state = err.state().unwrap();
    assert!(state.contains("terminated"), "{state}");
    assert!(state.contains("deregistered"), "{state}");
}

#[tokio::test(start_paused = true)]
async fn provisioning_timeout_shows_console_tail_and_terminates() {
    let w = world();
    w.fake.fail_all_provisioning(true);
    let started = tokio::time::Instant::now();
    let err = bake(&w.ctx, &req("abc123")).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::BAKE_FAILED, "{err}");
    assert!(err.to_string().contains("not ready after"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(20 * 60), "waited the whole bake.timeout");
    let console = w.events().into_iter().find_map(|e| match e {
        Event::Detail { title, body, .. } if title.contains("console output") => Some(body),
        _ => None,
    });
    assert!(console.is_some_and(|b| !b.is_empty()), "console tail shown");
    assert!(build_instances_alive(&w).is_empty());
    assert_eq!(w.calls("ec2:CreateImage"), 0);
}

#[tokio::test(start_paused = true)]
async fn denied_create_image_exits_5_and_terminates() {
    let w = world();
    w.fake.deny("ec2:CreateImage");
    let err = bake(&w.ctx, &req("abc123")).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::DENIED, "{err}");
    assert!(err.to_string().contains("ec2:CreateImage"), "{err}");
    assert!(build_instances_alive(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn transient_errors_while_waiting_are_retried() {
    let w = world();
    // DescribeInstances is only called by the readiness poll: its throttling must not fail the bake.
    w.fake.fail_next("ec2:DescribeInstances", ErrorKind::Transient, "RequestLimitExceeded");
    let baked = bake(&w.ctx, &req("abc123")).await.expect("retried through throttling");
    assert!(w.fake.image(&baked.ami_id).is_some());
}

#[tokio::test(start_paused = true)]
async fn cancelled_bake_leaves_no_build_instance() {
    let w = world();
    // What `Session::interruptible` does on SIGTERM: drop the bake, then clean the ledger.
    let cut = tokio::time::timeout(Duration::from_secs(60), bake(&w.ctx, &req("abc123"))).await;
    assert!(cut.is_err(), "the bake was still provisioning");
    assert_eq!(build_instances_alive(&w).len(), 1, "the build instance is up before cleanup");
    let report = w.ctx.ledger.clean_bake(&w.ctx.cloud).await;
    assert_eq!(report.terminated.len(), 1);
    assert!(report.errors.is_empty());
    assert!(build_instances_alive(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn missing_base_image_is_a_precondition_and_changes_nothing() {
    let w = crate::world_with(&crate::PIPELINE.replace("al2023-ami-*-x86_64", "no-such-*"), 1);
    let err = bake(&w.ctx, &req("abc123")).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains("base_ami_filter"), "{err}");
    assert!(w.mutations().is_empty(), "{:?}", w.mutations());
}

#[tokio::test(start_paused = true)]
async fn existing_build_instance_is_imaged_and_left_running() {
    let w = world();
    let spec = bakeroll::core::model::LaunchSpec {
        image_id: w.base.clone(),
        instance_type: "t3.micro".into(),
        ..Default::default()
    };
    let instance = w.ctx.cloud.ec2.launch_instance(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let r = BakeRequest { build_instance: Some(instance.id.clone()), ..req("abc123") };
    let baked = bake(&w.ctx, &r).await.expect("imaged the existing instance");
    assert_eq!(baked.source, format!("instance:{}", instance.id));
    assert!(w.fake.image(&baked.ami_id).is_some());
    let after = w.fake.instance(&instance.id).unwrap();
    assert!(!after.state.is_gone(), "never terminated: {:?}", after.state);
    assert_eq!(w.calls("ec2:TerminateInstances"), 0);
}

/// A run killed mid-provisioning (SIGKILL: no cleanup) leaves its build instance; the next bake of the
/// same commit reuses it instead of launching another, and terminates it at the end.
#[tokio::test(start_paused = true)]
async fn a_rerun_after_a_kill_mid_bake_reuses_the_build_instance_and_cleans_it_up() {
    let w = world();
    let killed = {
        let ctx = w.ctx.clone();
        tokio::spawn(async move { bake(&ctx, &req("abc123")).await })
    };
    while build_instances_alive(&w).is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    killed.abort();
    let left = build_instances_alive(&w);
    assert_eq!(left.len(), 1, "the dead run's instance is still there");
    let baked = bake(&w.ctx, &req("abc123")).await.expect("the re-run bakes");
    assert_eq!(baked.build_instance.as_deref(), Some(left[0].as_str()), "reused");
    assert_eq!(w.calls("ec2:RunInstances"), 1, "no second build instance");
    assert!(build_instances_alive(&w).is_empty(), "terminated at the end");
}

/// Killed after CreateImage: the re-run reuses the pending image and terminates the instance the dead
/// run never got to.
#[tokio::test(start_paused = true)]
async fn a_rerun_after_a_kill_after_create_image_reuses_the_image_and_terminates_the_instance() {
    let w = world();
    let killed = {
        let ctx = w.ctx.clone();
        tokio::spawn(async move { bake(&ctx, &req("abc123")).await })
    };
    while w.calls("ec2:CreateImage") == 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    killed.abort();
    assert_eq!(build_instances_alive(&w).len(), 1);
    let baked = bake(&w.ctx, &req("abc123")).await.expect("the re-run reuses the image");
    assert!(baked.reused);
    assert_eq!(w.calls("ec2:CreateImage"), 1);
    assert!(build_instances_alive(&w).is_empty(), "the dead run's build instance is gone");
}

//! One release across three groups in two waves (a canary, then the web and worker tiers together), in
//! virtual time: the groups of a wave in flight at once, the next wave waiting for every group of this
//! one, a conviction in wave 2 undoing wave 2 then wave 1, a stop mid-wave, a crash and a re-run
//! mid-wave, and groups that share a target group sharing its call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bakeroll::cloud::CallLedger;
use bakeroll::core::release::{GroupState, Verdict};
use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::{deploy, DeployReport, DeployRequest};
use bakeroll::engine::Ctx;
use bakeroll::error::{exit, Error};
use bakeroll::events::{Event, Events, Sink};
use bakeroll::fake::{Health, ImageSpec, StackSpec};

use crate::{world_of, World};

const TIERS: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
ami_name = "shop-{commit}"
[environments.prod]
waves = [["shop-canary"], ["shop-web", "shop-worker"]]
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
[environments.prod.groups.shop-canary]
bake_time = "3m"
"#;

const GROUPS: [&str; 3] = ["shop-canary", "shop-web", "shop-worker"];

/// shop-web (3 instances, target group shop-web-tg1), the canary (1 instance) in the same target group
/// as the web tier, and the worker (2 instances) in its own; all on one image.
fn tiers() -> World {
    let w = world_of(TIERS, StackSpec::new("shop-web"));
    let web_tg = w.fake.group("shop-web").unwrap().target_group_arns[0].clone();
    let image = w.stack.image_id.clone();
    w.fake.add_stack(StackSpec::new("shop-canary").instances(1).target_groups(0).join_target_group(web_tg).image(image.clone()));
    w.fake.add_stack(StackSpec::new("shop-worker").instances(2).image(image));
    w
}

fn request(ami: &str) -> DeployRequest {
    DeployRequest { env: "prod".into(), image_id: ami.into(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() }
}

fn spawn(w: &World, ami: &str) -> tokio::task::JoinHandle<(DeployReport, Result<(), Error>)> {
    let (ctx, env, req) = (w.ctx.clone(), w.env(), request(ami));
    tokio::spawn(async move { deploy(&ctx, &env, &req).await })
}

/// (start, end) of a group's refreshes, oldest first, in the fake's seconds.
fn spans(w: &World, group: &str) -> Vec<(i64, i64)> {
    let mut r: Vec<(i64, i64)> = w.fake.refreshes(group).iter().map(|r| (r.start_time.unwrap(), r.end_time.unwrap_or(i64::MAX))).collect();
    r.reverse();
    r
}

fn state(report: &DeployReport, group: &str) -> (usize, Option<GroupState>) {
    let g = report.groups.iter().find(|g| g.group == group).unwrap_or_else(|| panic!("{group} in the report"));
    (g.wave, g.state)
}

#[tokio::test(start_paused = true)]
async fn a_good_release_goes_wave_by_wave_with_a_wave_in_flight_together() {
    let w = tiers();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("deployed");
    for g in GROUPS {
        assert!(w.fake.in_service_images(g).iter().all(|i| *i == ami), "{g}: {:?}", w.fake.in_service_images(g));
        assert_eq!(spans(&w, g).len(), 1, "{g}: one refresh");
    }
    let (canary, web, worker) = (spans(&w, "shop-canary")[0], spans(&w, "shop-web")[0], spans(&w, "shop-worker")[0]);
    // Wave 2 starts only once the canary's refresh (with its own bake time) ended and it was verified.
    assert!(web.0 >= canary.1 && worker.0 >= canary.1, "canary {canary:?}, web {web:?}, worker {worker:?}");
    // The web and worker tiers start together and are in flight at the same time.
    assert!((web.0 - worker.0).abs() <= 1, "web {web:?}, worker {worker:?}");
    assert!(web.0 < worker.1 && worker.0 < web.1, "in flight at once: web {web:?}, worker {worker:?}");
    assert_eq!(report.verdict, Some(Verdict::Done));
    assert_eq!(state(&report, "shop-canary"), (1, Some(GroupState::Verified)));
    assert_eq!(state(&report, "shop-worker"), (2, Some(GroupState::Verified)));
    assert_eq!(report.groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), GROUPS, "the report lists the groups in wave order");
}

#[tokio::test(start_paused = true)]
async fn a_conviction_in_wave_two_undoes_wave_two_then_wave_one() {
    let w = tiers();
    let old = w.stack.image_id.clone();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    // Only the worker tier's target group rejects the release.
    let worker_tg = w.fake.group("shop-worker").unwrap().target_group_arns[0].clone();
    w.fake.set_image_health_in(&ami, &worker_tg, Health::Unhealthy);
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    for g in GROUPS {
        assert_eq!(w.fake.in_service_images(g).iter().filter(|i| **i != old).count(), 0, "{g} back on the previous release");
        assert_eq!(state(&report, g).1, Some(GroupState::Restored), "{g}");
    }
    assert!(matches!(&report.groups[2].outcome, Some(Outcome::RolledBack { reason: RollbackReason::Unhealthy { .. } })), "{:?}", report.groups[2].outcome);
    // The canary, verified on the release in wave 1, went back with a refresh of its own — after wave 2 was back.
    let canary = spans(&w, "shop-canary");
    assert_eq!(canary.len(), 2, "the release's refresh and the refresh back: {canary:?}");
    let wave2_back = spans(&w, "shop-web").last().unwrap().1.max(spans(&w, "shop-worker").last().unwrap().1);
    assert!(canary[1].0 >= wave2_back, "the canary goes back after wave 2: canary {canary:?}, wave 2 back at {wave2_back}");
    assert!(matches!(&report.groups[0].outcome, Some(Outcome::RolledBack { reason: RollbackReason::Sibling { group } }) if group == "shop-worker"));
    let state = err.state().unwrap();
    assert!(GROUPS.iter().all(|g| state.contains(&format!("{g} back on launch-template version 1"))), "{state}");
}

#[tokio::test(start_paused = true)]
async fn a_stop_mid_wave_two_undoes_every_group_touched() {
    let w = tiers();
    let old = w.stack.image_id.clone();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let deploying = spawn(&w, &ami);
    w.until_refresh("shop-worker", "InProgress").await;
    w.ctx.stop.request("SIGTERM");
    let (report, result) = deploying.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::INTERRUPTED, "{err}");
    for g in GROUPS {
        assert!(w.fake.in_service_images(g).iter().all(|i| *i == old), "{g}: {:?}", w.fake.in_service_images(g));
        assert_eq!(state(&report, g).1, Some(GroupState::Restored), "{g}");
    }
    assert!(err.state().unwrap().contains("SIGTERM"), "{:?}", err.state());
}

#[tokio::test(start_paused = true)]
async fn a_crash_mid_wave_then_the_same_deploy_resumes_the_release() {
    let w = tiers();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let first = spawn(&w, &ami);
    w.until_refresh("shop-web", "InProgress").await;
    // SIGKILL: the run is gone, nothing cleaned up; its refreshes go on in AWS.
    first.abort();
    let _ = first.await;
    let again = Ctx::new(w.fake.cloud(), w.ctx.events.clone(), w.ctx.pipeline.clone());
    let (report, result) = deploy(&again, &w.env(), &request(&ami)).await;
    result.expect("the re-run finishes the release");
    for g in GROUPS {
        assert!(w.fake.in_service_images(g).iter().all(|i| *i == ami), "{g}");
        assert_eq!(spans(&w, g).len(), 1, "{g}: the re-run started no refresh of its own");
    }
    assert!(report.groups[0].already_deployed, "the canary stays done");
}

#[tokio::test(start_paused = true)]
async fn groups_sharing_a_target_group_share_its_call_each_poll() {
    let text = TIERS.replace(r#"waves = [["shop-canary"], ["shop-web", "shop-worker"]]"#, r#"waves = [["shop-canary", "shop-web", "shop-worker"]]"#);
    let w = world_of(&text, StackSpec::new("shop-web"));
    let web_tg = w.fake.group("shop-web").unwrap().target_group_arns[0].clone();
    w.fake.add_stack(StackSpec::new("shop-canary").instances(1).target_groups(0).join_target_group(web_tg).image(w.stack.image_id.clone()));
    w.fake.add_stack(StackSpec::new("shop-worker").instances(2).image(w.stack.image_id.clone()));
    let polls = Arc::new(Polls { calls: w.ctx.cloud.calls.clone(), rounds: Mutex::default() });
    let ctx = Ctx { events: Events(polls.clone()), ..w.ctx.clone() };
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = deploy(&ctx, &w.env(), &request(&ami)).await;
    result.expect("deployed");
    let snapshots = polls.rounds.lock().unwrap().clone();
    // What each poll called: the difference between two snapshots taken as consecutive polls report.
    let rounds: Vec<BTreeMap<String, u32>> = snapshots
        .windows(2)
        .map(|w| w[1].iter().map(|(a, n)| (a.clone(), n - w[0].get(a).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect())
        .collect();
    assert!(rounds.len() > 5, "{rounds:?}");
    // Three groups in flight, two distinct target groups: at most 1 + 3 + 2 calls a poll.
    for (n, r) in rounds.iter().enumerate() {
        assert!(r.get("autoscaling:DescribeAutoScalingGroups").copied().unwrap_or(0) <= 1, "poll {n}: {r:?}");
        assert!(r.get("autoscaling:DescribeInstanceRefreshes").copied().unwrap_or(0) <= 3, "poll {n}: {r:?}");
        assert!(r.get("elasticloadbalancing:DescribeTargetHealth").copied().unwrap_or(0) <= 2, "poll {n}: {r:?}");
    }
    assert!(rounds.iter().any(|r| r.get("elasticloadbalancing:DescribeTargetHealth") == Some(&2)), "{rounds:?}");
}

/// Calls made between two polls, segmented by the Progress event of the first group of each poll.
struct Polls {
    calls: CallLedger,
    rounds: Mutex<Vec<BTreeMap<String, u32>>>,
}

impl Sink for Polls {
    fn emit(&self, event: Event) {
        if let Event::Progress { scope, .. } = event {
            if scope == "shop-canary" {
                self.rounds.lock().unwrap().push(self.calls.snapshot());
            }
        }
    }
}

/// Following the `Next:` line of a release stuck on two groups: the rollback it names goes to the release
/// every group ran before — the canary, already back on it, stays — where `--to previous` would have taken
/// the canary one release further back.
#[tokio::test(start_paused = true)]
async fn the_next_step_of_a_stuck_release_moves_no_group_past_where_it_was() {
    use bakeroll::core::releases::TargetSpec;
    use bakeroll::engine::rollback;
    let w = tiers();
    let a = w.fake.add_image(ImageSpec::named("shop-a"));
    let (_, first) = deploy(&w.ctx, &w.env(), &DeployRequest { commit: Some("aaaaaaa".into()), ..request(&a) }).await;
    first.expect("release A everywhere");
    let b = w.fake.add_image(ImageSpec::named("shop-b"));
    let worker_tg = w.fake.group("shop-worker").unwrap().target_group_arns[0].clone();
    w.fake.set_image_health_in(&b, &worker_tg, Health::Unhealthy);
    // bakeroll's own way back from an in-flight refresh fails: wave 2 ends verified on neither release.
    w.fake.fail_always("autoscaling:RollbackInstanceRefresh", bakeroll::cloud::ErrorKind::Other, "InternalFailure");
    let (report, result) = deploy(&w.ctx, &w.env(), &DeployRequest { commit: Some("bbbbbbb".into()), ..request(&b) }).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::NEEDS_HUMAN, "{err}");
    assert_eq!(state(&report, "shop-canary").1, Some(GroupState::Restored));
    let next = bakeroll::cli::outcome::after_deploy("prod", Some(&report), &err, &w.ctx.ledger).expect("a next step");
    assert!(next.contains("describe-instance-refreshes --auto-scaling-group-name shop-worker"), "{next}");
    // The release every group ran before, by its commit (which names it in every region).
    assert!(next.contains("`bakeroll rollback --env prod --to aaaaaaa`"), "{next}");
    // What following it decides, once AWS has ended what was in flight.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let spec = TargetSpec::parse("aaaaaaa").unwrap();
    let decision = rollback::decide(&w.ctx, &w.env(), &spec, "aaaaaaa", false).await.expect("decided");
    let canary = decision.groups.iter().find(|g| g.group == "shop-canary").unwrap();
    assert_eq!(canary.to, canary.from, "the canary stays on A: {canary:?}");
    for g in &decision.groups {
        assert_eq!(g.to.ami.as_deref(), Some(a.as_str()), "{} goes to A, never further back", g.group);
    }
    // `--to previous` would have moved the canary off A, to the release before it.
    let previous = rollback::decide(&w.ctx, &w.env(), &TargetSpec::Previous, "previous", false).await.expect("decided");
    let canary = previous.groups.iter().find(|g| g.group == "shop-canary").unwrap();
    assert_ne!(canary.to.ami.as_deref(), Some(a.as_str()), "the harmful advice this test guards against: {canary:?}");
}

/// `rollback` walks the waves in reverse under the same rule: the web and worker tiers go back first,
/// together, and the canary after them.
#[tokio::test(start_paused = true)]
async fn rollback_walks_the_waves_in_reverse() {
    use bakeroll::core::releases::TargetSpec;
    use bakeroll::engine::rollback;
    let w = tiers();
    let old = w.stack.image_id.clone();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    deploy(&w.ctx, &w.env(), &request(&ami)).await.1.expect("deployed");
    let decision = rollback::decide(&w.ctx, &w.env(), &TargetSpec::Previous, "previous", false).await.expect("decided");
    let (report, result) = rollback::execute(&w.ctx, &w.env(), &decision).await;
    result.expect("rolled back");
    for g in GROUPS {
        assert!(w.fake.in_service_images(g).iter().all(|i| *i == old), "{g}");
        let moved = report.groups.iter().find(|r| r.group == g).unwrap().deploy.as_ref().expect("moved");
        assert_eq!(moved.state, Some(GroupState::Verified), "{g}");
    }
    let back = |g: &str| *spans(&w, g).last().unwrap();
    let (canary, web, worker) = (back("shop-canary"), back("shop-web"), back("shop-worker"));
    assert!(canary.0 >= web.1 && canary.0 >= worker.1, "wave 2 goes back first: canary {canary:?}, web {web:?}, worker {worker:?}");
    assert!((web.0 - worker.0).abs() <= 1, "the wave's groups together: web {web:?}, worker {worker:?}");
}

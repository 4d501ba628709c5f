//! Distance from the limit: a whole `ship` (deploy lock, preflight, bake from a base image, deploy onto
//! the group) in the fake cloud with realistic AWS timings, in virtual time, against the lower bound
//! those same timings allow. Deterministic: the same case gives the same virtual seconds on every run.
//! Not a test: figures for BENCHMARKS.md (scripts/bench/limit.py runs it, one process per case).
//!
//!     cargo run --example limit -- 3@100-200 300@100-200+1 1000@100-200+1 30@90-100+1
//!
//! A case is INSTANCES@MIN-MAX[+OFFSET] (MinHealthyPercentage, MaxHealthyPercentage; OFFSET seconds,
//! default 0, added to the build's provisioning, the image creation and the refresh's Pending time).
//! bakeroll's waits end at its first poll after AWS is done, so what it adds depends on where AWS's
//! events fall between its polls: with the round timings below (offset 0) they fall on a poll, with
//! offset 1 just after one (almost the worst case). Every other setting is bakeroll's default (poll
//! 5 s, bake poll 10 s, no checkpoints, no bake time). Prints one JSON object per case on stdout.
//!
//! The lower bound, from the same `Timings` (AWS's work, with no poll and no client in the way):
//! * bake: the build instance boots (`instance_running`), provisions (`provisioning`), powers off
//!   (`stopping`), then CreateImage until available (`image_available`);
//! * deploy at MaxHealthy 200, one cycle: the refresh leaves Pending (`refresh_pending`), every
//!   replacement boots at once (`instance_running`) and becomes ready (the later of the target groups'
//!   healthy threshold × interval and the warm-up), then the old instances drain
//!   (`deregistration_delay`) and shut down (`shutting_down`);
//! * below MaxHealthy 200 (e.g. AWS's default Min 90 / Max 100) the fake replaces the group in batches
//!   of what MinHealthy lets go: pending + (batches − 1) × cycle + the later of one cycle and
//!   draining + shutdown. That figure is the fake's model of batching, given for how time grows with
//!   the fleet; the goal is only stated for MaxHealthy 200.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bakeroll::config::Loaded;
use bakeroll::engine::bake::{bake, BakeRequest};
use bakeroll::engine::deploy::{release, DeployRequest};
use bakeroll::engine::preflight::check_all;
use bakeroll::engine::preflight::ReleaseKey;
use bakeroll::engine::{lock, Ctx};
use bakeroll::events::{Event, Events, Sink};
use bakeroll::fake::{FakeCloud, ImageSpec, StackSpec, Timings};
use tokio::time::Instant;

/// AWS-like durations (documented defaults where AWS has them; typical figures where it has none).
fn realistic() -> Timings {
    Timings {
        image_available: Duration::from_secs(300),   // CreateImage of an 8 GiB root volume: minutes (no documented figure)
        instance_running: Duration::from_secs(30),   // pending → running: tens of seconds
        provisioning: Duration::from_secs(300),      // the build's own user data (installing the release), then power-off
        stopping: Duration::from_secs(30),
        shutting_down: Duration::from_secs(30),
        health_check_interval: Duration::from_secs(30), // ALB default interval
        healthy_threshold: 5,                           // ALB default HealthyThresholdCount: `initial` lasts 150 s
        unhealthy_threshold: 2,                         // ALB default
        deregistration_delay: Duration::from_secs(300), // ALB default
        health_check_grace: Duration::from_secs(300),   // Auto Scaling's console default grace period
        refresh_pending: Duration::from_secs(15),
        ..Timings::default()
    }
}

/// The group's DefaultInstanceWarmup (pipeline/bakeroll.toml's instance_warmup).
const WARMUP: Duration = Duration::from_secs(90);

const PIPELINE: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
user_data = "scripts/provision-demo.sh"
ami_name = "shop-{commit}"
tags = { app = "shop" }
[environments.prod]
auto_scaling_groups = ["shop-web"]
"#;

/// Counts the refresh watch's polls (one `fleet` event each); keeps nothing else.
#[derive(Default)]
struct Polls(AtomicU32);

impl Sink for Polls {
    fn emit(&self, event: Event) {
        if matches!(event, Event::Fleet { .. }) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// MinHealthy lets this many go at a time, as the fake's rollout computes it (at least one).
fn batch(n: u64, min: u64, max: u64) -> u64 {
    if max > 100 {
        return n;
    }
    n.saturating_sub((n * min).div_ceil(100)).max(1)
}

/// (bake, deploy, batches) of the lower bound, in seconds.
fn bound(t: &Timings, n: u64, min: u64, max: u64) -> (u64, u64, u64) {
    let bake = t.instance_running + t.provisioning + t.stopping + t.image_available;
    let initial = t.health_check_interval * t.healthy_threshold;
    let cycle = t.instance_running + initial.max(WARMUP);
    let leave = t.deregistration_delay + t.shutting_down;
    let batches = n.div_ceil(batch(n, min, max));
    let deploy = if batches == 1 {
        t.refresh_pending + cycle + leave
    } else {
        t.refresh_pending + cycle * (batches as u32 - 1) + cycle.max(leave)
    };
    (bake.as_secs(), deploy.as_secs(), batches)
}

async fn ship(n: u32, min: u32, max: u32, offset: u64) -> serde_json::Value {
    let mut timings = realistic();
    let later = Duration::from_secs(offset);
    timings.provisioning += later;
    timings.image_available += later;
    timings.refresh_pending += later;
    let fake = FakeCloud::with_timings(timings.clone());
    fake.add_image(ImageSpec::amazon_linux());
    let stack = StackSpec::new("shop-web").instances(n).target_groups(2).instance_warmup(WARMUP);
    fake.add_stack(stack);
    let text = format!("{PIPELINE}min_healthy_percentage = {min}\nmax_healthy_percentage = {max}\n");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline/limit.toml");
    let pipeline = Loaded::parse(&path, &text).expect("pipeline parses");
    let env = pipeline.settings(None).expect("one environment");
    let polls = Arc::new(Polls::default());
    let ctx = Ctx::new(fake.cloud(), Events(polls.clone()), pipeline);
    let commit = "c0ffee".to_string();

    // As `bakeroll ship` does it (src/engine/ship.rs): lock, preflight, bake, deploy, unlock.
    let start = Instant::now();
    let held = lock::take(&ctx, &env.name, &env.group_names(), Some(&commit), env.lock_lease).await.expect("lock");
    let prepared = check_all(&ctx, &env, ReleaseKey { ami: None, commit: Some(&commit) }, false).await.expect("preflight passes");
    let bake_start = Instant::now();
    let req = BakeRequest { commit: commit.clone(), ..Default::default() };
    let baked = bake(&ctx, &req).await.expect("bake succeeds");
    let deploy_start = Instant::now();
    let req = DeployRequest { env: env.name.clone(), image_id: baked.ami_id.clone(), commit: Some(commit), force: false, targets: Default::default(), images: Default::default() };
    let (_, result) = release(&ctx, &env, &req, prepared, None).await;
    result.expect("a healthy release deploys");
    let end = Instant::now();
    held.release(&ctx).await;

    let refresh = fake.refreshes("shop-web").into_iter().next().expect("one refresh");
    let in_service = fake.in_service_images("shop-web");
    assert!(in_service.len() == n as usize && in_service.iter().all(|i| *i == baked.ami_id), "every instance on the release");
    let (bake_bound, deploy_bound, batches) = bound(&timings, n.into(), min.into(), max.into());
    let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    let total = secs(start, end);
    serde_json::json!({
        "instances": n, "min_healthy": min, "max_healthy": max, "offset_s": offset, "batches": batches,
        "total_s": total, "before_bake_s": secs(start, bake_start), "bake_s": secs(bake_start, deploy_start),
        "deploy_s": secs(deploy_start, end),
        "refresh_s": refresh.end_time.zip(refresh.start_time).map(|(e, s)| e - s),
        "bound_bake_s": bake_bound, "bound_deploy_s": deploy_bound, "bound_total_s": bake_bound + deploy_bound,
        "over_bound": total / (bake_bound + deploy_bound) as f64 - 1.0,
        "polls": polls.0.load(Ordering::Relaxed),
        "timings": format!("{timings:?}"), "warmup_s": WARMUP.as_secs(),
    })
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let cases: Vec<(u32, u32, u32, u64)> = std::env::args()
        .skip(1)
        .map(|a| {
            let (n, prefs) = a.split_once('@').expect("INSTANCES@MIN-MAX[+OFFSET]");
            let (prefs, offset) = prefs.split_once('+').unwrap_or((prefs, "0"));
            let (min, max) = prefs.split_once('-').expect("INSTANCES@MIN-MAX[+OFFSET]");
            let number = |s: &str| s.parse().expect("a number");
            (number(n), number(min), number(max), offset.parse().expect("offset seconds"))
        })
        .collect();
    for (n, min, max, offset) in if cases.is_empty() { vec![(3, 100, 200, 0)] } else { cases } {
        let wall = std::time::Instant::now();
        let mut row = ship(n, min, max, offset).await;
        row["real_s"] = wall.elapsed().as_secs_f64().into();
        println!("{row}");
    }
}

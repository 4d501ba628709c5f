//! AWS calls per poll of the refresh watcher against the fake cloud, at fleet sizes the local AWS is
//! too slow for: one healthy deploy per size (virtual time), counting the watch's calls from the
//! fake's ledger. Prints a Markdown table, then one JSON line with a row per size (the watch's calls
//! per action, every call of the deploy, and the real time the engine itself took per poll: the
//! deploy's real time less the time spent inside the fake; a debug build unless run with --release). Not a test: figures for docs/benchmarks and
//! BENCHMARKS.md (see scripts/bench/gate.py and scripts/bench/economy.py for the local AWS's).
//!
//!     cargo run --example gate_calls -- 3 30 300 1000 [--tgs 1,3]   # target groups per size (default 2)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bakeroll::cloud::CallLedger;
use bakeroll::events::{Event, Sink};

use bakeroll::config::Loaded;
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::engine::Ctx;
use bakeroll::events::Events;
use bakeroll::fake::{FakeCloud, ImageSpec, StackSpec};

const PIPELINE: &str = r#"
[bake]
ami_name = "shop-{commit}"
[environments.prod]
auto_scaling_groups = ["shop-web"]
instance_warmup = "60s"
bake_time = "2m"
poll_interval = "5s"
metrics = "off"
"#;

/// The most Describe calls made between two fleet samples, i.e. by one poll of the watch.
struct PerPoll {
    calls: CallLedger,
    seen: Mutex<(Option<BTreeMap<String, u32>>, u32)>,
}

impl Sink for PerPoll {
    fn emit(&self, event: Event) {
        if !matches!(event, Event::Fleet { .. }) {
            return;
        }
        let now = self.calls.snapshot();
        let mut seen = self.seen.lock().unwrap();
        if let Some(before) = &seen.0 {
            let made: u32 = now.iter().filter(|(a, _)| a.contains(":Describe")).map(|(a, c)| c - before.get(a).unwrap_or(&0)).sum();
            seen.1 = seen.1.max(made);
        }
        seen.0 = Some(now);
    }
}

/// What one deploy onto `n` instances behind `tgs` target groups cost.
struct Measured {
    polls: u32,
    /// The most calls in one poll.
    most: u32,
    /// Calls made by the watch, per IAM action.
    watch: BTreeMap<String, u32>,
    /// Every call of the deploy, per IAM action.
    deploy: BTreeMap<String, u32>,
    /// Real time of the whole deploy, and the part of it spent inside the fake.
    real: Duration,
    fake: Duration,
}

async fn measure(n: u32, tgs: u32) -> Measured {
    let began = Instant::now();
    let fake = FakeCloud::new();
    fake.add_stack(StackSpec::new("shop-web").instances(n).target_groups(tgs));
    let ami = fake.add_image(ImageSpec::named("shop-c1"));
    let pipeline = Loaded::parse(Path::new("pipeline/bench.toml"), PIPELINE).expect("pipeline parses");
    let env = pipeline.settings(None).expect("one environment");
    let cloud = fake.cloud();
    let per_poll = Arc::new(PerPoll { calls: cloud.calls.clone(), seen: Mutex::new((None, 0)) });
    let ctx = Ctx::new(cloud, Events(per_poll.clone()), pipeline);
    let req = DeployRequest { env: "prod".into(), image_id: ami, commit: None, force: false, targets: Default::default(), images: Default::default() };
    let (_, result) = deploy(&ctx, &env, &req).await;
    result.expect("a healthy release deploys");
    let deploy_calls = fake.calls();
    let mut calls = deploy_calls.clone();
    // Preflight's reads (one of each, DescribeTargetHealth per target group) are not the watch's, nor the
    // metric gate's look at which load balancer each target group is behind, made once as the release starts,
    // nor the group read after the verdict that protects what the verified release runs.
    for (action, once) in [
        ("elasticloadbalancing:DescribeTargetGroups", 1),
        ("autoscaling:DescribeAutoScalingGroups", 2),
        ("autoscaling:DescribeInstanceRefreshes", 1),
        ("ec2:DescribeInstances", 1),
        ("elasticloadbalancing:DescribeTargetHealth", tgs),
    ] {
        if let Some(c) = calls.get_mut(action) {
            *c -= once;
        }
    }
    calls.retain(|a, _| a.contains(":Describe") && !a.contains("Images") && !a.contains("LaunchTemplate"));
    let polls = calls.get("autoscaling:DescribeAutoScalingGroups").copied().unwrap_or(0);
    let most = per_poll.seen.lock().unwrap().1;
    Measured { polls, most, watch: calls, deploy: deploy_calls, real: began.elapsed(), fake: fake.time_inside() }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tgs_at = args.iter().position(|a| a == "--tgs");
    let tg_counts: Vec<u32> = match tgs_at {
        Some(i) => args.get(i + 1).expect("--tgs N[,N...]").split(',').map(|t| t.parse().expect("a number")).collect(),
        None => vec![2],
    };
    let sizes: Vec<u32> =
        args.iter().enumerate().filter(|(i, _)| tgs_at.is_none_or(|t| *i != t + 1)).filter_map(|(_, a)| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![3, 30, 300, 1000] } else { sizes };
    println!("| instances | target groups | polls | calls per poll (mean) | most in one poll (limit) | DescribeInstances in the watch | real time | of it bakeroll's, per poll |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for (n, tgs) in sizes.iter().flat_map(|&n| tg_counts.iter().map(move |&t| (n, t))) {
        let m = measure(n, tgs).await;
        let total: u32 = m.watch.values().sum();
        let per_poll = f64::from(total) / f64::from(m.polls.max(1));
        let ec2 = m.watch.get("ec2:DescribeInstances").copied().unwrap_or(0);
        // The engine's own work (the fake's is subtracted): one thread, the clock paused, no real waits.
        let engine_ms = (m.real.saturating_sub(m.fake)).as_secs_f64() * 1000.0 / f64::from(m.polls.max(1));
        let (polls, most, real) = (m.polls, m.most, m.real.as_secs_f64());
        println!("| {n} | {tgs} | {polls} | {per_poll:.2} | {most} ({}) | {ec2} | {real:.1} s | {engine_ms:.2} ms |", 2 + tgs);
        let row = serde_json::json!({ "instances": n, "target_groups": tgs, "polls": polls, "calls": m.watch,
            "calls_per_poll_mean": per_poll, "calls_per_poll_max": most, "limit": 2 + tgs, "deploy_calls": m.deploy,
            "real_s": real, "fake_s": m.fake.as_secs_f64(), "engine_ms_per_poll": engine_ms });
        json.push(row);
    }
    println!("{}", serde_json::to_string(&json).expect("serialises"));
}

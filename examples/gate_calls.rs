//! AWS calls per poll of the refresh watcher against the fake cloud, at fleet sizes the local AWS is
//! too slow for: one healthy deploy per size (virtual time), counting the watch's calls from the
//! fake's ledger. Prints a Markdown table and one JSON line per size. Not a test: figures for
//! docs/benchmarks (see scripts/bench/gate.py for the local AWS's).
//!
//!     cargo run --example gate_calls -- 3 30 300 1000

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// (polls, most calls in one poll, calls made by the watch per IAM action) of one deploy onto `n`
/// instances behind `tgs` target groups.
async fn measure(n: u32, tgs: u32) -> (u32, u32, BTreeMap<String, u32>) {
    let fake = FakeCloud::new();
    fake.add_stack(StackSpec::new("shop-web").instances(n).target_groups(tgs));
    let ami = fake.add_image(ImageSpec::named("shop-c1"));
    let pipeline = Loaded::parse(Path::new("pipeline/bench.toml"), PIPELINE).expect("pipeline parses");
    let env = pipeline.environment(None).expect("one environment").1.clone();
    let cloud = fake.cloud();
    let per_poll = Arc::new(PerPoll { calls: cloud.calls.clone(), seen: Mutex::new((None, 0)) });
    let ctx = Ctx::new(cloud, Events(per_poll.clone()), pipeline);
    let req = DeployRequest { env: "prod".into(), image_id: ami, commit: None, force: false, existing_version: None };
    let (_, result) = deploy(&ctx, &env, &req).await;
    result.expect("a healthy release deploys");
    let mut calls = fake.calls();
    // Preflight's reads (one of each, DescribeTargetHealth per target group) are not the watch's.
    for (action, once) in [
        ("autoscaling:DescribeAutoScalingGroups", 1),
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
    (polls, most, calls)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![3, 30, 300, 1000] } else { sizes };
    let tgs = 2;
    println!("| instances | target groups | polls | calls per poll (mean) | most in one poll (limit) | DescribeInstances in the watch | real time |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for n in sizes {
        let wall = Instant::now();
        let (polls, most, calls) = measure(n, tgs).await;
        let total: u32 = calls.values().sum();
        let per_poll = f64::from(total) / f64::from(polls.max(1));
        let ec2 = calls.get("ec2:DescribeInstances").copied().unwrap_or(0);
        let secs = wall.elapsed().as_secs_f64();
        println!("| {n} | {tgs} | {polls} | {per_poll:.2} | {most} ({}) | {ec2} | {secs:.1} s |", 2 + tgs);
        let row = serde_json::json!({ "instances": n, "target_groups": tgs, "polls": polls, "calls": calls,
            "calls_per_poll_mean": per_poll, "calls_per_poll_max": most, "limit": 2 + tgs });
        json.push(row);
    }
    println!("{}", serde_json::to_string(&json).expect("serialises"));
}

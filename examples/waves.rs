//! A release across many groups against the fake cloud, in virtual time with every AWS call taking
//! `--latency` (default 150 ms, a typical API round trip): (1) AWS calls per poll at G groups in one wave
//! and T distinct target groups (pairs of groups share one, as a canary shares its web tier's), against the
//! bound 1 + G + T; (2) the time a wave of three groups of different sizes takes against the slowest of
//! them deployed alone. Not a test: figures for BENCHMARKS.md (scripts/bench/waves.py runs it). Prints a
//! Markdown table per part, then one JSON line.
//!
//!     cargo run --example waves -- [--groups 1,3,10] [--latency-ms 150]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bakeroll::cloud::{actions, CallLedger};
use bakeroll::config::Loaded;
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::engine::Ctx;
use bakeroll::events::{Event, Events, Sink};
use bakeroll::fake::{FakeCloud, ImageSpec, StackSpec};
use tokio::time::Instant;

/// Snapshots of the call ledger each time the first group reports a poll.
struct Polls {
    calls: CallLedger,
    first: String,
    snapshots: Mutex<Vec<BTreeMap<String, u32>>>,
}

impl Sink for Polls {
    fn emit(&self, event: Event) {
        if let Event::Fleet { scope, .. } = event {
            if scope == self.first {
                self.snapshots.lock().unwrap().push(self.calls.snapshot());
            }
        }
    }
}

fn pipeline(waves: &str) -> Loaded {
    let text = format!(
        "[bake]\nami_name = \"shop-{{commit}}\"\n[environments.prod]\nwaves = {waves}\ninstance_warmup = \"60s\"\nbake_time = \"2m\"\npoll_interval = \"5s\"\n"
    );
    Loaded::parse(Path::new("pipeline/bench.toml"), &text).expect("pipeline parses")
}

/// Every action a call may be, slowed down by `latency`.
fn slow(fake: &FakeCloud, latency: Duration) {
    for a in actions::ALL {
        fake.set_latency(a.name, latency);
    }
}

/// G groups in one wave (`g0`, `g1`, …, 2 instances each); groups 2k and 2k+1 share group 2k's target group.
async fn calls_per_poll(g: usize, latency: Duration) -> serde_json::Value {
    let fake = FakeCloud::new();
    let mut tgs = Vec::new();
    for i in 0..g {
        let spec = StackSpec::new(format!("g{i}")).instances(2);
        let spec = if i % 2 == 1 { spec.target_groups(0).join_target_group(tgs.last().cloned().expect("pair's target group")) } else { spec };
        fake.add_stack(spec);
        if i % 2 == 0 {
            tgs.push(fake.group(&format!("g{i}")).unwrap().target_group_arns[0].clone());
        }
    }
    slow(&fake, latency);
    let ami = fake.add_image(ImageSpec::named("shop-c1"));
    let names: Vec<String> = (0..g).map(|i| format!("\"g{i}\"")).collect();
    let pipeline = pipeline(&format!("[[{}]]", names.join(", ")));
    let env = pipeline.settings(None).expect("one environment");
    let cloud = fake.cloud();
    let polls = Arc::new(Polls { calls: cloud.calls.clone(), first: "g0".into(), snapshots: Mutex::default() });
    let ctx = Ctx::new(cloud, Events(polls.clone()), pipeline);
    let req = DeployRequest { env: "prod".into(), image_id: ami, commit: None, force: false, targets: Default::default(), images: Default::default() };
    deploy(&ctx, &env, &req).await.1.expect("a healthy release deploys");
    let snapshots = polls.snapshots.lock().unwrap().clone();
    let watched = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes", "elasticloadbalancing:DescribeTargetHealth"];
    let mut most: BTreeMap<&str, u32> = BTreeMap::new();
    let mut most_total = 0;
    for pair in snapshots.windows(2) {
        let mut total = 0;
        for a in watched {
            let n = pair[1].get(a).copied().unwrap_or(0) - pair[0].get(a).copied().unwrap_or(0);
            total += n;
            let e = most.entry(a).or_default();
            *e = (*e).max(n);
        }
        most_total = most_total.max(total);
    }
    let t = tgs.len();
    serde_json::json!({ "groups": g, "target_groups": t, "polls": snapshots.len().saturating_sub(1), "most_per_poll": most,
        "most_total": most_total, "limit": 1 + g + t })
}

/// Virtual time of a healthy deploy of `groups` (name, instances) in one wave, from a fresh world.
async fn deploy_time(groups: &[(&str, u32)], latency: Duration) -> Duration {
    let fake = FakeCloud::new();
    for (name, n) in groups {
        fake.add_stack(StackSpec::new(*name).instances(*n));
    }
    slow(&fake, latency);
    let ami = fake.add_image(ImageSpec::named("shop-c1"));
    let names: Vec<String> = groups.iter().map(|(g, _)| format!("\"{g}\"")).collect();
    let pipeline = pipeline(&format!("[[{}]]", names.join(", ")));
    let env = pipeline.settings(None).expect("one environment");
    let ctx = Ctx::new(fake.cloud(), Events(Arc::new(bakeroll::events::Recorder::default())), pipeline);
    let req = DeployRequest { env: "prod".into(), image_id: ami, commit: None, force: false, targets: Default::default(), images: Default::default() };
    let started = Instant::now();
    deploy(&ctx, &env, &req).await.1.expect("a healthy release deploys");
    started.elapsed()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let groups: Vec<usize> = arg("--groups").unwrap_or_else(|| "1,3,10".into()).split(',').map(|g| g.parse().expect("a number")).collect();
    let latency = Duration::from_millis(arg("--latency-ms").map_or(150, |l| l.parse().expect("milliseconds")));

    println!("| groups in the wave | distinct target groups | polls | most calls in one poll: groups / refreshes / target health | total (limit 1 + G + T) |");
    println!("|---:|---:|---:|---|---:|");
    let mut calls = Vec::new();
    for g in groups {
        let row = calls_per_poll(g, latency).await;
        let m = &row["most_per_poll"];
        println!(
            "| {g} | {} | {} | {} / {} / {} | {} ({}) |",
            row["target_groups"], row["polls"], m["autoscaling:DescribeAutoScalingGroups"], m["autoscaling:DescribeInstanceRefreshes"],
            m["elasticloadbalancing:DescribeTargetHealth"], row["most_total"], row["limit"]
        );
        calls.push(row);
    }
    // Three tiers of different sizes in one wave, against the slowest (largest) alone.
    let tiers = [("canary", 1), ("worker", 2), ("web", 6)];
    let wave = deploy_time(&tiers, latency).await;
    let alone = deploy_time(&tiers[2..], latency).await;
    let ratio = wave.as_secs_f64() / alone.as_secs_f64();
    println!();
    println!("| deploy (virtual time, {} ms a call) | seconds |", latency.as_millis());
    println!("|---|---:|");
    println!("| web (6 instances) alone | {:.1} |", alone.as_secs_f64());
    println!("| canary (1), worker (2) and web (6) in one wave | {:.1} |", wave.as_secs_f64());
    println!("| ratio | {ratio:.3} |");
    let json = serde_json::json!({ "latency_ms": latency.as_millis() as u64, "calls": calls,
        "wall": { "alone_s": alone.as_secs_f64(), "wave_s": wave.as_secs_f64(), "ratio": ratio } });
    println!("{json}");
}

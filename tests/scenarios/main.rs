//! Fake-cloud scenarios in virtual time: the engine's decisions on every failure path, with the world
//! asserted afterwards (images, instances, refreshes), not the calls made.

mod adopt;
mod bake;
mod deploy;
mod lock;
mod metrics;
mod mixed;
mod fleets;
mod gate;
mod multi;
mod waves;
mod plan;
mod promote;
mod dry_run_releases;
mod regions;
mod releases;
mod resume;
mod retention;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bakeroll::config::Loaded;
use bakeroll::events::{Event, Recorder};
use bakeroll::engine::Ctx;
use bakeroll::engine::deploy::{deploy, DeployReport, DeployRequest};
use bakeroll::events::Events;
use bakeroll::fake::{FakeCloud, ImageSpec, StackIds, StackSpec};

pub const PIPELINE: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
user_data = "scripts/provision-demo.sh"
ami_name = "shop-{commit}"
timeout = "20m"
image_timeout = "30m"
poll_interval = "10s"
tags = { app = "shop" }
[environments.prod]
auto_scaling_groups = ["shop-web"]
instance_warmup = "60s"
checkpoints = [50, 100]
checkpoint_delay = "2m"
bake_time = "5m"
poll_interval = "5s"
unhealthy_threshold = 2
health_grace = "5m"
timeout = "60m"
"#;

pub struct World {
    pub fake: FakeCloud,
    pub ctx: Ctx,
    pub recorder: Recorder,
    pub stack: StackIds,
    pub base: String,
}

/// A fake region with an Amazon Linux base image and the `shop-web` stack (3 instances, `tgs` target
/// groups), and a context for `pipeline` (text of a pipeline file).
pub fn world_with(pipeline: &str, tgs: u32) -> World {
    world_of(pipeline, StackSpec::new("shop-web").target_groups(tgs))
}

/// Like `world_with`, for any stack shape.
pub fn world_of(pipeline: &str, spec: StackSpec) -> World {
    world_timed(pipeline, spec, bakeroll::fake::Timings::default())
}

/// Like `world_of`, in a fake region with other timings (target groups take theirs when created).
pub fn world_timed(pipeline: &str, spec: StackSpec, timings: bakeroll::fake::Timings) -> World {
    let fake = FakeCloud::with_timings(timings);
    let base = fake.add_image(ImageSpec::amazon_linux());
    let stack = fake.add_stack(spec);
    let recorder = Recorder::default();
    // The user_data path resolves against the repository root, where scripts/provision-demo.sh lives.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline/scenario.toml");
    let pipeline = Loaded::parse(&path, pipeline).expect("scenario pipeline parses");
    let ctx = Ctx::new(fake.cloud(), Events(Arc::new(recorder.clone())), pipeline);
    World { fake, ctx, recorder, stack, base }
}

pub fn world() -> World {
    world_with(PIPELINE, 1)
}

impl World {
    pub fn env(&self) -> bakeroll::core::settings::EnvSettings {
        self.ctx.pipeline.settings(None).expect("one environment")
    }

    pub fn calls(&self, action: &str) -> u32 {
        self.ctx.cloud.calls.snapshot().get(action).copied().unwrap_or(0)
    }

    pub fn events(&self) -> Vec<Event> {
        self.recorder.events()
    }

    /// Every mutating call made so far (for "nothing was changed" checks).
    pub fn mutations(&self) -> Vec<String> {
        let reads = ["Describe", "Get", "List"];
        self.ctx
            .cloud
            .calls
            .snapshot()
            .into_keys()
            .filter(|a| !reads.iter().any(|r| a.split(':').nth(1).is_some_and(|op| op.starts_with(r))))
            .collect()
    }

    /// Waits (virtual time) until the group's newest refresh reaches `status`.
    pub async fn until_refresh(&self, group: &str, status: &str) {
        for _ in 0..10_000 {
            if self.fake.refreshes(group).first().is_some_and(|r| r.status.as_str() == status) {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("refresh of {group} never reached {status}: {:?}", self.fake.refreshes(group));
    }
}

/// Every AWS action a scenario made (the fake's call ledger, DryRun checks included) must be one that
/// `bakeroll iam-policy` grants for the scenario's pipeline: checked as each world ends.
impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // the test already failed; a second panic would abort
        }
        let p = &self.ctx.pipeline;
        let input = bakeroll::iam::PolicyInput {
            pipeline: p.name(),
            region: p.pipeline.region.clone(),
            groups: p.pipeline.environments.values().flat_map(|e| e.group_names()).collect(),
            instance_profile: p.pipeline.bake.iam_instance_profile.clone(),
            roles: p.pipeline.environments.values().filter_map(|e| e.role_arn.clone()).collect(),
            // Every call, whichever account made it (the caller's policy when it also deploys covers the
            // deploy roles' actions too; src/iam/tests.rs checks which account gets which).
            identity: bakeroll::iam::Identity::Caller { deploys: true },
        };
        let allowed = bakeroll::iam::allowed_actions(&bakeroll::iam::generate(&input).document);
        for action in self.fake.calls().keys() {
            assert!(allowed.contains(action), "{action} was called but `bakeroll iam-policy` does not grant it: {allowed:?}");
        }
    }
}

/// The deploy most scenarios run: release `ami` of commit c1 to prod.
pub fn request(ami: &str) -> DeployRequest {
    DeployRequest { env: "prod".into(), image_id: ami.into(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() }
}

/// `request(ami)` deployed to completion.
pub async fn run(w: &World, ami: &str) -> (DeployReport, Result<(), bakeroll::error::Error>) {
    deploy(&w.ctx, &w.env(), &request(ami)).await
}

/// `request(ami)` deployed in the background, to change the world (or stop the run) while it goes.
pub fn spawn(w: &World, ami: &str) -> tokio::task::JoinHandle<(DeployReport, Result<(), bakeroll::error::Error>)> {
    let (ctx, env, req) = (w.ctx.clone(), w.env(), request(ami));
    tokio::spawn(async move { deploy(&ctx, &env, &req).await })
}

/// `prune`'s decision over every environment of the world's pipeline, which lives in one region.
pub async fn prune_plan(ctx: &bakeroll::engine::Ctx, keep: usize) -> bakeroll::engine::retention::RegionPrune {
    let sites = bakeroll::engine::sites::read_all(ctx).await.expect("groups read");
    let mut regions = bakeroll::engine::retention::prune_decision(&sites, keep).await.expect("decided");
    assert_eq!(regions.len(), 1, "one region");
    regions.remove(0)
}

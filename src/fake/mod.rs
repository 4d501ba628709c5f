//! An in-memory cloud implementing the domain traits, with virtual time and fault injection.
//! Compiled for unit tests and with the `fake` feature (integration tests turn it on through the
//! self dev-dependency in Cargo.toml); release builds contain none of it.
//!
//! The fake is a stateful model of the AWS behaviour bakeroll relies on (see `notes/aws-facts.md`), not a
//! script of expected calls: engines may call in any order, poll as often as they like, and see the same
//! world. It advances with `tokio::time::Instant` only, lazily: every call or inspection first steps the
//! world tick by tick (1 s by default) up to now. Under `#[tokio::test(start_paused = true)]` the engine's
//! `tokio::time::sleep`s auto-advance virtual time, so an hour-long deploy runs in milliseconds.
//!
//! ```ignore
//! let fake = FakeCloud::new();
//! let stack = fake.add_stack(StackSpec::new("shop-web").instances(4).target_groups(2));
//! let cloud = fake.cloud();   // hand to the engine; assert with fake.group_instances(..), fake.refreshes(..)
//! ```
//!
//! Application health follows the local emulator's rule: an image or instance tagged
//! `local-aws:health=unhealthy` (or `initial`) makes its targets unhealthy (or stuck in `initial`) once the
//! `initial` period is over; `set_image_health` / `set_instance_health` / `..._in` override it.
//!
//! Layout, lowest first: `conventions` (account, region, filter globs, timestamps, errors), the records
//! as plain data (`group_records`: Auto Scaling's; `resource_records`: EC2's, ELB's and CloudWatch's),
//! `faults`, `state` (the world holding them, clock, tick); then the behaviour, each module an
//! `impl State` over the records: `ec2`/`instances`/`templates`, `elbv2` (target health),
//! `autoscaling` (members, capacity), `launch` (what a group launches from), `hooks` (launch lifecycle
//! hooks), `warm` (warm pools), `cloudwatch` (alarms), `alb_metrics` (ALB traffic and its metrics),
//! `refresh` (API and status machine) and `rollout` (batch replacement), `shapes` (group shapes' scenario controls, `adopt`'s calls); on top
//! `fixtures`, `inspect`, `api` (the traits). Behaviour modules reach each other through `State`'s
//! methods and import only downwards. One rule keeps quiet-tick skipping exact: code run by a tick
//! asks about time only through `Wake::due` (see `State::advance`).

mod alb_metrics;
mod api;
mod autoscaling;
mod cloudwatch;
mod conventions;
mod ec2;
mod elbv2;
mod faults;
mod fixtures;
mod group_records;
mod hooks;
mod inspect;
mod instances;
mod launch;
mod refresh;
mod regions;
mod resource_records;
mod rollout;
mod state;
mod templates;
#[cfg(test)]
mod tests;
mod timings;
mod warm;
mod shapes;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{CallLedger, Cloud};

pub use alb_metrics::{Balancer, ERROR_RATE_TAG, LATENCY_TAG};
pub use conventions::{ACCOUNT, REGION};
pub use elbv2::HEALTH_TAG;
pub use fixtures::{ImageSpec, StackIds, StackSpec};
pub use group_records::{HookResult, PoolState};
pub use hooks::LIFECYCLE_TAG;
pub use resource_records::{Health, TemplateVersion};
pub use regions::{FakeConnector, COPY_TAG};
pub use timings::Timings;

/// A cheaply clonable handle on one fake region; clones share the world and the call ledger.
#[derive(Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<state::State>>,
    /// This world's region, and the other regions' worlds (shared by every handle of the fake).
    region: String,
    worlds: Arc<Mutex<BTreeMap<String, Arc<Mutex<state::State>>>>>,
    calls: CallLedger,
    /// Real nanoseconds spent inside `with` (stepping the world and answering), shared by clones.
    inside_ns: Arc<AtomicU64>,
}

impl FakeCloud {
    /// An empty region with the default `Timings`; its virtual clock starts now.
    pub fn new() -> Self {
        Self::with_timings(Timings::default())
    }

    pub fn with_timings(timings: Timings) -> Self {
        let state = Arc::new(Mutex::new(state::State::new(timings)));
        Self {
            worlds: Arc::new(Mutex::new(BTreeMap::from([(REGION.to_string(), state.clone())]))),
            state,
            region: REGION.to_string(),
            calls: CallLedger::default(),
            inside_ns: Arc::default(),
        }
    }

    /// Changes timings from now on; already scheduled transitions keep their deadlines.
    pub fn update_timings(&self, f: impl FnOnce(&mut Timings)) {
        self.with(|s| f(&mut s.timings));
    }

    /// The service clients over this world, sharing one ledger with the fake.
    pub fn cloud(&self) -> Cloud {
        let api = Arc::new(api::FakeApi(self.clone()));
        Cloud {
            ec2: api.clone(),
            autoscaling: api.clone(),
            elbv2: api.clone(),
            cloudwatch: api.clone(),
            copies: api,
            calls: self.calls.clone(),
            clock: Arc::new(FakeClock { start: self.state.lock().expect("fake cloud state poisoned").start }),
        }
    }

    /// Calls made so far per IAM action, failed ones included.
    pub fn calls(&self) -> BTreeMap<String, u32> {
        self.calls.snapshot()
    }

    /// Steps the world to now, then runs `f` on it under the lock (never held across an await).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut state::State) -> R) -> R {
        let began = std::time::Instant::now();
        let mut state = self.state.lock().expect("fake cloud state poisoned");
        state.advance(Instant::now());
        let out = f(&mut state);
        self.inside_ns.fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }

    /// Real (not virtual) time spent inside the fake so far, stepping its world and answering calls:
    /// what a benchmark subtracts to see the engine's own cost (examples/gate_calls.rs).
    pub fn time_inside(&self) -> Duration {
        Duration::from_nanos(self.inside_ns.load(Ordering::Relaxed))
    }
}

/// Tokio's timer (virtual under a paused test runtime), telling the time in the fake's calendar: the
/// world starts at 2026-01-01T00:00:00Z and moves with virtual time, as its timestamps do.
struct FakeClock {
    start: Instant,
}

#[async_trait::async_trait]
impl crate::cloud::Clock for FakeClock {
    fn waiting(&self, _wait: &crate::cloud::Wait) {}

    async fn sleep(&self, d: Duration) -> bool {
        tokio::time::sleep(d).await;
        true
    }

    fn wall_ms(&self) -> i64 {
        state::EPOCH * 1000 + Instant::now().saturating_duration_since(self.start).as_millis() as i64
    }
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

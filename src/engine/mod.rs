//! The engine: drives the pure core against a `Cloud`. Bake, deploy, rollback, retention and the
//! refresh watcher live here; each returns data (results, outcomes) and emits events, never prints.
//! It cannot tell a dry run from a real one: a dry run is the same code over a recording cloud
//! (`crate::cloud::dry_run`), whose clock records the waits of `wait::until` instead of sleeping.

pub mod adopt;
pub mod bake;
pub mod cleanup;
pub mod copies;
pub mod deploy;
pub mod driver;
pub mod fleet;
pub mod gc;
pub mod images;
pub mod lock;
pub mod metrics;
pub mod observe;
pub mod pace;
pub mod places;
pub mod releases;
pub mod retention;
pub mod revoke;
pub mod preflight;
pub mod promote;
pub mod rollback;
pub mod ship;
pub mod sites;
pub mod start;
pub mod stop;
pub mod survey;
pub mod versions;
pub mod wait;
pub mod watch;

use crate::cloud::Cloud;
use crate::config::Loaded;

pub use cleanup::{Ledger, RefreshKind};
use crate::events::Events;

/// What every engine operation needs.
#[derive(Clone)]
pub struct Ctx {
    pub cloud: Cloud,
    pub events: Events,
    pub pipeline: Loaded,
    pub ledger: Ledger,
    /// Set when the operator asks to stop (first SIGINT/SIGTERM).
    pub stop: stop::Stop,
    /// The clouds of the environment's regions and account (empty: `cloud` serves everything).
    pub places: places::Places,
}

impl Ctx {
    /// A fresh context: nothing created yet, no stop requested.
    pub fn new(cloud: Cloud, events: Events, pipeline: Loaded) -> Self {
        Self { cloud, events, pipeline, ledger: Ledger::default(), stop: stop::Stop::default(), places: places::Places::default() }
    }

    /// This context in `region` (None: the bake region): its cloud is that region's deploy cloud.
    pub fn place(&self, region: Option<&str>) -> Ctx {
        let Some(place) = self.places.get(region) else { return self.clone() };
        let mut ctx = Ctx { cloud: place.deploy.unwrap_or_else(|| self.cloud.clone()), ..self.clone() };
        if let Some(suffix) = &place.suffix {
            ctx.events = ctx.events.within(suffix);
            ctx.ledger = ctx.ledger.within(suffix);
        }
        ctx
    }

    /// The bake account's cloud in `region` (None: the bake region): copies, sharing, release records.
    pub fn bake_cloud(&self, region: Option<&str>) -> Cloud {
        self.places.get(region).and_then(|p| p.bake).unwrap_or_else(|| self.cloud.clone())
    }
}

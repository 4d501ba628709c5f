//! The engine: drives the pure core against a `Cloud`. Bake, deploy and the refresh watcher live here;
//! each returns data (results, outcomes) and emits events, never prints.

pub mod bake;
pub mod cleanup;
pub mod deploy;
pub mod releases;
pub mod retention;
pub mod rollback;
pub mod wait;
pub mod watch;

use crate::cloud::Cloud;
use crate::config::Loaded;

pub use cleanup::Ledger;
use crate::events::Events;

/// What every engine operation needs.
#[derive(Clone)]
pub struct Ctx {
    pub cloud: Cloud,
    pub events: Events,
    pub pipeline: Loaded,
    pub ledger: Ledger,
    /// Set for a dry run: `cloud` is then the plan's wrapper (writes are only recorded) and the engine
    /// records its waits here instead of waiting for resources that will never exist.
    pub plan: Option<crate::plan::Plan>,
}

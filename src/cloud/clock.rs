//! How time passes for the engine's waits. The engine never sleeps by itself: every wait goes through
//! the cloud's `Clock`, so a layer around the cloud decides what waiting means — tokio's timer for
//! real runs (virtual under a paused test runtime), or no waiting at all for a dry run, whose clock
//! writes each wait into its plan instead.

use std::time::Duration;

use async_trait::async_trait;

/// A wait the engine is about to sit through.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// What it waits for and what follows, in words (a dry run's plan shows it).
    pub what: String,
    /// How often it checks.
    pub every: Duration,
    /// The longest it waits.
    pub timeout: Duration,
}

#[async_trait]
pub trait Clock: Send + Sync {
    /// A wait begins.
    fn waiting(&self, wait: &Wait);
    /// Lets `d` pass before the next check and returns true; a clock that does not wait returns false
    /// at once, and the wait then ends with what its first check saw.
    async fn sleep(&self, d: Duration) -> bool;
    /// The wall-clock time, Unix milliseconds: what CloudWatch's datapoint timestamps are lined up with
    /// (the metric gate). The fake cloud's clock gives its own virtual calendar.
    fn wall_ms(&self) -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_millis() as i64
    }
}

/// Real time: `tokio::time::sleep`.
pub struct TokioClock;

#[async_trait]
impl Clock for TokioClock {
    fn waiting(&self, _wait: &Wait) {}

    async fn sleep(&self, d: Duration) -> bool {
        tokio::time::sleep(d).await;
        true
    }
}

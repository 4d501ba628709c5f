//! The one polling loop for every wait of the engine: a documented interval, the caller's deadline,
//! fast failure on terminal states (the check says `Failed`), transient API errors retried with
//! backoff until the deadline, and time passing through the cloud's `Clock` — tokio's timer for real
//! runs (virtual in tests), a recording clock that never waits for dry runs.
//!
//! Why not the SDK waiters: their delay is fixed between 15 s and 120 s with no setter, which turns a
//! 1-second image wait on a time-scaled local AWS into 15 s, and instance refresh has none at all.

use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{Clock, CloudError, ErrorKind, Wait};

/// What one check saw.
#[derive(Debug)]
pub enum Check<T> {
    Ready(T),
    /// Not yet; the text says what was seen (for logs and for the timeout message).
    NotYet(String),
    /// Not yet, and check again after this long instead of the wait's interval.
    Later(Duration, String),
    /// A terminal state: waiting longer cannot help (an image that failed, an instance that is gone).
    Failed(String),
}

/// How a wait ended without an error.
#[derive(Debug, PartialEq)]
pub enum Waited<T> {
    Ready(T),
    /// The clock does not wait (a dry run's): the wait was recorded and ended after its first check,
    /// which saw `last`.
    Unobserved { last: String },
}

#[derive(Debug)]
pub enum WaitError {
    TimedOut { waited: Duration, last: String },
    /// The check saw a terminal state.
    Failed(String),
    /// A cloud call failed for a reason waiting does not fix (permission denied, bad request).
    Cloud(CloudError),
}

/// Backoff after consecutive transient failures (throttling, 5xx, dropped connections): the wait's own
/// interval doubled per failure, capped at 30 s (kube-runtime's cap), plus up to 20 % jitter so that
/// pipelines throttled together do not retry together.
pub(crate) fn backoff(every: Duration, failures: u32) -> Duration {
    let base = every.saturating_mul(1 << failures.min(6)).min(Duration::from_secs(30)).max(every);
    let jitter = base.mul_f64(0.2 * jitter_fraction());
    base + jitter
}

/// A fraction in [0, 1) that differs between processes and calls; no cryptographic quality needed.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() % 1000) as f64 / 1000.0
}

/// Calls `check` every `wait.every` until it is ready or failed, or `wait.timeout` passes.
pub async fn until<T>(
    clock: &dyn Clock,
    wait: &Wait,
    mut check: impl AsyncFnMut() -> Result<Check<T>, CloudError>,
) -> Result<Waited<T>, WaitError> {
    let mut poller = Poller::start(clock, wait);
    loop {
        if let Some(ended) = poller.after(check().await).await {
            return ended;
        }
    }
}

/// `until` as a loop the caller writes itself, for checks that need `&mut` state across polls (the
/// refresh watcher): start it, then hand it every check's result until it says the wait is over.
pub struct Poller<'a> {
    clock: &'a dyn Clock,
    wait: &'a Wait,
    start: Instant,
    failures: u32,
}

impl<'a> Poller<'a> {
    /// A wait begins (the clock hears of it: a dry run records it).
    pub fn start(clock: &'a dyn Clock, wait: &'a Wait) -> Self {
        clock.waiting(wait);
        Self { clock, wait, start: Instant::now(), failures: 0 }
    }

    /// Takes what a check saw. Some(end) when the wait is over; None after sleeping until the next check.
    pub async fn after<T>(&mut self, seen: Result<Check<T>, CloudError>) -> Option<Result<Waited<T>, WaitError>> {
        let (last, delay) = match seen {
            Ok(Check::Ready(v)) => return Some(Ok(Waited::Ready(v))),
            Ok(Check::Failed(why)) => return Some(Err(WaitError::Failed(why))),
            Ok(Check::NotYet(seen)) => {
                self.failures = 0;
                (seen, self.wait.every)
            }
            Ok(Check::Later(d, seen)) => {
                self.failures = 0;
                (seen, d)
            }
            Err(e) if e.kind == ErrorKind::Transient => {
                self.failures += 1;
                (format!("last check failed: {e}"), backoff(self.wait.every, self.failures))
            }
            Err(e) => return Some(Err(WaitError::Cloud(e))),
        };
        let waited = self.start.elapsed();
        if waited >= self.wait.timeout {
            return Some(Err(WaitError::TimedOut { waited, last }));
        }
        if !self.clock.sleep(delay.min(self.wait.timeout - waited)).await {
            return Some(Ok(Waited::Unobserved { last }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::TokioClock;

    fn wait(every: u64, timeout: u64) -> Wait {
        Wait { what: "test".into(), every: Duration::from_secs(every), timeout: Duration::from_secs(timeout) }
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_some_polls_in_virtual_time() {
        let start = Instant::now();
        let mut n = 0;
        let v = until(&TokioClock, &wait(10, 100), async || {
            n += 1;
            Ok(if n == 3 { Check::Ready(n) } else { Check::NotYet(format!("poll {n}")) })
        })
        .await
        .unwrap();
        assert_eq!(v, Waited::Ready(3));
        assert_eq!(start.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_last_status_and_retries_transient_errors() {
        let mut n = 0;
        let r: Result<Waited<()>, _> = until(&TokioClock, &wait(10, 25), async || {
            n += 1;
            if n == 1 {
                Err(CloudError::with_kind("ec2:DescribeImages", ErrorKind::Transient, None, "reset"))
            } else {
                Ok(Check::NotYet("pending".into()))
            }
        })
        .await;
        match r {
            Err(WaitError::TimedOut { waited, last }) => {
                assert_eq!(waited, Duration::from_secs(25));
                assert_eq!(last, "pending");
            }
            other => panic!("expected timeout, got {other:?}"),
        }
        // The transient failure backs off 20-24 s (twice the interval, plus jitter), then the deadline cuts the
        // next 10 s sleep short: checks at 0, ~20-24 and 25 s.
        assert_eq!(n, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn non_transient_error_and_terminal_state_fail_fast() {
        let r: Result<Waited<()>, _> = until(&TokioClock, &wait(1, 60), async || {
            Err(CloudError::service("ec2:DescribeImages", Some("UnauthorizedOperation"), "no"))
        })
        .await;
        assert!(matches!(r, Err(WaitError::Cloud(e)) if e.kind == ErrorKind::Denied));
        let start = Instant::now();
        let r: Result<Waited<()>, _> = until(&TokioClock, &wait(1, 60), async || Ok(Check::Failed("image failed".into()))).await;
        assert!(matches!(r, Err(WaitError::Failed(why)) if why == "image failed"));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn later_overrides_the_interval() {
        let start = Instant::now();
        let mut n = 0;
        until(&TokioClock, &wait(10, 100), async || {
            n += 1;
            Ok(if n == 2 { Check::Ready(()) } else { Check::Later(Duration::from_secs(3), "soon".into()) })
        })
        .await
        .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn backoff_doubles_is_capped_and_never_below_the_interval() {
        let every = Duration::from_secs(5);
        for (failures, low, high) in [(1, 10.0, 12.0), (2, 20.0, 24.0), (3, 30.0, 36.0), (9, 30.0, 36.0)] {
            let d = backoff(every, failures).as_secs_f64();
            assert!((low..high).contains(&d), "{failures} failures: {d}");
        }
        assert!(backoff(Duration::from_secs(60), 1) >= Duration::from_secs(60));
    }
}

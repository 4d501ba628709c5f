//! The one polling loop for waits the SDK has no usable waiter for: a documented interval, the
//! caller's deadline, fast failure on terminal states (the check returns an error), transient API
//! errors retried until the deadline, and `tokio::time::sleep` so tests run in virtual time.
//!
//! Why not the SDK waiters: their delay is fixed between 15 s and 120 s with no setter, which turns a
//! 1-second image wait on a time-scaled local AWS into 15 s, and instance refresh has none at all.

use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::CloudError;

/// What one check saw.
pub enum Check<T> {
    Ready(T),
    /// Not yet; the text says what was seen (for logs and for the timeout message).
    NotYet(String),
}

#[derive(Debug)]
pub enum PollError {
    TimedOut { waited: Duration, last: String },
    Failed(CloudError),
}

/// Calls `check` every `every` until it is ready, fails, or `timeout` passes.
pub async fn poll_until<T>(
    every: Duration,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<Check<T>, CloudError>,
) -> Result<T, PollError> {
    let start = Instant::now();
    let mut last;
    loop {
        match check().await {
            Ok(Check::Ready(v)) => return Ok(v),
            Ok(Check::NotYet(seen)) => last = seen,
            Err(e) if e.is_transient() => last = format!("last check failed: {e}"),
            Err(e) => return Err(PollError::Failed(e)),
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(PollError::TimedOut { waited, last });
        }
        tokio::time::sleep(every.min(timeout - waited)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;

    #[tokio::test(start_paused = true)]
    async fn ready_after_some_polls_in_virtual_time() {
        let start = Instant::now();
        let mut n = 0;
        let v = poll_until(Duration::from_secs(10), Duration::from_secs(100), async || {
            n += 1;
            Ok(if n == 3 { Check::Ready(n) } else { Check::NotYet(format!("poll {n}")) })
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        assert_eq!(start.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_last_status_and_retries_transient_errors() {
        let mut n = 0;
        let r: Result<(), _> = poll_until(Duration::from_secs(10), Duration::from_secs(25), async || {
            n += 1;
            if n == 1 {
                Err(CloudError::with_kind("ec2:DescribeImages", ErrorKind::Transient, None, "reset"))
            } else {
                Ok(Check::NotYet("pending".into()))
            }
        })
        .await;
        match r {
            Err(PollError::TimedOut { waited, last }) => {
                assert_eq!(waited, Duration::from_secs(25));
                assert_eq!(last, "pending");
            }
            _ => panic!("expected timeout"),
        }
        assert_eq!(n, 4, "checks at 0, 10, 20 and 25 s");
    }

    #[tokio::test(start_paused = true)]
    async fn non_transient_error_fails_fast() {
        let r: Result<(), _> = poll_until(Duration::from_secs(1), Duration::from_secs(60), async || {
            Err(CloudError::service("ec2:DescribeImages", Some("UnauthorizedOperation"), "no"))
        })
        .await;
        assert!(matches!(r, Err(PollError::Failed(e)) if e.kind == ErrorKind::Denied));
    }
}

//! How often the refresh watcher polls while AWS throttles it. Accounts share throttling buckets
//! across every pipeline (ELBv2 Describe*: 40 tokens refilled 10/s; EC2 Describe*: 100 refilled 20/s,
//! per the EC2 and ELB API-throttling pages), so a watcher that keeps its pace makes throttling worse
//! for everyone. On a throttled poll the watcher backs off with jitter and stretches its interval
//! (doubling, up to `MAX_STRETCH` × `poll_interval`); every `CALM_POLLS` polls answered without
//! throttling halve the stretch again. The verdict does not change: a throttled poll is a poll that
//! saw nothing, and the gate judges only what polls saw.

use std::time::Duration;

use super::wait::backoff;

/// 5 s → 40 s at most: slow enough to let a shared bucket refill (40 tokens at 10/s empties in 4 s of
/// a storm), fast enough that the gate still convicts a bad release long before a one-hour timeout.
const MAX_STRETCH: u32 = 8;
/// Polls without throttling before the stretch halves: two minutes at 5 s, so one storm is not
/// followed by another as soon as it clears.
const CALM_POLLS: u32 = 24;
/// Longest the watcher goes on without an answer while every poll is throttled, before it says it lost
/// sight of the group (AWS's AutoRollback still guards the refresh meanwhile).
pub const MAX_THROTTLED: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Pace {
    poll: Duration,
    stretch: u32,
    calm: u32,
    /// Consecutive throttled polls.
    throttled: u32,
}

impl Pace {
    pub fn new(poll: Duration) -> Self {
        Self { poll, stretch: 1, calm: 0, throttled: 0 }
    }

    /// The interval between polls now.
    pub fn interval(&self) -> Duration {
        self.poll * self.stretch
    }

    /// A poll got its answers: the interval until the next one.
    pub fn answered(&mut self) -> Duration {
        self.throttled = 0;
        self.calm += 1;
        if self.calm >= CALM_POLLS && self.stretch > 1 {
            self.stretch /= 2;
            self.calm = 0;
        }
        self.interval()
    }

    /// A poll was throttled: the (jittered, growing) wait before the next try.
    pub fn throttled(&mut self) -> Duration {
        self.throttled += 1;
        self.calm = 0;
        self.stretch = (self.stretch * 2).min(MAX_STRETCH);
        backoff(self.interval(), self.throttled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_stretches_the_interval_and_calm_polls_shrink_it_again() {
        let mut p = Pace::new(Duration::from_secs(5));
        assert_eq!(p.answered(), Duration::from_secs(5));
        let first = p.throttled();
        assert!((Duration::from_secs(20)..Duration::from_secs(25)).contains(&first), "{first:?}: 10 s doubled once, plus jitter");
        for _ in 0..5 {
            p.throttled();
        }
        assert_eq!(p.interval(), Duration::from_secs(40), "capped at 8 × poll_interval");
        let mut seen = vec![];
        for _ in 0..(CALM_POLLS * 3) {
            seen.push(p.answered().as_secs());
        }
        assert_eq!(seen.first(), Some(&40));
        assert_eq!(seen.last(), Some(&5), "back to poll_interval after calm polls");
        assert!(seen.windows(2).all(|w| w[1] <= w[0]), "never grows while calm: {seen:?}");
    }
}

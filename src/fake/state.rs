//! The fake cloud's whole world: every record (their types are in `group_records.rs` and
//! `resource_records.rs`), the virtual clock, and the tick that advances them together.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::hash::{DefaultHasher, Hasher};

use tokio::time::{Duration, Instant};

use super::conventions::iso8601;
use super::faults::Faults;
use super::group_records::{GroupRec, RefreshRec};
use super::resource_records::{AlarmRec, HealthRules, ImageRec, InstanceRec, SnapshotRec, TargetGroupRec, TemplateRec};
use super::timings::Timings;

/// Wall-clock time at `FakeCloud::new` (2026-01-01T00:00:00Z), so timestamps are the same in every run.
pub(crate) const EPOCH: i64 = 1_767_225_600;

pub(crate) struct State {
    pub start: Instant,
    /// Last tick the world was stepped to (a multiple of `timings.tick` after `start`).
    pub clock: Instant,
    /// The instant of the call being served; mutations schedule their deadlines from it.
    pub now: Instant,
    pub timings: Timings,
    seq: u64,
    pub images: BTreeMap<String, ImageRec>,
    pub snapshots: BTreeMap<String, SnapshotRec>,
    pub instances: BTreeMap<String, InstanceRec>,
    pub templates: BTreeMap<String, TemplateRec>,
    /// Launch configurations by name.
    pub launch_configs: BTreeMap<String, crate::core::model::LaunchConfiguration>,
    pub target_groups: BTreeMap<String, TargetGroupRec>,
    pub groups: BTreeMap<String, GroupRec>,
    /// Every refresh of every group, oldest first.
    pub refreshes: Vec<RefreshRec>,
    pub faults: Faults,
    pub rules: HealthRules,
    /// CloudWatch alarms by name.
    pub alarms: BTreeMap<String, AlarmRec>,
    /// Load balancer ARNs by name (`alb_metrics.rs`).
    pub load_balancers: BTreeMap<String, String>,
    /// Lowest count of in-service instances healthy in all their target groups, per group, over all ticks.
    pub min_healthy_seen: BTreeMap<String, usize>,
    pub wake: Wake,
    /// Skip ticks in which nothing can change (see `advance`). Off only to prove that skipping changes nothing.
    pub fast_forward: bool,
    /// CopyImage's ClientTokens → the copy they made.
    pub copy_tokens: BTreeMap<String, String>,
    /// (image or snapshot, account) pairs with a launch or create-volume permission.
    pub shared: std::collections::BTreeSet<(String, String)>,
}

/// The one way a tick asks about time. Besides answering `at <= t` it remembers the earliest instant still in
/// the future it was asked about: when a tick changed nothing, nothing can change before that instant.
#[derive(Default)]
pub(crate) struct Wake(Cell<Option<Instant>>);

impl Wake {
    pub fn due(&self, at: Instant, t: Instant) -> bool {
        if at <= t {
            return true;
        }
        if self.0.get().is_none_or(|earliest| at < earliest) {
            self.0.set(Some(at));
        }
        false
    }
}

impl State {
    pub fn new(timings: Timings) -> Self {
        let now = Instant::now();
        Self {
            start: now,
            clock: now,
            now,
            timings,
            seq: 0,
            copy_tokens: BTreeMap::new(),
            shared: std::collections::BTreeSet::new(),
            images: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            instances: BTreeMap::new(),
            templates: BTreeMap::new(),
            launch_configs: BTreeMap::new(),
            target_groups: BTreeMap::new(),
            groups: BTreeMap::new(),
            refreshes: Vec::new(),
            faults: Faults::default(),
            rules: HealthRules::default(),
            alarms: BTreeMap::new(),
            load_balancers: BTreeMap::new(),
            min_healthy_seen: BTreeMap::new(),
            wake: Wake::default(),
            fast_forward: true,
        }
    }

    /// Steps the world tick by tick up to `now`. Stepping on a fixed grid (rather than once per call) is what
    /// makes the simulation depend on elapsed time only: polling twice as often observes the same history.
    ///
    /// Quiet stretches are skipped exactly: a tick is a pure function of the world and of `Wake::due` answers,
    /// so after a tick that changed nothing, every tick before the earliest pending `due` instant would run
    /// the same path and change nothing too. Checking costs two hashes of the world, so after a tick that did
    /// change something the next few ticks run without checking.
    pub fn advance(&mut self, now: Instant) {
        let tick = self.timings.tick.max(Duration::from_millis(1));
        let mut check_in = 0u32;
        while self.clock + tick <= now {
            // Checking only pays off when there are ticks ahead to skip (a caller polling every tick gains nothing).
            let ahead = now.saturating_duration_since(self.clock) >= tick * 4;
            let before = (self.fast_forward && check_in == 0 && ahead).then(|| self.fingerprint());
            self.wake.0.set(None);
            self.clock += tick;
            self.step(self.clock);
            match before {
                Some(fp) if fp == self.fingerprint() => self.skip_quiet_ticks(now, tick),
                Some(_) => check_in = 8,
                None => check_in = check_in.saturating_sub(1),
            }
        }
        self.now = now.max(self.clock);
    }

    /// Moves the clock over the ticks strictly before the wake-up instant (and not after `now`).
    fn skip_quiet_ticks(&mut self, now: Instant, tick: Duration) {
        let per = tick.as_nanos();
        let to_now = now.saturating_duration_since(self.clock).as_nanos() / per;
        let to_wake = self.wake.0.take().map_or(u128::MAX, |at| {
            (at.saturating_duration_since(self.clock).as_nanos() - 1) / per
        });
        let skip = to_now.min(to_wake).min(u128::from(u32::MAX)) as u32;
        self.clock += tick * skip;
    }

    /// A hash of everything a tick can change.
    fn fingerprint(&self) -> u64 {
        struct Sink(DefaultHasher);
        impl fmt::Write for Sink {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0.write(s.as_bytes());
                Ok(())
            }
        }
        let mut sink = Sink(DefaultHasher::new());
        let world = (
            self.seq,
            &self.images,
            &self.instances,
            &self.target_groups,
            &self.groups,
            &self.refreshes,
            &self.launch_configs,
        );
        write!(sink, "{world:?}{:?}", self.min_healthy_seen).expect("hashing cannot fail");
        sink.0.finish()
    }

    /// One tick. The order matters: instance state first, then target health on it, then the group's
    /// reaction to both, then refresh decisions on that picture, then plain capacity repair.
    fn step(&mut self, t: Instant) {
        self.step_images(t);
        self.step_instances(t);
        self.step_targets(t);
        self.step_group_lifecycle(t);
        self.step_refreshes(t);
        self.step_group_capacity(t);
        self.step_warm_pools(t);
        self.record_capacity();
        self.step_traffic(t);
    }

    /// A new id shaped like AWS's (`ami-0` + 16 hex digits). Deterministic, but scrambled so that nothing can
    /// rely on ids sorting in creation order (EC2 gives no such promise).
    pub fn next_id(&mut self, prefix: &str) -> String {
        format!("{prefix}-0{:016x}", self.next_random())
    }

    pub fn next_uuid(&mut self) -> String {
        let (a, b) = (self.next_random(), self.next_random());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    /// Draws this world's ids from another sequence than the home region's (a region's name picks it).
    pub fn skip_ids(&mut self, region: &str) {
        self.seq = region.bytes().fold(1u64 << 40, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) << 8;
    }

    fn next_random(&mut self) -> u64 {
        self.seq += 1;
        splitmix64(self.seq)
    }

    /// Seconds since the Unix epoch at virtual instant `t`.
    pub fn unix(&self, t: Instant) -> i64 {
        EPOCH + t.saturating_duration_since(self.start).as_secs() as i64
    }

    /// ISO-8601 as EC2 prints it (`2026-01-01T00:00:00.000Z`); lexical order is chronological.
    pub fn iso(&self, t: Instant) -> String {
        iso8601(self.unix(t))
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

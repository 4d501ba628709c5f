//! The records behind Auto Scaling in the fake, as plain data: groups and their members, what a group
//! launches from and what each instance was launched from, launch hooks, warm pools, and instance
//! refreshes with their replacement phases. The world (`state.rs`) holds them; the behaviour that
//! reads and changes them, their own methods included, is in `autoscaling.rs`, `launch.rs`, `hooks.rs`,
//! `warm.rs`, `refresh.rs` and `rollout.rs`. Below all of those, so none of them imports another for a type.

use std::collections::BTreeSet;

use tokio::time::{Duration, Instant};

use crate::core::model::*;

// Groups and members (`autoscaling.rs`).

#[derive(Debug)]
pub(crate) struct GroupRec {
    pub name: String,
    /// What the group launches from (template versions as the group stores them: a number, `$Latest`
    /// or `$Default`).
    pub source: Source,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub target_groups: Vec<String>,
    pub members: Vec<MemberRec>,
    /// The group's DefaultInstanceWarmup.
    pub default_warmup: Option<Duration>,
    pub grace: Duration,
    /// Health check type ELB (true) or EC2: with EC2 checks Auto Scaling ignores target health entirely.
    pub elb_health: bool,
    pub launch_retry_at: Option<Instant>,
    /// The group's own tags.
    pub tags: Tags,
    pub launch_hook: Option<LaunchHook>,
    /// SuspendProcesses: `Launch`, `Terminate`, `InstanceRefresh`, ... (see `State::suspended`).
    pub suspended: BTreeSet<String>,
    pub warm: Option<WarmRec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Pending,
    /// Held by a launch lifecycle hook until `MemberRec::hook` decides.
    PendingWait,
    PendingProceed,
    InService,
    Terminating,
    /// EnterStandby: out of the group's capacity and its target groups, still running its image.
    Standby,
}

#[derive(Debug)]
pub(crate) struct MemberRec {
    pub id: String,
    pub lifecycle: Lifecycle,
    pub healthy: bool,
    /// What the instance was launched from.
    pub origin: Origin,
    /// SetInstanceProtection: never scaled in; a refresh replaces it only as ScaleInProtectedInstances says.
    pub protected: bool,
    pub in_service_at: Option<Instant>,
    /// End of the health-check grace period: before it, Auto Scaling ignores ELB health.
    pub grace_until: Option<Instant>,
    /// Terminating: when draining is over and the EC2 instance is terminated.
    pub terminate_at: Option<Instant>,
    /// Pending:Wait: when the launch action is completed (or times out), and how.
    pub hook: Option<(Instant, HookResult)>,
}

// Launch sources (`launch.rs`).

/// What a group is configured to launch from, as it stores it (versions may be `$Latest`/`$Default`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    Template { id: String, version: String },
    Mixed(MixedPolicy),
    Configuration(String),
}

/// What one instance was launched from (numbered), as DescribeAutoScalingGroups reports per instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Origin {
    Template { id: String, version: i64 },
    Configuration(String),
}

/// One way to launch an instance of a group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Launch {
    pub origin: Origin,
    /// An override's instance type (else the template's).
    pub instance_type: Option<String>,
}

// Launch lifecycle hooks (`hooks.rs`).

/// CompleteLifecycleAction's LifecycleActionResult.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookResult {
    Continue,
    Abandon,
}

/// A group's launch hook (PutLifecycleHook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchHook {
    pub heartbeat_timeout: Duration,
    pub default_result: HookResult,
}

// Warm pools (`warm.rs`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    Stopped,
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WarmState {
    /// Launched, not yet stopped (or running, for a Running pool).
    Pending,
    Warmed,
    Terminating,
}

#[derive(Debug)]
pub(crate) struct WarmMember {
    pub id: String,
    pub origin: Origin,
    pub state: WarmState,
}

#[derive(Debug)]
pub(crate) struct WarmRec {
    pub min_size: i32,
    pub max_prepared: Option<i32>,
    pub pool_state: PoolState,
    pub members: Vec<WarmMember>,
}

// Instance refreshes (`refresh.rs`, `rollout.rs`).

#[derive(Debug)]
pub(crate) struct RefreshRec {
    pub id: String,
    pub group: String,
    pub status: RefreshStatus,
    pub reason: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
    pub prefs: RefreshPrefs,
    /// The DesiredConfiguration as requested, and what it resolved to when the refresh started.
    pub desired: Configuration,
    pub target: Vec<Launch>,
    pub pending_until: Instant,
    /// The replacement under way: forward, or the rollback's once it started.
    pub phase: Option<Phase>,
    pub rollback_reason: Option<String>,
    /// Index into `prefs.checkpoints` of the next checkpoint.
    pub checkpoint: usize,
    pub checkpoint_until: Option<Instant>,
    pub bake_until: Option<Instant>,
    pub percentage: i32,
    pub to_update: i32,
    /// WarmPoolProgress, for a group with a warm pool.
    pub warm_progress: Option<(i32, i32)>,
}

/// One replacement pass: move the group's members (then its warm pool) onto `target`.
#[derive(Debug)]
pub(crate) struct Phase {
    pub target: Vec<Launch>,
    /// Members to replace, fixed when the phase starts.
    pub to_replace: BTreeSet<String>,
    pub launched: BTreeSet<String>,
    pub failures: u32,
    pub last_failure: Option<String>,
    pub retry_at: Option<Instant>,
    /// Since when only Standby or protected instances (StandbyInstances / ScaleInProtectedInstances
    /// `Wait`) have kept the refresh from finishing.
    pub stuck_since: Option<Instant>,
}

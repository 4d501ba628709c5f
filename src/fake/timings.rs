//! Timing knobs of the fake cloud, all in virtual time, with defaults shaped like AWS but short enough that a
//! paused-clock test covering a whole bake and refresh auto-advances through them in milliseconds of real time.

use std::time::Duration;

/// How long things take in the fake. Change them with `FakeCloud::with_timings` or `FakeCloud::update_timings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// Simulation step. The world only changes on multiples of this after `FakeCloud::new`, so what a test sees
    /// depends on elapsed time, never on how often it polls.
    pub tick: Duration,
    /// CreateImage: `pending` → `available` (AWS: minutes for an 8 GiB root volume, much longer for big ones).
    pub image_available: Duration,
    /// RunInstances: `pending` → `running` (AWS: 10-30 s).
    pub instance_running: Duration,
    /// After `running`, until both status checks pass (AWS: 2-5 min; shortened).
    pub status_ok: Duration,
    /// A build instance's user-data run, from `running` until it powers itself off.
    pub provisioning: Duration,
    /// `stopping` → `stopped`.
    pub stopping: Duration,
    /// `shutting-down` → `terminated`.
    pub shutting_down: Duration,
    /// Terminated instances stay visible in DescribeInstances this long (AWS: about an hour).
    pub terminated_visible: Duration,
    /// Target-group health check interval (ALB default 30 s; 10 s keeps tests short).
    pub health_check_interval: Duration,
    /// Consecutive successes before `initial`/`unhealthy` → `healthy` (ALB default 5). `initial` lasts
    /// `healthy_threshold × health_check_interval`.
    pub healthy_threshold: u32,
    /// Consecutive failures before `healthy` → `unhealthy` (ALB default 2).
    pub unhealthy_threshold: u32,
    /// Target-group deregistration delay: how long a leaving target stays `draining` (AWS default 300 s).
    pub deregistration_delay: Duration,
    /// CopyImage: `pending` → `available` in the destination region (the local AWS's 300 s: AWS publishes
    /// no figure; an 8 GiB copy takes minutes).
    pub image_copy: Duration,
    /// Auto Scaling health-check grace period; also the instance warm-up when neither the refresh nor the group
    /// sets one (as AWS documents). Must exceed the `initial` time or healthy instances would look failed.
    pub health_check_grace: Duration,
    /// StartInstanceRefresh: `Pending` → `InProgress`.
    pub refresh_pending: Duration,
    /// Failed replacements (launch errors, unhealthy or vanished new instances) after which a refresh (or its
    /// rollback) fails. AWS does not document its number; 3 fails fast yet tolerates one flaky instance.
    pub max_failed_replacements: u32,
    /// A new instance neither healthy nor unhealthy this long after entering service (a target stuck in
    /// `initial`) counts as a failed replacement. AWS would stall for about as long before failing the refresh.
    pub new_instance_timeout: Duration,
    /// After a failed launch, Auto Scaling waits this long before trying again.
    pub launch_retry: Duration,
    /// After a minute ends, until CloudWatch shows its ALB metrics (the emulator's default: 60 s).
    pub metrics_delay: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            image_available: Duration::from_secs(120),
            instance_running: Duration::from_secs(15),
            status_ok: Duration::from_secs(60),
            provisioning: Duration::from_secs(90),
            stopping: Duration::from_secs(10),
            shutting_down: Duration::from_secs(10),
            terminated_visible: Duration::from_secs(3600),
            health_check_interval: Duration::from_secs(10),
            healthy_threshold: 3,
            unhealthy_threshold: 2,
            deregistration_delay: Duration::from_secs(30),
            image_copy: Duration::from_secs(300),
            health_check_grace: Duration::from_secs(60),
            refresh_pending: Duration::from_secs(5),
            max_failed_replacements: 3,
            new_instance_timeout: Duration::from_secs(900),
            launch_retry: Duration::from_secs(10),
            metrics_delay: Duration::from_secs(60),
        }
    }
}

//! The records of the resources around the groups in the fake, as plain data: EC2 images, snapshots,
//! instances and launch templates, target groups with their targets and the application-health rules,
//! and CloudWatch alarms. The world (`state.rs`) holds them; the behaviour that reads and changes them,
//! their own methods included, is in `ec2.rs`, `instances.rs`, `templates.rs`, `elbv2.rs` and
//! `cloudwatch.rs`. Below all of those, so none of them imports another for a type.

use std::collections::BTreeMap;

use tokio::time::{Duration, Instant};

use super::group_records::HookResult;
use crate::core::model::*;

// Images and snapshots (`ec2.rs`).

#[derive(Debug)]
pub(crate) struct ImageRec {
    pub id: String,
    pub name: String,
    /// An account id, or an alias such as `amazon` for fixture base images.
    pub owner: String,
    pub state: ImageState,
    pub created: Instant,
    /// When a pending image settles (available, or failed when `will_fail`).
    pub ready_at: Option<Instant>,
    pub will_fail: bool,
    pub tags: Tags,
    pub snapshot_id: String,
    pub state_reason: Option<String>,
    /// Application health baked in from the build instance (what was broken there is broken in the image).
    pub inherited: Option<Health>,
    /// `x86_64` unless a fixture says otherwise; an image made from an instance inherits its image's.
    pub architecture: String,
    /// The KMS key its snapshot is encrypted with (a copy made with one), if any.
    pub kms_key: Option<String>,
    /// Deregistration protection (without cooldown, the only kind the fake models): DeregisterImage is refused.
    pub protected: bool,
}

pub(crate) struct SnapshotRec {
    pub tags: Tags,
}

// Instances (`instances.rs`).

#[derive(Debug)]
pub(crate) struct InstanceRec {
    pub id: String,
    pub image_id: String,
    pub instance_type: String,
    pub state: InstanceState,
    /// The next scheduled lifecycle transition.
    pub next: Option<(Instant, InstanceState)>,
    pub launched: Instant,
    pub running_since: Option<Instant>,
    pub status_ok_at: Option<Instant>,
    pub terminated_at: Option<Instant>,
    pub tags: Tags,
    pub user_data: Option<String>,
    /// The user-data script ends by powering the machine off (how a build instance says "done").
    pub powers_off: bool,
    /// Provisioning never finishes (`FakeCloud::fail_provisioning`).
    pub hang: bool,
    pub console: Vec<String>,
}

// Launch templates (`templates.rs`).

pub(crate) struct TemplateRec {
    pub id: String,
    pub name: String,
    pub default_version: i64,
    pub versions: BTreeMap<i64, TemplateVersion>,
}

/// The launch data of one version, as much of it as the fake models (enough to see that a copy kept it).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateVersion {
    pub number: i64,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub user_data: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Tags the template puts on launched instances.
    pub instance_tags: Tags,
    pub description: Option<String>,
    pub created: Instant,
    /// The rest of the launch data, kept as it was sent (what `adopt` reads back).
    pub extra: TemplateData,
}

// Target groups and application health (`elbv2.rs`).

/// What the application on an instance answers to the load balancer's health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Never answers: the target stays `initial` (for example a health-check path that times out).
    StuckInitial,
}

#[derive(Debug)]
pub(crate) struct TargetGroupRec {
    pub name: String,
    pub port: i32,
    pub interval: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub deregistration_delay: Duration,
    pub targets: BTreeMap<String, TargetRec>,
    /// The load balancer sending to it (an ALB's publishes metrics: `alb_metrics.rs`).
    pub load_balancer: Option<String>,
    pub requests_per_minute: f64,
    /// The images of its serving targets, each time they changed (the first stands for all time before).
    pub serving: Vec<(Instant, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct TargetRec {
    pub state: TargetState,
    pub initial_until: Instant,
    /// When a pending healthy ⇄ unhealthy change takes effect (after the threshold's worth of checks).
    pub flip_at: Option<Instant>,
    pub drain_until: Option<Instant>,
}

/// Test-controlled application health; the most specific rule wins (see `State::app_health`).
#[derive(Default)]
pub(crate) struct HealthRules {
    pub image: BTreeMap<String, Health>,
    pub instance: BTreeMap<String, Health>,
    /// Target group ARN → image id → health.
    pub image_in_tg: BTreeMap<String, BTreeMap<String, Health>>,
    /// Target group ARN → instance id → health.
    pub instance_in_tg: BTreeMap<String, BTreeMap<String, Health>>,
    /// Image id → how its instances complete a launch lifecycle action (see `hooks.rs`).
    pub image_lifecycle: BTreeMap<String, (Duration, HookResult)>,
    /// Image id → (5XX rate, mean response time) of the requests its instances answer (`alb_metrics.rs`).
    pub image_traffic: BTreeMap<String, (f64, f64)>,
}

// CloudWatch alarms (`cloudwatch.rs`).

#[derive(Debug, Clone)]
pub(crate) struct AlarmRec {
    pub state: String,
    pub reason: String,
}

//! An environment of the pipeline file: its groups (in waves), the refresh and gate settings, the
//! per-group overrides (`[environments.NAME.groups.GROUP]`), and their resolution into the domain's
//! `core::settings::EnvSettings`, which is all the engine sees.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Dur;
use crate::core::health::GateParams;
use crate::core::metric_verdict::{MetricParams, MetricsMode};
use crate::core::model::{ProtectedInstances, RefreshPrefs, StandbyInstances};
use crate::core::rollout::RolloutParams;
pub use crate::core::settings::HealthSource;
use crate::core::settings::{scope, EnvSettings, GroupSettings, Placement, Role};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The groups, one wave each (`auto_scaling_groups = ["a", "b"]` = `waves = [["a"], ["b"]]`).
    /// Exactly one of this and `waves`.
    pub auto_scaling_groups: Option<Vec<String>>,
    /// Ordered waves: the groups of a wave roll out together, the next wave once they are all verified.
    pub waves: Option<Vec<Vec<String>>>,
    /// Per-group overrides of the refresh and gate settings below.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupOverride>,
    /// The regions the environment's groups (and waves) exist in, rolled out region by region in this
    /// order (default: the bake region, the file's `region`).
    pub regions: Option<Vec<String>>,
    /// Deploy with this role, assumed from the caller's credentials (role chaining from GitLab's web
    /// identity included); another account's role makes the images shared with that account.
    pub role_arn: Option<String>,
    /// The ExternalId the role's trust policy asks for.
    pub external_id: Option<String>,
    /// Region → KMS key (id, ARN or `alias/…`) that region's copy of the image is encrypted with.
    #[serde(default)]
    pub kms_key_ids: BTreeMap<String, String>,
    /// How long a copy of the image to another region may stay pending.
    #[serde(default = "default_copy_timeout")]
    pub copy_timeout: Dur,
    /// Environments whose latest deploy of an image must have ended verified before it may come here
    /// (the promotion guard, `core::promotion`): production takes only what staging proved.
    #[serde(default)]
    pub requires_verified_in: Vec<String>,
    #[serde(default = "default_min_healthy")]
    pub min_healthy_percentage: i32,
    #[serde(default = "default_max_healthy")]
    pub max_healthy_percentage: i32,
    pub instance_warmup: Option<Dur>,
    #[serde(default)]
    pub checkpoints: Vec<i32>,
    pub checkpoint_delay: Option<Dur>,
    pub bake_time: Option<Dur>,
    #[serde(default = "yes")]
    pub skip_matching: bool,
    #[serde(default)]
    pub alarms: Vec<String>,
    #[serde(default = "default_poll")]
    pub poll_interval: Dur,
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    #[serde(default = "default_health_grace")]
    pub health_grace: Dur,
    #[serde(default = "default_deploy_timeout")]
    pub timeout: Dur,
    /// Make the new launch-template version the template's default after a successful deploy.
    #[serde(default = "yes")]
    pub set_default_version: bool,
    /// How long to wait for the fleet to be verified healthy after a refresh or rollback ends.
    pub verify_timeout: Option<Dur>,
    /// How the new instances' health is judged: `target-groups` (default: every target group of the
    /// group, which must have at least one) or `ec2` (the group's own health checks, for groups that
    /// serve no load balancer; said explicitly because EC2 checks miss a broken application).
    #[serde(default)]
    pub health: HealthSource,
    /// The metric gate (README "The health gate"): `auto` (default) also judges the release on the
    /// load balancer's own metrics of each target group behind an Application Load Balancer; `off`.
    #[serde(default)]
    pub metrics: MetricsMode,
    /// Percentage points the new release's 5XX rate may exceed the baseline's by (default 1).
    #[serde(default = "default_max_error_rate_increase")]
    pub max_error_rate_increase: f64,
    /// How many times the baseline's latency (p99, or the average) the new release's may be (default 1.5).
    #[serde(default = "default_max_latency_ratio")]
    pub max_latency_ratio: f64,
    /// Requests the new release must have served, and the baseline hold, before a verdict (default 200).
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// How long the deploy lock (a tag on each group) outlives a run that died without releasing it;
    /// a live run renews it every third of this.
    #[serde(default = "default_lock_lease")]
    pub lock_lease: Dur,
    /// What the refresh does with instances in Standby: `Terminate`, `Ignore` or `Wait` (unset: AWS's
    /// default, `Wait`). Validated at load time.
    pub standby_instances: Option<String>,
    /// What the refresh does with instances protected from scale in: `Refresh`, `Ignore` or `Wait`
    /// (unset: AWS's default, `Wait`).
    pub scale_in_protected_instances: Option<String>,
}

/// `[environments.NAME.groups.GROUP]`: the refresh and gate settings one group may set for itself (a
/// canary's checkpoints, bake time, threshold). Polling, alarms and the lock are the environment's: one
/// driver watches every group, and the alarms and the lock cover the whole release.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupOverride {
    pub min_healthy_percentage: Option<i32>,
    pub max_healthy_percentage: Option<i32>,
    pub instance_warmup: Option<Dur>,
    pub checkpoints: Option<Vec<i32>>,
    pub checkpoint_delay: Option<Dur>,
    pub bake_time: Option<Dur>,
    pub skip_matching: Option<bool>,
    pub unhealthy_threshold: Option<u32>,
    pub health_grace: Option<Dur>,
    pub timeout: Option<Dur>,
    pub set_default_version: Option<bool>,
    pub verify_timeout: Option<Dur>,
    pub health: Option<HealthSource>,
    pub metrics: Option<MetricsMode>,
    pub max_error_rate_increase: Option<f64>,
    pub max_latency_ratio: Option<f64>,
    pub min_requests: Option<u32>,
    pub standby_instances: Option<String>,
    pub scale_in_protected_instances: Option<String>,
}

fn default_min_healthy() -> i32 {
    100
}
fn default_max_healthy() -> i32 {
    200
}
fn default_poll() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_unhealthy_threshold() -> u32 {
    2
}
fn default_health_grace() -> Dur {
    Dur(Duration::from_secs(5 * 60))
}
fn default_deploy_timeout() -> Dur {
    Dur(Duration::from_secs(60 * 60))
}
fn default_lock_lease() -> Dur {
    // Long enough that a run stalled by throttling keeps it; short enough that a re-run after a crash
    // on another machine waits minutes, not an hour. (On the same machine a dead holder is seen at once.)
    Dur(Duration::from_secs(10 * 60))
}
fn default_max_error_rate_increase() -> f64 {
    1.0
}
fn default_max_latency_ratio() -> f64 {
    1.5
}
fn default_min_requests() -> u32 {
    200
}
fn default_copy_timeout() -> Dur {
    // Copies of large images take tens of minutes (packer #6536 timed out at its 30 min default).
    Dur(Duration::from_secs(45 * 60))
}
fn yes() -> bool {
    true
}

impl Environment {
    /// The waves as written, or one wave per group of `auto_scaling_groups`.
    pub fn waves(&self) -> Vec<Vec<String>> {
        match (&self.waves, &self.auto_scaling_groups) {
            (Some(w), _) => w.clone(),
            (None, Some(groups)) => groups.iter().map(|g| vec![g.clone()]).collect(),
            (None, None) => vec![],
        }
    }

    /// Every group, in wave order.
    pub fn group_names(&self) -> Vec<String> {
        self.waves().into_iter().flatten().collect()
    }

    /// The environment's settings with `group`'s overrides applied (what `validate` checks per group).
    pub fn for_group(&self, group: &str) -> Environment {
        let Some(o) = self.groups.get(group) else { return self.clone() };
        Environment {
            min_healthy_percentage: o.min_healthy_percentage.unwrap_or(self.min_healthy_percentage),
            max_healthy_percentage: o.max_healthy_percentage.unwrap_or(self.max_healthy_percentage),
            instance_warmup: o.instance_warmup.or(self.instance_warmup),
            checkpoints: o.checkpoints.clone().unwrap_or_else(|| self.checkpoints.clone()),
            checkpoint_delay: o.checkpoint_delay.or(self.checkpoint_delay),
            bake_time: o.bake_time.or(self.bake_time),
            skip_matching: o.skip_matching.unwrap_or(self.skip_matching),
            unhealthy_threshold: o.unhealthy_threshold.unwrap_or(self.unhealthy_threshold),
            health_grace: o.health_grace.unwrap_or(self.health_grace),
            timeout: o.timeout.unwrap_or(self.timeout),
            set_default_version: o.set_default_version.unwrap_or(self.set_default_version),
            verify_timeout: o.verify_timeout.or(self.verify_timeout),
            health: o.health.unwrap_or(self.health),
            metrics: o.metrics.unwrap_or(self.metrics),
            max_error_rate_increase: o.max_error_rate_increase.unwrap_or(self.max_error_rate_increase),
            max_latency_ratio: o.max_latency_ratio.unwrap_or(self.max_latency_ratio),
            min_requests: o.min_requests.unwrap_or(self.min_requests),
            standby_instances: o.standby_instances.clone().or_else(|| self.standby_instances.clone()),
            scale_in_protected_instances: o.scale_in_protected_instances.clone().or_else(|| self.scale_in_protected_instances.clone()),
            ..self.clone()
        }
    }

    /// Preferences for StartInstanceRefresh. AutoRollback is always on: AWS then rolls back a failed
    /// refresh itself even if this process dies.
    pub fn refresh_prefs(&self) -> RefreshPrefs {
        RefreshPrefs {
            min_healthy_percentage: self.min_healthy_percentage,
            max_healthy_percentage: self.max_healthy_percentage,
            instance_warmup: self.instance_warmup.map(|d| d.0),
            checkpoints: self.checkpoints.clone(),
            checkpoint_delay: self.checkpoint_delay.map(|d| d.0),
            skip_matching: self.skip_matching,
            auto_rollback: true,
            bake_time: self.bake_time.map(|d| d.0),
            alarms: self.alarms.clone(),
            standby_instances: self.standby_instances.as_deref().and_then(StandbyInstances::parse),
            scale_in_protected_instances: self.scale_in_protected_instances.as_deref().and_then(ProtectedInstances::parse),
        }
    }

    pub fn verify_timeout(&self) -> Duration {
        self.verify_timeout.map(|d| d.0).unwrap_or(self.health_grace.0)
    }

    /// The settings of one group: this environment's with the group's overrides.
    pub fn group_settings(&self, group: &str) -> GroupSettings {
        let e = self.for_group(group);
        let prefs = e.refresh_prefs();
        let rollout = RolloutParams {
            poll: e.poll_interval.0,
            timeout: e.timeout.0,
            verify_timeout: e.verify_timeout(),
            gate: GateParams { unhealthy_threshold: e.unhealthy_threshold, grace: e.health_grace.0 },
            left_alone: prefs.left_alone(),
            metrics: MetricParams {
                mode: e.metrics,
                max_error_rate_increase: e.max_error_rate_increase / 100.0,
                max_latency_ratio: e.max_latency_ratio,
                min_requests: e.min_requests,
            },
        };
        GroupSettings { name: group.to_string(), region: None, prefs, rollout, set_default_version: e.set_default_version, health: e.health }
    }

    /// Where the groups live; `bake_region` is the file's `region`.
    pub fn placement(&self, bake_region: Option<&str>) -> Placement {
        let role = self.role_arn.as_ref().map(|arn| Role {
            arn: arn.clone(),
            account: role_account(arn).unwrap_or_default().to_string(),
            external_id: self.external_id.clone(),
        });
        Placement {
            bake_region: bake_region.map(str::to_string),
            regions: self.regions.clone().unwrap_or_default(),
            role,
            kms_key_ids: self.kms_key_ids.clone(),
            copy_timeout: self.copy_timeout.0,
        }
    }

    /// The domain's view of this environment, named `name`: over several regions, every region's waves in
    /// the listed order, each group named `group@region`.
    pub fn settings(&self, name: &str, bake_region: Option<&str>) -> EnvSettings {
        let placement = self.placement(bake_region);
        let regions = placement.rollout_regions();
        let several = regions.len() > 1;
        let mut waves = Vec::new();
        let mut groups = BTreeMap::new();
        for region in &regions {
            for wave in self.waves() {
                let mut scoped = Vec::new();
                for g in wave {
                    let key = scope(&g, region.as_deref().or(bake_region), several);
                    groups.insert(key.clone(), GroupSettings { region: region.clone(), ..self.group_settings(&g) });
                    scoped.push(key);
                }
                waves.push(scoped);
            }
        }
        EnvSettings {
            name: name.to_string(),
            waves,
            groups,
            placement,
            alarms: self.alarms.clone(),
            poll: self.poll_interval.0,
            lock_lease: self.lock_lease.0,
            requires_verified_in: self.requires_verified_in.clone(),
        }
    }
}

/// The account of `arn:aws:iam::222222222222:role/bakeroll-deploy`.
pub fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty() && r.len() <= 512) =>
        {
            Some(account)
        }
        _ => None,
    }
}

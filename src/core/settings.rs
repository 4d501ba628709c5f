//! What a deploy needs to know about an environment, resolved once from the pipeline file: its groups in
//! ordered waves and, per group, the refresh preferences and gate parameters that apply to it (the
//! environment's, with the group's own overrides). The engine takes these, never the file's types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::health::GateParams;
use super::metric_verdict::MetricParams;
use super::model::RefreshPrefs;
use super::rollout::RolloutParams;

/// Where a deploy's health verdict comes from (`health` in the pipeline file).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthSource {
    /// Every target group of the group (which must have at least one).
    #[default]
    TargetGroups,
    /// The group's own (EC2) health checks, for a group that serves no load balancer.
    Ec2,
}

/// Everything that is decided per group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    /// The Auto Scaling group's name (AWS's; the release plan may know it as `name@region`).
    pub name: String,
    /// The region it lives in; None: the bake region (the SDK's, when the file names none).
    pub region: Option<String>,
    /// StartInstanceRefresh preferences of a deploy (AutoRollback on).
    pub prefs: RefreshPrefs,
    /// The rollout state machine's deadlines and the health gate's parameters.
    pub rollout: RolloutParams,
    /// Make the new launch-template version the template's default after a verified deploy.
    pub set_default_version: bool,
    pub health: HealthSource,
}

impl GroupSettings {
    /// Preferences for a refresh that goes back: no checkpoints or bake time (speed matters), AutoRollback
    /// off (there is nothing further back to go), SkipMatching so only instances on the bad image move, and
    /// no alarms (an alarm still in ALARM because of the bad release would refuse or stop the refresh that
    /// cures it).
    pub fn rollback_prefs(&self) -> RefreshPrefs {
        RefreshPrefs {
            checkpoints: vec![],
            checkpoint_delay: None,
            bake_time: None,
            auto_rollback: false,
            skip_matching: true,
            alarms: vec![],
            ..self.prefs.clone()
        }
    }

    /// The same settings for a refresh that only replaces instances left on another image (the group is
    /// already configured for the release): SkipMatching, so the instances already on it stay.
    pub fn converging(&self) -> Self {
        Self { prefs: RefreshPrefs { skip_matching: true, ..self.prefs.clone() }, ..self.clone() }
    }

    /// The same settings without alarms: `rollback` runs while production is on fire, and AWS refuses to
    /// start a refresh whose alarms are in ALARM.
    pub fn without_alarms(&self) -> Self {
        Self { prefs: RefreshPrefs { alarms: vec![], ..self.prefs.clone() }, ..self.clone() }
    }

    /// Defaults as the pipeline file has them, for tests and tools: 5 s polls, a 60 min timeout, a 5 min
    /// grace, threshold 2, AutoRollback, SkipMatching, the metric gate on with its defaults.
    pub fn defaults() -> Self {
        let prefs = RefreshPrefs {
            min_healthy_percentage: 100,
            max_healthy_percentage: 200,
            instance_warmup: None,
            checkpoints: vec![],
            checkpoint_delay: None,
            skip_matching: true,
            auto_rollback: true,
            bake_time: None,
            alarms: vec![],
            standby_instances: None,
            scale_in_protected_instances: None,
        };
        let grace = Duration::from_secs(300);
        let rollout = RolloutParams {
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(3600),
            verify_timeout: grace,
            gate: GateParams { unhealthy_threshold: 2, grace },
            left_alone: prefs.left_alone(),
            metrics: MetricParams::default(),
        };
        Self { name: String::new(), region: None, prefs, rollout, set_default_version: true, health: HealthSource::TargetGroups }
    }
}

/// The role an environment is deployed with, assumed from the caller's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    /// The 12-digit account the role belongs to (from its ARN).
    pub account: String,
    pub external_id: Option<String>,
}

/// Where an environment's groups live: the regions, rolled out one after another, and the account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// The bake region (the file's `region`); None: the SDK's region chain decides.
    pub bake_region: Option<String>,
    /// The regions in rollout order; empty: the bake region only.
    pub regions: Vec<String>,
    /// None: the caller's own credentials and account.
    pub role: Option<Role>,
    /// Region → KMS key for that region's copy of the image.
    pub kms_key_ids: BTreeMap<String, String>,
    /// The longest a copy may stay pending.
    pub copy_timeout: Duration,
}

impl Placement {
    /// The regions the image must be copied to: every region but the bake region.
    pub fn copy_regions(&self) -> Vec<String> {
        self.regions.iter().filter(|r| Some(r.as_str()) != self.bake_region.as_deref()).cloned().collect()
    }

    /// The regions in rollout order, `None` standing for the bake region.
    pub fn rollout_regions(&self) -> Vec<Option<String>> {
        if self.regions.is_empty() {
            return vec![None];
        }
        self.regions.iter().map(|r| if Some(r.as_str()) == self.bake_region.as_deref() { None } else { Some(r.clone()) }).collect()
    }
}

/// The name a group goes by in a release over several regions: `shop-web@ap-southeast-1` (a group of the
/// same name exists in each region); just the group's name in a release in one region.
pub fn scope(group: &str, region: Option<&str>, several: bool) -> String {
    match (region, several) {
        (Some(r), true) => format!("{group}@{r}"),
        _ => group.to_string(),
    }
}

/// An environment as a deploy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSettings {
    pub name: String,
    /// Groups in rollout order: the groups of a wave go together; the next wave starts when every group
    /// of this one is verified. Over several regions, each region's waves follow the previous region's
    /// and a group is named `group@region` (`scope`).
    pub waves: Vec<Vec<String>>,
    /// Every group of `waves` (by the name the release knows it by), with its settings.
    pub groups: BTreeMap<String, GroupSettings>,
    /// Regions, account, copies.
    pub placement: Placement,
    /// CloudWatch alarms checked before a deploy and named when they stop a refresh.
    pub alarms: Vec<String>,
    /// How often the driver looks at every group in flight.
    pub poll: Duration,
    /// How long the deploy lock outlives a run that died holding it.
    pub lock_lease: Duration,
    /// Environments an image must be verified in before it may be deployed here (the promotion guard).
    pub requires_verified_in: Vec<String>,
}

impl EnvSettings {
    /// Every group, in wave order.
    pub fn group_names(&self) -> Vec<String> {
        self.waves.iter().flatten().cloned().collect()
    }

    /// The settings of `group` (by the name the release knows it by); a group outside the environment gets
    /// the defaults under that name (never happens for a group of `waves`: the file is validated).
    pub fn group(&self, group: &str) -> GroupSettings {
        self.groups.get(group).cloned().unwrap_or_else(|| GroupSettings { name: group.to_string(), ..GroupSettings::defaults() })
    }

    /// The 1-based wave of `group`.
    pub fn wave_of(&self, group: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.iter().any(|g| g == group)).map(|i| i + 1)
    }

    /// The same environment with only `groups` (kept in their waves; emptied waves dropped).
    pub fn only(&self, groups: &[String]) -> Self {
        let waves: Vec<Vec<String>> = self
            .waves
            .iter()
            .map(|w| w.iter().filter(|g| groups.contains(g)).cloned().collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
            .collect();
        let kept = self.groups.iter().filter(|(g, _)| groups.contains(g)).map(|(g, s)| (g.clone(), s.clone())).collect();
        Self { waves, groups: kept, ..self.clone() }
    }

    /// One group in one wave with default settings: for tests and tools.
    pub fn single(env: &str, group: &str) -> Self {
        Self {
            name: env.to_string(),
            waves: vec![vec![group.to_string()]],
            groups: BTreeMap::from([(group.to_string(), GroupSettings { name: group.to_string(), ..GroupSettings::defaults() })]),
            placement: Placement::default(),
            alarms: vec![],
            poll: Duration::from_secs(5),
            lock_lease: Duration::from_secs(600),
            requires_verified_in: vec![],
        }
    }
}

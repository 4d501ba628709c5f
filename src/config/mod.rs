//! The pipeline file (`pipeline/bakeroll.toml`): parsing with file and line in every syntax error,
//! durations like `90s`, and validation that names the offending field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::core::model::{ProtectedInstances, RefreshPrefs, StandbyInstances};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}; give the right one with --pipeline PATH (default pipeline/bakeroll.toml)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{field}` {problem}")]
    Invalid { path: PathBuf, field: String, problem: String },
    #[error("{path}: no environment named `{name}` ({}defined: {defined})", chosen_by.map(|c| format!("from {c}; ")).unwrap_or_default())]
    UnknownEnv { path: PathBuf, name: String, defined: String, chosen_by: Option<&'static str> },
    #[error("{path}: several environments ({defined}); choose one with --env or BAKEROLL_ENV")]
    AmbiguousEnv { path: PathBuf, defined: String },
}

/// A duration written as `90s`, `5m`, `1h 30m` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration `{s}` ({e}); write e.g. \"90s\" or \"5m\"")))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Optional: else the usual AWS region chain.
    pub region: Option<String>,
    /// A name for this pipeline, tagged on everything bakeroll creates; defaults to the file stem.
    pub name: Option<String>,
    pub bake: Bake,
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AmiFilter {
    #[serde(default)]
    pub owners: Vec<String>,
    pub name: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ready {
    /// The provisioning script ends by powering the instance off.
    #[default]
    Stopped,
    /// Both EC2 status checks pass.
    StatusOk,
    /// The script tags its instance `bakeroll:ready=ok|failed`.
    Tag,
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stopped => "until it powers itself off",
            Self::StatusOk => "until its status checks pass",
            Self::Tag => "until it tags itself bakeroll:ready",
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bake {
    pub base_ami: Option<String>,
    pub base_ami_filter: Option<AmiFilter>,
    pub build_instance: Option<String>,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    /// Path of the provisioning script, relative to the pipeline file's directory's parent (the repo).
    pub user_data: Option<PathBuf>,
    #[serde(default)]
    pub ready: Ready,
    pub ami_name: String,
    #[serde(default = "default_bake_timeout")]
    pub timeout: Dur,
    /// How long an image may stay `pending` after CreateImage.
    #[serde(default = "default_image_timeout")]
    pub image_timeout: Dur,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "default_bake_poll")]
    pub poll_interval: Dur,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub auto_scaling_groups: Vec<String>,
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
    /// How long the deploy lock (a tag on each group) outlives a run that died without releasing it;
    /// a live run renews it every third of this.
    #[serde(default = "default_lock_lease")]
    pub lock_lease: Dur,
    /// What the refresh does with instances in Standby: `Terminate`, `Ignore` or `Wait` (unset: AWS's
    /// default, `Wait`). Validated at load time (`standby_instances()`).
    pub standby_instances: Option<String>,
    /// What the refresh does with instances protected from scale in: `Refresh`, `Ignore` or `Wait`
    /// (unset: AWS's default, `Wait`).
    pub scale_in_protected_instances: Option<String>,
}

/// Where a deploy's health verdict comes from (`environments.<env>.health`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthSource {
    #[default]
    TargetGroups,
    Ec2,
}

fn default_instance_type() -> String {
    "t3.micro".into()
}
fn default_bake_timeout() -> Dur {
    Dur(Duration::from_secs(45 * 60))
}
fn default_image_timeout() -> Dur {
    // Large images take tens of minutes to snapshot (packer-plugin-amazon #642 timed out at 10 min).
    Dur(Duration::from_secs(60 * 60))
}
fn default_bake_poll() -> Dur {
    Dur(Duration::from_secs(10))
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
fn yes() -> bool {
    true
}

/// A loaded, validated pipeline file plus where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub pipeline: Pipeline,
    /// Where the environment name `environment` is given comes from (`--env`, `BAKEROLL_ENV`), when the
    /// command line knows: its messages say it, so a variable left set in a CI job is recognisable.
    pub env_chosen_by: Option<&'static str>,
}

impl Loaded {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let pipeline: Pipeline = toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), message: parse_message(text, &e) })?;
        let loaded = Self { path: path.into(), pipeline, env_chosen_by: None };
        loaded.validate()?;
        Ok(loaded)
    }

    /// The pipeline's name: `name` key, else the file stem (`bakeroll` for `pipeline/bakeroll.toml`).
    pub fn name(&self) -> String {
        self.pipeline.name.clone().unwrap_or_else(|| {
            self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "bakeroll".into())
        })
    }

    /// Where to look when AWS has none of what the file names: ` in region R (is `region` right?)`, with
    /// R the file's region, else the one the environment chose; a wrong region is the likeliest cause.
    pub fn region_hint(&self) -> String {
        let from_env = || ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()).map(|r| (r, *v)));
        match (&self.pipeline.region, from_env()) {
            (Some(r), _) => format!(" in region {r} (is `region` right?)"),
            (None, Some((r, var))) => format!(" in region {r} (from {var}; is it right? `region` in the pipeline file fixes it)"),
            (None, None) => " in the AWS profile's region (is it right? `region` in the pipeline file fixes it)".into(),
        }
    }

    /// Where relative paths in the file (user_data) are resolved: the repository root, i.e. the parent of
    /// the pipeline directory when the file lives in `pipeline/`, else the file's own directory.
    pub fn base_dir(&self) -> PathBuf {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.file_name().is_some_and(|n| n == "pipeline") {
            dir.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            dir
        }
    }

    /// Picks the environment: explicit name, else the file's only one.
    pub fn environment(&self, name: Option<&str>) -> Result<(String, &Environment), ConfigError> {
        let envs = &self.pipeline.environments;
        let defined = envs.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(n) => envs.get(n).map(|e| (n.to_string(), e)).ok_or_else(|| ConfigError::UnknownEnv {
                path: self.path.clone(),
                name: n.into(),
                defined: if defined.is_empty() { "none".into() } else { defined },
                chosen_by: self.env_chosen_by,
            }),
            None if envs.len() == 1 => {
                let (n, e) = envs.iter().next().expect("one environment");
                Ok((n.clone(), e))
            }
            None if envs.is_empty() => Err(ConfigError::Invalid {
                path: self.path.clone(),
                field: "environments".into(),
                problem: "defines no environment; add e.g. [environments.staging]".into(),
            }),
            None => Err(ConfigError::AmbiguousEnv { path: self.path.clone(), defined }),
        }
    }

    fn invalid(&self, field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { path: self.path.clone(), field: field.into(), problem: problem.into() }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(region) = &self.pipeline.region {
            if !is_region(region) {
                return Err(self.invalid("region", format!("is `{region}`, not an AWS region name (e.g. us-east-1, eu-west-2)")));
            }
        }
        let b = &self.pipeline.bake;
        for (k, d) in [("bake.timeout", b.timeout), ("bake.image_timeout", b.image_timeout), ("bake.poll_interval", b.poll_interval)] {
            if d.0.is_zero() {
                return Err(self.invalid(k, "must be more than zero"));
            }
        }
        if b.poll_interval.0 >= b.timeout.0.min(b.image_timeout.0) {
            return Err(self.invalid("bake.poll_interval", "must be shorter than bake.timeout and bake.image_timeout (or the bake checks once and gives up)"));
        }
        let sources = [b.base_ami.is_some(), b.base_ami_filter.is_some(), b.build_instance.is_some()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(self.invalid("bake", "sets more than one of base_ami, base_ami_filter, build_instance; keep exactly one"));
        }
        if !b.ami_name.contains("{commit}") && !b.ami_name.contains("{short_commit}") {
            return Err(self.invalid("bake.ami_name", "must contain {commit} or {short_commit}: the name is what makes a retried bake reuse its image"));
        }
        if b.ami_name.len() > 128 {
            return Err(self.invalid("bake.ami_name", "is longer than the 128 characters EC2 allows"));
        }
        // Refused here rather than by AWS after the build instance ran: the same rule as `--tag`.
        for (key, value) in &b.tags {
            if let Some(why) = crate::core::tags::refused(key) {
                return Err(self.invalid("bake.tags", format!("has the key `{key}`: {why}; choose another key")));
            }
            if key.is_empty() || key.len() > 128 || value.len() > 256 {
                return Err(self.invalid("bake.tags", format!("has `{key}` = `{value}`; EC2 allows keys of 1-128 and values of 0-256 characters")));
            }
        }
        for (name, env) in &self.pipeline.environments {
            self.validate_env(name, env)?;
        }
        Ok(())
    }

    fn validate_env(&self, name: &str, e: &Environment) -> Result<(), ConfigError> {
        let f = |k: &str| format!("environments.{name}.{k}");
        if e.auto_scaling_groups.is_empty() {
            return Err(self.invalid(f("auto_scaling_groups"), "is empty; list at least one group"));
        }
        if !(0..=100).contains(&e.min_healthy_percentage) {
            return Err(self.invalid(f("min_healthy_percentage"), format!("is {}; AWS allows 0-100", e.min_healthy_percentage)));
        }
        if !(100..=200).contains(&e.max_healthy_percentage) {
            return Err(self.invalid(f("max_healthy_percentage"), format!("is {}; AWS allows 100-200", e.max_healthy_percentage)));
        }
        if e.max_healthy_percentage - e.min_healthy_percentage > 100 {
            return Err(self.invalid(f("max_healthy_percentage"), "minus min_healthy_percentage exceeds 100, which AWS rejects"));
        }
        if !e.checkpoints.is_empty() {
            let ascending = e.checkpoints.windows(2).all(|w| w[0] < w[1]);
            let in_range = e.checkpoints.iter().all(|p| (1..=100).contains(p));
            if !ascending || !in_range || e.checkpoints.last() != Some(&100) {
                return Err(self.invalid(f("checkpoints"), "must be strictly ascending percentages in 1-100 ending with 100 (or the refresh never finishes)"));
            }
        }
        let max_aws = Duration::from_secs(172_800);
        for (k, d) in [("checkpoint_delay", e.checkpoint_delay), ("bake_time", e.bake_time)] {
            if d.is_some_and(|d| d.0 > max_aws) {
                return Err(self.invalid(f(k), "exceeds the 48 h (172800 s) AWS allows"));
            }
        }
        if e.alarms.len() > 10 {
            return Err(self.invalid(f("alarms"), "lists more than the 10 alarms AWS allows"));
        }
        if e.unhealthy_threshold == 0 {
            return Err(self.invalid(f("unhealthy_threshold"), "must be at least 1"));
        }
        for (k, d) in [("poll_interval", Some(e.poll_interval)), ("timeout", Some(e.timeout)), ("health_grace", Some(e.health_grace)), ("verify_timeout", e.verify_timeout)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                return Err(self.invalid(f(k), "must be more than zero"));
            }
        }
        if e.poll_interval.0 >= e.health_grace.0.min(e.timeout.0) {
            return Err(self.invalid(f("poll_interval"), "must be shorter than health_grace and timeout (or a new instance is judged before it was ever looked at)"));
        }
        if e.lock_lease.0 < Duration::from_secs(3) {
            return Err(self.invalid(f("lock_lease"), "must be at least 3s (it is renewed every third of it)"));
        }
        if let Some(v) = e.standby_instances.as_deref().filter(|v| StandbyInstances::parse(v).is_none()) {
            return Err(self.invalid(f("standby_instances"), format!("is {v:?}; AWS allows {}", StandbyInstances::VALUES.join(", "))));
        }
        if let Some(v) = e.scale_in_protected_instances.as_deref().filter(|v| ProtectedInstances::parse(v).is_none()) {
            let allowed = ProtectedInstances::VALUES.join(", ");
            return Err(self.invalid(f("scale_in_protected_instances"), format!("is {v:?}; AWS allows {allowed}")));
        }
        if e.checkpoint_delay.is_some() && e.checkpoints.is_empty() {
            return Err(self.invalid(f("checkpoint_delay"), "is set but checkpoints is not; AWS refuses a CheckpointDelay without CheckpointPercentages"));
        }
        let pauses = e.checkpoint_delay.map_or(Duration::ZERO, |d| d.0 * e.checkpoints.len().saturating_sub(1) as u32);
        if pauses + e.bake_time.map_or(Duration::ZERO, |d| d.0) >= e.timeout.0 {
            return Err(self.invalid(f("timeout"), "is shorter than the checkpoint pauses plus bake_time: every refresh would be rolled back for taking too long"));
        }
        Ok(())
    }
}

/// One line: where (line, column, and the line itself, which shows the key) and what toml said
/// (`unknown field `instnace_type`, expected one of ...`). toml's own Display spans several lines with a
/// snippet, which would push the key out of the error's headline.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let what = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let source: String = text.lines().nth(line - 1).unwrap_or("").trim().chars().take(100).collect();
            format!("line {line}, column {column} (`{source}`): {what}")
        }
        None => what,
    }
}

/// The file's `region` must be a region name (`core::model::is_region_name`).
fn is_region(s: &str) -> bool {
    crate::core::model::is_region_name(s)
}

impl Environment {
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
}

mod readiness;

#[cfg(test)]
mod tests;

//! The pipeline file (`pipeline/bakeroll.toml`): parsing with file and line in every syntax error,
//! durations like `90s`, and validation that names the offending field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::core::settings::EnvSettings;

mod environment;
mod validate;

pub use environment::{role_account, Environment, GroupOverride, HealthSource};

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

    /// The environment as a deploy sees it (`core::settings`): its waves, and each group's settings.
    pub fn settings(&self, name: Option<&str>) -> Result<EnvSettings, ConfigError> {
        let (name, env) = self.environment(name)?;
        Ok(env.settings(&name, self.pipeline.region.as_deref()))
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

/// The file's `region` must be a region name (`core::model::is_region_name`, which the environment's
/// region is held to as well).
pub(crate) fn is_region(s: &str) -> bool {
    crate::core::model::is_region_name(s)
}

mod readiness;

#[cfg(test)]
mod tests;

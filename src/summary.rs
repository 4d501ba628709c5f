//! The JSON summary (`--output json`, schema `bakeroll.summary/v1`, docs/summary.schema.json) as one
//! typed struct: commands fill it in, `cli::finish` serialises it once, and the HTML report renders
//! from it. Nothing reads it back by key. Fields are only ever added within v1.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cloud::dry_run::DryRunRecord;
use crate::core::retention::{DoomedImage, KeptImage, Leaks};
use crate::engine::adopt::AdoptReport;
use crate::engine::bake::Baked;
use crate::engine::deploy::DeployReport;
use crate::engine::releases::{GroupHistory, GroupStatus};
use crate::engine::gc::Unreferenced;
use crate::engine::retention::Executed;
use crate::engine::revoke::Revoked;
use crate::engine::rollback::{GroupResult, RollbackDecision};

pub const SCHEMA: &str = "bakeroll.summary/v1";

/// What became of the command, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Baked,
    /// Verified on the release (for rollback: on the chosen earlier release).
    Deployed,
    RolledBack,
    Failed,
    NotStarted,
    /// A dry run.
    Planned,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baked => "baked",
            Self::Deployed => "deployed",
            Self::RolledBack => "rolled-back",
            Self::Failed => "failed",
            Self::NotStarted => "not-started",
            Self::Planned => "planned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub ami: String,
    pub commit: Option<String>,
}

/// The error as `cli::finish` rendered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSummary {
    pub message: String,
    pub causes: Vec<String>,
    pub state: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake: Option<Baked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployReport>,
    /// Calls made, by IAM action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<BTreeMap<String, u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// `true` on dry runs, absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<DryRunRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSummary>,
    /// What only one command reports.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

/// Keys of one command's summary (README "Output" and each command's section).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Details {
    Rollback {
        target: String,
        /// The line the rollback opened with: from which release to which, and why.
        #[serde(skip_serializing_if = "Option::is_none")]
        headline: Option<String>,
        /// The decision (not `plan`: that key is a dry run's recording).
        #[serde(skip_serializing_if = "Option::is_none")]
        rollback: Option<RollbackDecision>,
        #[serde(skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<GroupResult>>,
    },
    Status {
        groups: Vec<GroupStatus>,
    },
    History {
        groups: Vec<GroupHistory>,
    },
    Prune {
        executed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        keep_newest: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        keep: Option<Vec<KeptImage>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        delete: Option<Vec<DoomedImage>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orphan_snapshots: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted: Option<Executed>,
    },
    Gc {
        executed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        build_instances: Option<Leaks>,
        /// Copies still pending past `--older-than` in the other regions: deregistered with `--yes`.
        #[serde(skip_serializing_if = "Option::is_none")]
        stuck_copies: Option<Vec<DoomedImage>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unreferenced_versions: Option<Vec<Unreferenced>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        terminated: Option<Vec<String>>,
    },
    IamPolicy {
        policy: serde_json::Value,
        notes: Vec<String>,
        /// Each deploy role's permissions and trust policies, when environments deploy through roles.
        #[serde(skip_serializing_if = "Option::is_none")]
        deploy_roles: Option<Vec<crate::iam::RolePolicies>>,
    },
    Adopt {
        groups: Vec<AdoptReport>,
    },
    Revoke {
        /// RELEASE as given.
        target: String,
        /// `--restore` was asked.
        restored: bool,
        /// `{ ami, commit, revoked, was, marks }`.
        revoke: Revoked,
    },
}

impl Summary {
    pub fn new(command: &str) -> Self {
        Self { schema: SCHEMA, command: command.to_string(), ..Default::default() }
    }
}

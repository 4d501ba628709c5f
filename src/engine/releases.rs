//! Reads what `status`, `history`, `rollback`, `prune` and `gc` decide from: per Auto Scaling group, the
//! group, every version of its launch template, the refreshes AWS still keeps and, for `status`, the
//! fleet's images and health. Read-only; the decisions are in `core::releases` and `core::retention`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::fleet;
use super::preflight::not_a_template;
use super::Ctx;
use crate::cloud::CloudError;
use crate::core::health::{counts, verify, TgCount};
use crate::core::model::{Group, LeftBehind, LtVersion, PoolInstance, Refresh, TemplateRef};
use crate::core::promotion::ImageMarks;
use crate::core::releases::{history, parse_mark, GroupFacts, ReleaseRecord, Skipped};
use crate::error::{Error, Result};

/// One group as the release commands see it.
#[derive(Debug, Clone)]
pub struct GroupState {
    pub env: String,
    pub group: Group,
    pub template: TemplateRef,
    /// Every version of the group's launch template, newest first.
    pub versions: Vec<LtVersion>,
    /// The numbered version the group runs (`$Latest`/`$Default` resolved).
    pub current: Option<i64>,
    /// The group's refreshes as AWS still reports them, newest first.
    pub refreshes: Vec<Refresh>,
    /// A mixed instances policy's overrides' own templates, with every version of each.
    pub overrides: Vec<OverrideVersions>,
}

/// An override's own launch template: the version the policy names, and every version.
#[derive(Debug, Clone)]
pub struct OverrideVersions {
    pub template: TemplateRef,
    pub current: Option<i64>,
    pub versions: Vec<LtVersion>,
}

/// The number `wanted` (a number, `$Latest`, `$Default`) names among `versions`.
fn resolve_number(versions: &[LtVersion], wanted: &str) -> Option<i64> {
    match wanted {
        "$Latest" => versions.iter().map(|v| v.number).max(),
        "$Default" => versions.iter().find(|v| v.is_default).map(|v| v.number),
        n => n.parse().ok(),
    }
}

impl GroupState {
    pub fn facts(&self) -> GroupFacts<'_> {
        GroupFacts { env: &self.env, versions: &self.versions, current: self.current, refreshes: &self.refreshes }
    }

    /// Releases newest first (see `core::releases::history`).
    pub fn history(&self) -> Vec<ReleaseRecord> {
        history(&self.facts())
    }

    /// The refresh that blocks a new one (Pending, InProgress, Baking, Cancelling, RollbackInProgress).
    pub fn active_refresh(&self) -> Option<&Refresh> {
        self.refreshes.iter().find(|r| r.status.is_active())
    }

    pub fn version(&self, n: i64) -> Option<&LtVersion> {
        self.versions.iter().find(|v| v.number == n)
    }

    pub fn image_of(&self, n: i64) -> Option<String> {
        self.version(n).and_then(|v| v.image_id.clone())
    }

    pub fn default_version(&self) -> Option<i64> {
        self.versions.iter().find(|v| v.is_default).map(|v| v.number)
    }

    pub fn latest_version(&self) -> Option<i64> {
        self.versions.iter().map(|v| v.number).max()
    }

    /// Images the policy's override templates launch now (their current versions).
    pub fn override_images(&self) -> Vec<String> {
        self.overrides
            .iter()
            .filter_map(|o| o.versions.iter().find(|v| Some(v.number) == o.current).and_then(|v| v.image_id.clone()))
            .collect()
    }
}

/// Reads one group (with its warm pool). Ok(None) when the group does not exist; a group on a launch
/// configuration is a precondition error pointing at `bakeroll adopt` (bakeroll never deployed it).
pub async fn read_group(ctx: &Ctx, env: &str, name: &str) -> Result<Option<GroupState>> {
    let cloud = |e: CloudError| Error::cloud(e, "nothing was changed");
    let Some(group) = fleet::describe_group(ctx, name).await.map_err(cloud)? else { return Ok(None) };
    let template = group.template().cloned().ok_or_else(|| not_a_template(name, &group))?;
    let mut versions = ctx.cloud.ec2.launch_template_versions(&template.id, &[]).await.map_err(cloud)?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.number));
    let current = resolve_number(&versions, &template.version);
    let mut overrides = Vec::new();
    for t in group.mixed_instances.as_ref().map(|p| p.override_templates()).unwrap_or_default() {
        let versions = ctx.cloud.ec2.launch_template_versions(&t.id, &[]).await.map_err(cloud)?;
        overrides.push(OverrideVersions { template: t.clone(), current: resolve_number(&versions, &t.version), versions });
    }
    let refreshes = ctx.cloud.autoscaling.describe_instance_refreshes(name, &[]).await.map_err(cloud)?;
    Ok(Some(GroupState { env: env.to_string(), group, template, versions, current, refreshes, overrides }))
}

/// Reads a group that must exist.
pub async fn require_group(ctx: &Ctx, env: &str, name: &str) -> Result<GroupState> {
    read_group(ctx, env, name)
        .await?
        .ok_or_else(|| Error::precondition(format!("Auto Scaling group {name} (environment {env}) not found")))
}

/// `history` of one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupHistory {
    pub env: String,
    pub group: String,
    pub template_id: String,
    pub current_version: Option<i64>,
    /// Releases beyond `--limit` that were left out.
    pub more: usize,
    pub releases: Vec<ReleaseRecord>,
}

/// A release as `status` and `rollback` name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReleaseRef {
    pub version: Option<i64>,
    pub ami: Option<String>,
    pub commit: Option<String>,
}

impl ReleaseRef {
    pub fn of_version(state: &GroupState, n: i64) -> Self {
        let v = state.version(n);
        let mark = v.and_then(|v| v.description.as_deref()).and_then(parse_mark);
        Self { version: Some(n), ami: v.and_then(|v| v.image_id.clone()), commit: mark.and_then(|m| m.commit) }
    }

    pub fn of_record(r: &ReleaseRecord) -> Self {
        Self { version: Some(r.version), ami: r.ami.clone(), commit: r.commit.clone() }
    }

    /// `c0ffee1 (ami-0123, version 4)`.
    pub fn describe(&self) -> String {
        let mut inner = Vec::new();
        if let Some(a) = &self.ami {
            inner.push(a.clone());
        }
        if let Some(v) = self.version {
            inner.push(format!("version {v}"));
        }
        match &self.commit {
            Some(c) => format!("{c} ({})", inner.join(", ")),
            None => inner.join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshView {
    pub id: String,
    pub status: String,
    pub percent: Option<i32>,
    pub desired_version: Option<String>,
    pub status_reason: Option<String>,
}

impl RefreshView {
    fn of(r: &Refresh) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status.as_str().to_string(),
            percent: r.percentage_complete,
            desired_version: r.desired_version.clone(),
            status_reason: r.status_reason.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageCount {
    pub ami: String,
    pub instances: usize,
    /// The commit of the newest release of this group that launches the image, if any.
    pub commit: Option<String>,
}

/// `status` of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    pub env: String,
    pub group: String,
    pub template_id: String,
    /// As the group stores it: a number, `$Latest` or `$Default`.
    pub version_ref: String,
    pub release: ReleaseRef,
    /// The refresh in flight, if any.
    pub refresh: Option<RefreshView>,
    /// The newest refresh AWS still reports, in flight or not.
    pub last_refresh: Option<RefreshView>,
    pub desired: i32,
    pub in_service: usize,
    pub target_groups: Vec<TgCount>,
    pub images: Vec<ImageCount>,
    /// Every instance in service, on the current release's image and healthy in every target group.
    pub healthy: bool,
    pub problems: Vec<String>,
    /// The group's mixed instances policy: its instance types and overrides' own templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_instances: Option<MixedView>,
    /// The warm pool's instances (each with its image), for a group with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<Vec<PoolInstance>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suspended_processes: Vec<String>,
    /// Instances on another image that the environment's preferences leave alone (Standby, protected).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<LeftBehind>,
    /// The current release's image marks (verified, failed, revoked); None when it is not this pipeline's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marks: Option<ImageMarks>,
    /// The current release's image is protected from deregistration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// Where `rollback` would take the group now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_target: Option<RollbackTargetView>,
}

/// Where `rollback` (to the previous release) would take a group, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackTargetView {
    /// None: no release before the current one is fit (every one was skipped).
    pub release: Option<ReleaseRef>,
    /// Its image is protected from deregistration (None: not this pipeline's image).
    pub protected: Option<bool>,
    /// Releases stepped over: revoked, or failed in the environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A mixed instances policy as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixedView {
    pub instance_types: Vec<String>,
    /// `lt-… version N` of each override with a template of its own.
    pub override_templates: Vec<String>,
}

/// Reads the fleet of a group and summarises it; `left_alone` from the environment's preferences.
pub async fn status(ctx: &Ctx, state: &GroupState, left_alone: crate::core::model::LeftAlone) -> Result<GroupStatus> {
    let (images, health) = fleet::fleet(ctx, &state.group).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let release = state.current.map(|n| ReleaseRef::of_version(state, n)).unwrap_or_default();
    let members: Vec<_> = state.group.instances.iter().filter(|i| i.is_member()).collect();
    let mut per_image: BTreeMap<String, usize> = BTreeMap::new();
    for m in &members {
        *per_image.entry(images.get(&m.id).cloned().unwrap_or_else(|| "unknown".into())).or_default() += 1;
    }
    let records = state.history();
    let commit_of = |ami: &str| records.iter().find(|r| r.ami.as_deref() == Some(ami)).and_then(|r| r.commit.clone());
    let expected: Option<Vec<String>> = release.ami.clone().map(|a| {
        let mut v = vec![a];
        v.extend(state.override_images());
        v
    });
    let verdict = verify(&state.group, &images, &health, expected.as_deref(), left_alone);
    let problems = verdict.problems;
    let g = &state.group;
    let mixed_instances = g.mixed_instances.as_ref().map(|p| MixedView {
        instance_types: p.overrides.iter().filter_map(|o| o.instance_type.clone()).collect(),
        override_templates: p.override_templates().iter().map(|t| format!("{} version {}", t.id, t.version)).collect(),
    });
    let warm_pool = g.warm_pool.as_ref().map(|w| {
        let instances = w.instances.as_deref().unwrap_or_default();
        instances.iter().map(|i| PoolInstance { id: i.id.clone(), image: images.get(&i.id).cloned(), lifecycle: i.lifecycle_state.clone() }).collect()
    });
    Ok(GroupStatus {
        marks: None,
        protected: None,
        rollback_target: None,
        mixed_instances,
        warm_pool,
        suspended_processes: g.suspended_processes.clone(),
        left_behind: verdict.left_behind,
        env: state.env.clone(),
        group: state.group.name.clone(),
        template_id: state.template.id.clone(),
        version_ref: state.template.version.clone(),
        refresh: state.active_refresh().map(RefreshView::of),
        last_refresh: state.refreshes.first().map(RefreshView::of),
        desired: state.group.desired_capacity,
        in_service: members.iter().filter(|m| m.in_service()).count(),
        target_groups: counts(&state.group, &health),
        images: per_image.into_iter().map(|(ami, n)| ImageCount { commit: commit_of(&ami), ami, instances: n }).collect(),
        healthy: problems.is_empty() && release.ami.is_some(),
        problems,
        release,
    })
}

//! The rollback decision: every group of the environment read, the target resolved per group (`--to`,
//! or the release before the current one, stepping over revoked releases and releases that failed in the
//! environment), and a target that is unknown, whose image is gone, or that is revoked (unless `--force`)
//! refused before anything changes (exit 2). `super::execute` carries the decision out.

use serde::Serialize;

use crate::core::model::MixedPolicy;
use crate::core::promotion::ImageMarks;
use crate::core::releases::{previous_target, resolve, Resolved, Skipped, TargetSpec};
use crate::core::settings::EnvSettings;
use crate::engine::images::{self, CommitImage};
use crate::engine::promote::{self, Images};
use crate::engine::releases::{require_group, GroupState, ReleaseRef};
use crate::engine::Ctx;
use crate::error::{Error, Result};

/// A refresh in flight that the rollback undoes first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InFlight {
    pub refresh_id: String,
    pub status: String,
    pub release: ReleaseRef,
    /// The refresh's desired mixed instances policy, if it carries one.
    #[serde(skip)]
    pub policy: Option<MixedPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupDecision {
    pub group: String,
    pub template_id: String,
    /// What the group runs now.
    pub from: ReleaseRef,
    pub undo: Option<InFlight>,
    /// Where the group goes.
    pub to: ReleaseRef,
    /// The target's image is deployed as a new launch-template version (no version records it).
    pub new_version: bool,
    /// A deploy of `to` follows (after undoing the refresh in flight, if any); it does nothing when the
    /// fleet is already verified on `to`.
    pub refresh: bool,
    /// Why `to` was chosen (for `previous`).
    pub why: String,
    /// Releases `previous` stepped over: revoked, or failed in this environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// `revoked` when `--force` took the group to a revoked release (recorded in a new version's mark).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// The group's own mixed instances policy (what undoing a refresh in flight returns to).
    #[serde(skip)]
    pub policy: Option<MixedPolicy>,
    #[serde(skip)]
    pub warm_pool: bool,
    /// Images the policy's override templates launch now.
    #[serde(skip)]
    pub override_images: Vec<String>,
}

/// The decision, computed before anything changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackDecision {
    pub env: String,
    /// `--to` as given.
    pub target: String,
    pub groups: Vec<GroupDecision>,
}

/// Reads every group (and the pipeline's images, for their marks) and decides; an error here means
/// nothing was changed. `force`: a revoked target named with `--to` is taken all the same.
pub async fn decide(ctx: &Ctx, env: &EnvSettings, spec: &TargetSpec, target: &str, force: bool) -> Result<RollbackDecision> {
    let home = promote::pipeline_images(ctx).await?;
    // Each region's images with their marks (a copy judged by its source's): read once per region.
    let mut by_region: std::collections::BTreeMap<Option<String>, Images> = Default::default();
    let mut groups = Vec::new();
    for scope in env.group_names() {
        let settings = env.group(&scope);
        if !by_region.contains_key(&settings.region) {
            by_region.insert(settings.region.clone(), promote::images_in(ctx, settings.region.as_deref(), &home).await?);
        }
        let images = &by_region[&settings.region];
        let ctx = &ctx.place(settings.region.as_deref());
        let state = require_group(ctx, &env.name, &settings.name).await?;
        let mut decision = decide_group(ctx, &state, spec, target, images, force).await?;
        decision.group = scope;
        groups.push(decision);
    }
    Ok(RollbackDecision { env: env.name.clone(), target: target.to_string(), groups })
}

async fn decide_group(ctx: &Ctx, state: &GroupState, spec: &TargetSpec, target: &str, images: &Images, force: bool) -> Result<GroupDecision> {
    let name = &state.group.name;
    let current = state.current.ok_or_else(|| {
        Error::precondition(format!("group {name} uses launch-template version {} which does not exist", state.template.version))
    })?;
    let from = ReleaseRef::of_version(state, current);
    let undo = state.active_refresh().map(|r| InFlight {
        refresh_id: r.id.clone(),
        status: r.status.as_str().to_string(),
        release: r.desired_version.as_deref().and_then(|v| v.parse().ok()).map(|n| ReleaseRef::of_version(state, n)).unwrap_or_default(),
        policy: r.desired.as_ref().and_then(|d| d.policy().cloned()),
    });
    let refused = |e: String| Error::precondition(format!("cannot roll {name} back to {target}: {e}"));
    let (resolved, why, skipped) = match spec {
        TargetSpec::Previous => {
            let unfinished = match &undo {
                Some(r) => Some(format!("instance refresh {} is {}", r.refresh_id, r.status)),
                None => off_version(ctx, state, from.ami.as_deref()).await?,
            };
            let skip = promote::skipper(&state.env, images);
            let (r, why, skipped) = previous_target(&state.history(), current, unfinished.as_deref(), &skip).map_err(refused)?;
            (Resolved::Release(r), why, skipped)
        }
        _ => (resolve(spec, &state.history(), Some(current)).map_err(refused)?, format!("--to {target}"), vec![]),
    };
    let (to, new_version) = match resolved {
        Resolved::Release(r) => {
            let to = ReleaseRef::of_record(&r);
            let ami = to.ami.clone().ok_or_else(|| {
                Error::precondition(format!("cannot roll {name} back to {target}: launch-template version {} sets no image", r.version))
            })?;
            let commit = to.commit.as_deref().map(|c| format!("{c} ")).unwrap_or_default();
            images::require_available(ctx, &ami, &format!("cannot roll back to {target}: release {commit}(version {}) of {name}", r.version)).await?;
            (to, false)
        }
        Resolved::Image { ami, commit } => (find_image(ctx, name, ami, commit, target).await?, true),
    };
    // A release the group already runs (by image) is its own version: deploy then finds it "already on
    // it" (or converges the instances left on another image) instead of refreshing onto another version
    // of the same image. `--to N` means version N, whatever it launches.
    let (to, new_version) =
        if !matches!(spec, TargetSpec::Version(_)) && to.ami.is_some() && to.ami == from.ami { (from.clone(), false) } else { (to, new_version) };
    // Undoing the refresh in flight already lands on the group's own version. Otherwise deploy decides:
    // a fleet already verified on the target is left alone ("already on it"), a mixed one converges.
    let refresh = !(undo.is_some() && to.version == Some(current) && !new_version);
    // A revoked release is never gone back to unless asked with --force (`previous` already stepped over
    // them; this is `--to`). The group's own version (undoing a refresh in flight) is where it was anyway.
    let revoked = to.ami.as_ref().and_then(|a| images.get(a)).and_then(|i| ImageMarks::of(&i.tags).revoked);
    let forced = match revoked {
        Some(_) if to == from => None,
        Some(r) if !force => {
            let why = if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) };
            return Err(refused(format!("{} was revoked at {}{why}; choose another release, or pass --force to roll back onto it anyway", to.describe(), r.at)));
        }
        Some(_) => {
            ctx.events.warn(name, format!("rolling back onto {}, which is revoked (--force)", to.describe()));
            Some("revoked".to_string())
        }
        None => None,
    };
    let (policy, warm_pool) = (state.group.mixed_instances.clone(), state.group.warm_pool.is_some());
    let override_images = state.override_images();
    Ok(GroupDecision {
        group: name.clone(),
        template_id: state.template.id.clone(),
        from,
        undo,
        to,
        new_version,
        refresh,
        why,
        skipped,
        forced,
        policy,
        warm_pool,
        override_images,
    })
}

/// "N instances run ami-…" when members of the group run another image than its version launches.
async fn off_version(ctx: &Ctx, state: &GroupState, image: Option<&str>) -> Result<Option<String>> {
    let pool = state.group.warm_pool.as_ref().and_then(|w| w.instances.as_deref()).unwrap_or_default();
    let ids: Vec<String> = state.group.instances.iter().filter(|i| i.is_member()).chain(pool).map(|i| i.id.clone()).collect();
    let found = ctx.cloud.ec2.describe_instances(&ids).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let mut off: Vec<String> = found.into_iter().filter(|i| Some(i.image_id.as_str()) != image).map(|i| i.image_id).collect();
    if off.is_empty() {
        return Ok(None);
    }
    let n = off.len();
    off.sort();
    off.dedup();
    Ok(Some(format!("{n} instance(s) run {}, left by a change that did not finish", off.join(", "))))
}

/// A release no launch-template version records: its image, by id or by the commit it was baked for.
async fn find_image(ctx: &Ctx, group: &str, ami: Option<String>, commit: Option<String>, target: &str) -> Result<ReleaseRef> {
    if let Some(ami) = ami {
        images::require_available(ctx, &ami, &format!("cannot roll {group} back to {target}")).await?;
        return Ok(ReleaseRef { version: None, ami: Some(ami), commit });
    }
    let commit = commit.unwrap_or_default();
    match images::for_commit(ctx, &commit).await.map_err(|e| Error::cloud(e, "nothing was changed"))? {
        CommitImage::Ours(i) => {
            images::require_available(ctx, &i.id, &format!("cannot roll {group} back to {target}")).await?;
            Ok(ReleaseRef { version: None, ami: Some(i.id), commit: Some(commit) })
        }
        CommitImage::None { name } | CommitImage::Foreign { name, .. } => Err(Error::precondition(format!(
            "cannot roll {group} back to {target}: unknown release (no launch-template version records it and no AMI named {name} exists; deregistered?)"
        ))),
    }
}


//! Starting one group of a release: pin `$Latest`/`$Default`, make the launch-template version (and, for
//! a mixed instances policy, one of each override's own template) and start the refresh — or find the
//! group already on the release and verify it. Every error says what it left.

use std::collections::BTreeMap;

use super::fleet;
use super::images;
use super::preflight::Prepared;
use super::versions::{self, Started, VersionError, Wanted};
use super::wait::{Check, Poller, WaitError, Waited};
use super::{Ctx, RefreshKind};
use crate::cloud::{CloudError, Wait};
use crate::core::health::fleet_problems;
use crate::core::model::{Group, RefreshRequest};
use crate::core::rollout::{Outcome, Release};
use crate::core::settings::GroupSettings;
use crate::error::{Error, Result};
use crate::events::Stage;

/// What one group is to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub env: String,
    pub image_id: String,
    pub commit: Option<String>,
    /// Use this existing launch-template version instead of creating one (a rollback to an earlier
    /// release). Its image must be `image_id`.
    pub existing_version: Option<i64>,
    /// What `--force` overrode to deploy it (`revoked`, `unverified:staging`): recorded in the release mark.
    pub forced: Option<String>,
}

/// A refresh of the release started (or an earlier run's adopted).
pub struct Refreshing {
    pub refresh_id: String,
    pub new: Release,
    /// `$Latest`/`$Default` the group was pinned from, if it had to be.
    pub pinned_from: Option<String>,
    /// New versions of the policy's overrides' own templates: (template, old, new).
    pub overrides: Vec<(String, i64, i64)>,
}

/// Pins `$Latest`/`$Default`, makes the version (and the overrides' versions) and starts the refresh;
/// every error says what it left.
pub async fn refresh(ctx: &Ctx, settings: &GroupSettings, target: &Target, p: &Prepared) -> Result<Refreshing> {
    let name = &p.group.name;
    check_architectures(ctx, p, &target.image_id).await?;
    let mut pinned_from = None;
    if p.needs_pin() {
        // AWS can only roll back to numbered versions: pin first. The same versions, so no instance changes.
        ctx.events.phase(name, Stage::Pin, format!("pinning {} from {} to version {}", name, p.template.version, p.current));
        ctx.cloud
            .autoscaling
            .set_group_configuration(name, &p.current_configuration())
            .await
            .map_err(|e| Error::cloud(e, "nothing was changed"))?;
        pinned_from = Some(p.template.version.clone());
    }
    let changed = |what: &str| match &pinned_from {
        Some(from) => format!("group {name} pinned from {from} to version {}; {what}", p.current),
        None => format!("group {name} unchanged; {what}"),
    };
    let want = Wanted { env: &target.env, image: &target.image_id, commit: target.commit.as_deref(), existing: target.existing_version, forced: target.forced.as_deref() };
    let failed = |e: VersionError| match e {
        VersionError::Cloud(e) => Error::cloud(e, changed("no launch-template version created")),
        VersionError::Mismatch(m) => Error::precondition(m),
        VersionError::Unverified(message) => Error::Unsettled { message, state: changed("the new version is left unused") },
    };
    let (version, created) = versions::for_release(ctx, &want, p).await.map_err(failed)?;
    let mut made: Vec<(String, i64)> = if created { vec![(p.template.id.clone(), version)] } else { vec![] };
    let mut overrides = BTreeMap::new();
    let mut changes = Vec::new();
    for o in &p.overrides {
        let (n, created) = versions::for_override(ctx, &Wanted { existing: None, ..want }, name, o).await.map_err(failed)?;
        changes.push((o.template.id.clone(), o.current, n));
        overrides.insert(o.template.id.clone(), n);
        if created {
            made.push((o.template.id.clone(), n));
        }
    }
    let unused = changed(&format!("launch-template version {version} created but unused (a re-run of this release reuses it)"));
    if let Some(signal) = ctx.stop.requested() {
        let state = if made.is_empty() { unused } else { changed(&discard_versions(ctx, p, &made).await) };
        return Err(Error::Interrupted { state: format!("{signal} received before the refresh of {name} started; {state}") });
    }
    let desired = p.configuration(version, &overrides);
    let new = Release { version, image_id: target.image_id.clone(), policy: desired.policy().cloned(), also: vec![] };
    let request = RefreshRequest { group: name.clone(), desired, prefs: settings.prefs.clone() };
    let what = if p.policy.is_some() { "its mixed instances policy on version" } else { "version" };
    ctx.events.phase(name, Stage::Refresh, format!("starting instance refresh to {what} {version} ({})", target.image_id));
    match versions::start_refresh(ctx, &request).await {
        Started::Running { id, .. } => {
            ctx.ledger.refresh_started(name, &id, RefreshKind::Forward);
            Ok(Refreshing { refresh_id: id, new, pinned_from, overrides: changes })
        }
        Started::Blocked(r) => Err(Error::precondition(format!(
            "group {name} was taken by instance refresh {} ({}, to version {}) between preflight and the start of ours; {unused}",
            r.id,
            r.status.as_str(),
            r.desired_version.as_deref().unwrap_or("?")
        ))),
        Started::Failed(e) => Err(Error::cloud(e, unused)),
    }
}

/// An override whose own template launches another architecture than the release's image cannot take
/// that image (an arm64 override needs an arm64 build): refused, naming it, before anything changes.
async fn check_architectures(ctx: &Ctx, p: &Prepared, image: &str) -> Result<()> {
    if p.overrides.is_empty() {
        return Ok(());
    }
    let arch = |ami: String| async move { images::by_id(ctx, &ami).await.map(|i| i.and_then(|i| i.architecture)) };
    let unchanged = |e| Error::cloud(e, "nothing was changed");
    let Some(release) = arch(image.to_string()).await.map_err(unchanged)? else { return Ok(()) };
    for o in &p.overrides {
        let Some(current) = o.image.clone() else { continue };
        if let Some(theirs) = arch(current.clone()).await.map_err(unchanged)?.filter(|a| *a != release) {
            let types: Vec<&str> = p
                .policy
                .iter()
                .flat_map(|pol| pol.overrides.iter())
                .filter(|ov| ov.template.as_ref().is_some_and(|t| t.id == o.template.id))
                .filter_map(|ov| ov.instance_type.as_deref())
                .collect();
            return Err(Error::precondition(format!(
                "group {}: the override{} {} launch{} from launch template {} ({theirs} image {current}), but release {image} is {release}; \
                 one image cannot serve both architectures: give the override a template on {release} or deploy it separately",
                p.group.name,
                if types.len() == 1 { "" } else { "s" },
                if types.is_empty() { o.template.id.clone() } else { types.join(", ") },
                if types.len() == 1 { "es" } else { "" },
                o.template.id
            )));
        }
    }
    Ok(())
}

/// A stop came after this run created versions (`created`: template id and number; the group's own
/// template first, then overrides' own) and before anything used them: delete them, so that a cancelled
/// deploy leaves no version that was never rolled out. Says what is left either way.
async fn discard_versions(ctx: &Ctx, p: &Prepared, created: &[(String, i64)]) -> String {
    let group = p.group.name.as_str();
    let mut said = Vec::new();
    let mut all_gone = true;
    for (template_id, version) in created {
        // The group's own template is the one a user knows; an override's is named.
        let what = if *template_id == p.template.id {
            format!("launch-template version {version}")
        } else {
            format!("version {version} of override template {template_id}")
        };
        match ctx.cloud.ec2.delete_launch_template_version(template_id, *version).await {
            Ok(()) => {
                ctx.events.info(group, format!("deleted {what}: nothing used it"));
                said.push(format!("{what} was created and deleted again"));
            }
            Err(e) => {
                all_gone = false;
                said.push(format!("{what} created but unused and could not be deleted ({e}); a re-run of this release reuses it"));
            }
        }
    }
    if all_gone {
        ctx.ledger.version_deleted(group);
    }
    said.join("; ")
}

/// A group whose configuration already launches the release and whose members all run it: wait (up to
/// `verify_timeout`) for every one to be in service and healthy.
pub async fn verify_configured(ctx: &Ctx, settings: &GroupSettings, p: &Prepared, image: &str) -> Outcome {
    let name = &p.group.name;
    if p.verified_on(image) {
        ctx.events.info(name, format!("already on {image} (launch-template version {}); nothing to do", p.current));
        return Outcome::Deployed;
    }
    ctx.events.phase(name, Stage::Verify, format!("{name} is configured for {image}: checking every instance is in service and healthy on it"));
    let what = format!("every instance of {name} in service on {image} and healthy in every target group");
    let wait = Wait { what, every: settings.rollout.poll, timeout: settings.rollout.verify_timeout };
    // A Poller, not `wait::until` with an async closure: a closure future borrowing this function's
    // references is not `Send` for the compiler, and deploys run in spawned tasks.
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let mut last = Vec::new();
    let verified = loop {
        let seen = check_fleet(ctx, &p.group, image).await.map(|problems| {
            last = problems;
            if last.is_empty() { Check::Ready(()) } else { Check::NotYet(last.join("; ")) }
        });
        if let Some(ended) = poller.after(seen).await {
            break ended;
        }
    };
    match verified {
        Ok(Waited::Ready(())) | Ok(Waited::Unobserved { .. }) => Outcome::Deployed,
        Err(WaitError::TimedOut { .. } | WaitError::Failed(_)) => Outcome::Failed {
            reason: None,
            detail: format!("{name} is configured for {image}, but its fleet does not verify: {}", last.join("; ")),
        },
        Err(WaitError::Cloud(e)) => Outcome::Failed { reason: None, detail: format!("{name} could not be verified: {e}") },
    }
}

/// What keeps the group from being verified on `image` now (empty: verified).
async fn check_fleet(ctx: &Ctx, group: &Group, image: &str) -> Result<Vec<String>, CloudError> {
    let g = ctx.cloud.autoscaling.describe_group(&group.name).await?.unwrap_or_else(|| group.clone());
    let (images, health) = fleet::fleet(ctx, &g).await?;
    Ok(fleet_problems(&g, &images, &health, Some(image)))
}

/// After a verified success: the new version becomes the template's default (when asked), including
/// for a release an earlier, interrupted run left as the group's configuration but not the default.
pub async fn finish_success(ctx: &Ctx, settings: &GroupSettings, p: &Prepared, version: i64) {
    let name = &p.group.name;
    if !settings.set_default_version || p.default_version == Some(version) {
        return;
    }
    ctx.events.phase(name, Stage::DefaultVersion, format!("version {version} becomes the default of {}", p.template.id));
    if let Err(e) = ctx.cloud.ec2.set_default_version(&p.template.id, version).await {
        ctx.events.warn(name, format!("deployed, but version {version} could not be made the template default: {e}"));
    }
}

/// What a group already configured for the release ran before it, from its version's release mark
/// (`from=`): the release an undo goes back to. None when nothing says (no mark; a mixed instances
/// policy, whose earlier policy the mark does not record).
pub async fn previous_release(ctx: &Ctx, p: &Prepared) -> Option<Release> {
    let from = p.marked_from.filter(|_| p.policy.is_none())?;
    let versions = ctx.cloud.ec2.launch_template_versions(&p.template.id, &[from.to_string()]).await.ok()?;
    let image = versions.into_iter().find(|v| v.number == from)?.image_id?;
    Some(Release::of(from, image))
}

//! gc against the cloud: the build instances a dead bake left (the bake region's), copies stuck pending in
//! every other region, and the launch-template versions nothing refers to in every region; decided by
//! `core::retention`, executed and verified only when asked (unreferenced versions are only reported).

use std::time::Duration;

use serde::Serialize;

use super::retention::{describe, execute_region, pipeline_tag, settle, Executed};
use super::sites::{Site, SiteGroup};
use super::wait::Check;
use super::Ctx;
use crate::core::model::{ImageFilter, RefreshStatus, Tags};
use crate::core::retention::{find_leaks, stuck_copies, unreferenced_versions, DoomedImage, Leaks, PruneDecision};
use crate::core::tags;
use crate::error::{Error, Result};
use crate::events::Stage;

/// Launch-template versions bakeroll created that nothing refers to, per template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreferenced {
    pub template_id: String,
    pub template_name: String,
    pub groups: Vec<String>,
    /// The template's region; absent: the bake region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub versions: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcDecision {
    pub build_instances: Leaks,
    /// Copies pending past the threshold, in the regions they are in (`core::retention::stuck_copies`).
    pub stuck_copies: Vec<DoomedImage>,
    /// Reported only: deleting versions is left to a human.
    pub unreferenced_versions: Vec<Unreferenced>,
}

/// Decides what `gc` would terminate (build instances live in the bake region: `ctx`'s), and which
/// launch-template versions of the groups of every region (`sites`) nothing refers to; `now` is Unix seconds.
pub async fn gc_decision(ctx: &Ctx, sites: &[Site], older_than: Duration, now: i64) -> Result<GcDecision> {
    let required = Tags::from([
        (tags::ROLE.to_string(), tags::ROLE_BUILD.to_string()),
        (tags::PIPELINE.to_string(), ctx.pipeline.name()),
    ]);
    ctx.events.phase("gc", Stage::Read, format!("looking for build instances of pipeline {}", ctx.pipeline.name()));
    let found = ctx.cloud.ec2.find_instances(&required).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let build_instances = find_leaks(&found, &required, now, older_than, tags::COMMIT);
    let mut unreferenced: Vec<Unreferenced> = Vec::new();
    let mut stuck = Vec::new();
    for site in sites {
        let groups: Vec<&SiteGroup> = site.groups.iter().collect();
        unreferenced.extend(unreferenced_in(&site.region, &groups));
        if site.region.is_some() {
            let bake = &site.bake;
            bake.events.phase("gc", Stage::Read, format!("looking for copies stuck pending{}", site.label()));
            let filter = ImageFilter { owners: vec!["self".into()], tags: pipeline_tag(bake), ..Default::default() };
            let images = bake.cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
            let found = PruneDecision { delete: stuck_copies(&images, now, older_than), ..PruneDecision::default() }.in_region(site.region.clone());
            stuck.extend(found.delete);
        }
    }
    Ok(GcDecision { build_instances, stuck_copies: stuck, unreferenced_versions: unreferenced })
}

/// The unreferenced versions of one region's templates (a template serves the groups of its region only).
fn unreferenced_in(region: &Option<String>, site_groups: &[&SiteGroup]) -> Vec<Unreferenced> {
    let mut unreferenced: Vec<Unreferenced> = Vec::new();
    for sg in site_groups {
        let g = &sg.state;
        if unreferenced.iter().any(|u| u.template_id == g.template.id) {
            continue;
        }
        let sharing: Vec<&SiteGroup> = site_groups.iter().copied().filter(|o| o.state.template.id == g.template.id).collect();
        let mut in_use: Vec<i64> = sharing.iter().filter_map(|o| o.state.current).collect();
        for o in sharing.iter().map(|o| &o.state) {
            let kept = o.refreshes.iter().filter(|r| r.status.is_active() || r.status == RefreshStatus::Successful);
            in_use.extend(kept.filter_map(|r| r.desired_version.as_deref()?.parse::<i64>().ok()));
        }
        let versions = unreferenced_versions(&g.versions, &in_use);
        if !versions.is_empty() {
            unreferenced.push(Unreferenced {
                template_id: g.template.id.clone(),
                template_name: g.template.name.clone(),
                groups: sharing.iter().map(|o| o.scope.clone()).collect(),
                region: region.clone(),
                versions,
            });
        }
    }
    unreferenced
}

/// Terminates the plan's build instances and checks EC2 reports them going, then deregisters the stuck
/// copies (which stops them) with their snapshots, each in its region (`sites`: the regions read).
pub async fn gc_execute(ctx: &Ctx, sites: &[Site], decision: &GcDecision) -> (Executed, Result<()>) {
    let (mut out, terminated) = terminate(ctx, decision).await;
    let mut first = None;
    for site in sites.iter().filter(|s| s.region.is_some()) {
        let delete: Vec<DoomedImage> = decision.stuck_copies.iter().filter(|c| c.region == site.region).cloned().collect();
        if delete.is_empty() {
            continue;
        }
        let plan = PruneDecision { delete, ..PruneDecision::default() }.in_region(site.region.clone());
        if let Some(p) = execute_region(&site.bake, &plan, &mut out).await {
            first.get_or_insert(p);
        }
    }
    let copies = match first {
        None => Ok(()),
        Some(p) => Err(p.into_error(describe(&out, "copy", "deregistered"))),
    };
    (out, terminated.and(copies))
}

async fn terminate(ctx: &Ctx, decision: &GcDecision) -> (Executed, Result<()>) {
    let ids: Vec<String> = decision.build_instances.terminate.iter().map(|b| b.id.clone()).collect();
    let mut out = Executed::default();
    if ids.is_empty() {
        return (out, Ok(()));
    }
    ctx.events.phase("gc", Stage::Terminate, format!("terminating {}", ids.join(", ")));
    if let Err(e) = ctx.cloud.ec2.terminate_instances(&ids).await {
        out.errors.push(format!("{} not terminated: {e}", ids.join(", ")));
        return (out, Err(Error::cloud(e, "nothing was terminated")));
    }
    let going = settle(ctx, format!("EC2 to show {} shutting down", ids.join(", ")), async || {
        let seen = ctx.cloud.ec2.describe_instances(&ids).await?;
        let live: Vec<&str> = seen.iter().filter(|i| !i.state.is_gone()).map(|i| i.id.as_str()).collect();
        Ok(if live.is_empty() { Check::Ready(()) } else { Check::NotYet(format!("still live: {}", live.join(", "))) })
    })
    .await;
    match going {
        Ok(()) => {
            out.done = ids;
            (out, Ok(()))
        }
        Err(p) => {
            out.errors.push(format!("termination of {} not confirmed", ids.join(", ")));
            let state = format!("TerminateInstances accepted for {}, but EC2 does not show them going", ids.join(", "));
            (out, Err(p.into_error(state)))
        }
    }
}

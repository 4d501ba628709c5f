//! prune against the cloud, region by region: gather the facts (the pipeline's images and everything that
//! protects one), let `core::retention` decide, and — only when asked — execute and verify: deregister,
//! check the image is gone, delete its snapshots. `gc` (`engine::gc`) shares the execution.

use std::time::Duration;

use serde::Serialize;

use crate::events::Stage;
use crate::core::tags;
use super::promote::{pipeline_images, rollback_target, with_home_marks, Images};
use super::sites::{Site, SiteGroup};
use super::wait::{self, Check, WaitError};
use super::Ctx;
use crate::cloud::{CloudError, CloudResult, ErrorKind, Wait};
use crate::core::model::{ImageFilter, Tags};
use crate::core::retention::{decide_prune, PruneFacts, PruneDecision};
use crate::error::{Error, Result};

/// How long to wait for EC2 to stop listing a deregistered image, or to let go of its snapshot
/// (InvalidSnapshot.InUse for a moment after DeregisterImage), or to show a terminated instance going.
const SETTLE: Duration = Duration::from_secs(60);
const SETTLE_POLL: Duration = Duration::from_secs(2);

/// (AMI, why it must stay) for everything a region's groups use or may need to roll back to — the
/// rollback target as `rollback` would choose it, past revoked releases and releases failed in the
/// environment (`images`: the region's, with their marks), so a revoked release is no reason to keep one.
async fn protections(groups: &[SiteGroup], images: &Images) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for SiteGroup { scope: name, ctx, state: g } in groups {
        let mut add = |ami: Option<String>, why: String| {
            if let Some(ami) = ami {
                out.push((ami, why));
            }
        };
        let lt = &g.template.name;
        if let Some(n) = g.current {
            add(g.image_of(n), format!("in use by group {name} (launch-template version {n})"));
            if let (Some(prev), _) = rollback_target(g, images) {
                add(prev.ami.clone(), format!("rollback target of group {name} (version {})", prev.version));
            }
        }
        if let Some(n) = g.default_version() {
            add(g.image_of(n), format!("$Default of launch template {lt} (version {n})"));
        }
        if let Some(n) = g.latest_version() {
            add(g.image_of(n), format!("$Latest of launch template {lt} (version {n})"));
        }
        if let Some(r) = g.active_refresh() {
            let n = r.desired_version.as_deref().and_then(|v| v.parse().ok());
            add(n.and_then(|n| g.image_of(n)), format!("being deployed to group {name} (instance refresh {})", r.id));
        }
        // A mixed instances policy's overrides launch from templates of their own: their images are in use too.
        for o in &g.overrides {
            let image_of = |n: i64| o.versions.iter().find(|v| v.number == n).and_then(|v| v.image_id.clone());
            let id = &o.template.id;
            if let Some(n) = o.current {
                add(image_of(n), format!("in use by group {name} (override template {id} version {n})"));
            }
            for v in o.versions.iter().filter(|v| v.is_default || Some(v.number) == o.versions.iter().map(|v| v.number).max()) {
                add(v.image_id.clone(), format!("$Default/$Latest of override template {id} (version {})", v.number));
            }
        }
        // Warm-pool instances are instances of the group too (stopped ones included); read in the group's
        // own account and region.
        let ids: Vec<String> = g.group.all_instances().map(|i| i.id.clone()).collect();
        let instances = ctx.cloud.ec2.describe_instances(&ids).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
        let mut running: std::collections::BTreeMap<String, usize> = Default::default();
        for i in instances.into_iter().filter(|i| !i.state.is_gone()) {
            *running.entry(i.image_id).or_default() += 1;
        }
        for (ami, n) in running {
            out.push((ami, format!("running on {n} instance{} of group {name}", if n == 1 { "" } else { "s" })));
        }
    }
    Ok(out)
}

/// What `prune` would delete in one region, and the bake account's context there that deletes it.
pub struct RegionPrune {
    /// None: the bake region.
    pub region: Option<String>,
    pub bake: Ctx,
    pub decision: PruneDecision,
}

/// Decides what `prune` would delete in every region: the copy regions first, each on its own groups'
/// needs and its own newest `keep`, then the bake region, where an image stays while a copy of it is
/// kept (the release's marks — verified, failed, revoked — live on it).
pub async fn prune_decision(sites: &[Site], keep: usize) -> Result<Vec<RegionPrune>> {
    let mut out = Vec::new();
    let mut sources: Vec<(String, String)> = Vec::new();
    let (home, copies): (Vec<&Site>, Vec<&Site>) = sites.iter().partition(|s| s.region.is_none());
    // The bake region's images hold every release's marks; a copy is judged by its source's.
    let marks = match home.first() {
        Some(h) => pipeline_images(&h.bake).await?,
        None => Images::default(),
    };
    for site in copies.into_iter().chain(home) {
        let extra = if site.region.is_none() { std::mem::take(&mut sources) } else { Vec::new() };
        let region = prune_region(site, keep, &extra, &marks).await?;
        for kept in &region.decision.keep {
            if let Some(source) = &kept.source {
                sources.push((source.clone(), format!("its copy {}{} is kept", kept.ami, site.label())));
            }
        }
        out.push(region);
    }
    Ok(out)
}

async fn prune_region(site: &Site, keep: usize, extra: &[(String, String)], marks: &Images) -> Result<RegionPrune> {
    let ctx = &site.bake;
    ctx.events.phase("prune", Stage::Read, format!("reading the images of pipeline {}{}", ctx.pipeline.name(), site.label()));
    let unchanged = |e| Error::cloud(e, "nothing was changed");
    let ours = pipeline_tag(ctx);
    let filter = ImageFilter { owners: vec!["self".into()], tags: ours.clone(), ..Default::default() };
    let images = ctx.cloud.ec2.find_images(&filter).await.map_err(unchanged)?;
    // Any image of the account (not only the pipeline's) keeps its snapshots.
    let every = ImageFilter { owners: vec!["self".into()], ..Default::default() };
    let used = ctx.cloud.ec2.find_images(&every).await.map_err(unchanged)?.into_iter().flat_map(|i| i.snapshot_ids).collect();
    let snapshots = ctx.cloud.ec2.find_snapshots(&ours).await.map_err(unchanged)?;
    let by_id: Images = with_home_marks(images.iter().map(|i| (i.id.clone(), i.clone())).collect(), marks);
    let mut protected = protections(&site.groups, &by_id).await?;
    protected.extend(extra.iter().cloned());
    let decision = decide_prune(&PruneFacts {
        images: &images,
        keep_newest: keep,
        protected: &protected,
        commit_tag: tags::COMMIT,
        snapshots: &snapshots,
        used_snapshots: &used,
    })
    .in_region(site.region.clone());
    Ok(RegionPrune { region: site.region.clone(), bake: site.bake.clone(), decision })
}

pub(super) fn pipeline_tag(ctx: &Ctx) -> Tags {
    Tags::from([(tags::PIPELINE.to_string(), ctx.pipeline.name())])
}

/// What executing a plan did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Executed {
    /// Images deregistered, or instances terminated.
    pub done: Vec<String>,
    pub snapshots_deleted: Vec<String>,
    pub errors: Vec<String>,
}

/// Why an execution is not complete: a call that failed, or a change EC2 accepted and did not show.
pub(super) enum Problem {
    Call(CloudError),
    Unsettled(String),
}

impl Problem {
    pub(super) fn into_error(self, state: String) -> Error {
        match self {
            Self::Call(e) => Error::cloud(e, state),
            Self::Unsettled(message) => Error::Unsettled { message, state },
        }
    }
}

/// Waits (every `SETTLE_POLL`, at most `SETTLE`) for a change to show.
pub(super) async fn settle(ctx: &Ctx, what: String, check: impl AsyncFnMut() -> CloudResult<Check<()>>) -> Result<(), Problem> {
    let wait = Wait { what: what.clone(), every: SETTLE_POLL, timeout: SETTLE };
    match wait::until(&*ctx.cloud.clock, &wait, check).await {
        Ok(_) => Ok(()),
        Err(WaitError::Cloud(e)) => Err(Problem::Call(e)),
        Err(WaitError::TimedOut { waited, last }) => Err(Problem::Unsettled(format!("{what}: not settled after {}s ({last})", waited.as_secs()))),
        Err(WaitError::Failed(why)) => Err(Problem::Unsettled(format!("{what}: {why}"))),
    }
}

/// Executes every region's decision (`execute_region`), carrying on past a failure in one; the first
/// problem is returned with what was done everywhere.
pub async fn prune_execute(regions: &[RegionPrune]) -> (Executed, Result<()>) {
    let mut out = Executed::default();
    let mut first: Option<Problem> = None;
    for r in regions {
        if let Some(p) = execute_region(&r.bake, &r.decision, &mut out).await {
            first.get_or_insert(p);
        }
    }
    let state = describe(&out, "image", "deregistered");
    (out, first.map_or(Ok(()), |p| Err(p.into_error(state))))
}

/// Deregisters each image the plan deletes, checks EC2 no longer lists it, then deletes its snapshots;
/// deletes the orphaned snapshots; finally checks EC2 no longer lists any deleted snapshot. Carries on
/// past a failure; returns the first problem.
pub(super) async fn execute_region(ctx: &Ctx, decision: &PruneDecision, out: &mut Executed) -> Option<Problem> {
    let ec2 = &ctx.cloud.ec2;
    // Only this region's deletions are verified here (`out` carries the regions before it).
    let before = out.snapshots_deleted.len();
    let label = decision.region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default();
    let mut first: Option<Problem> = None;
    let mut fail = |out: &mut Executed, p: Problem, what: String| {
        match &p {
            Problem::Call(e) => out.errors.push(format!("{what}: {e}")),
            Problem::Unsettled(m) => out.errors.push(format!("{what}: {m}")),
        }
        first.get_or_insert(p);
    };
    for img in &decision.delete {
        // Protection is turned off only here, on an image about to go: never on one something still needs.
        if img.protected {
            ctx.events.phase("prune", Stage::Deregister, format!("turning off deregistration protection of {} ({}){label}", img.ami, img.name));
            if let Err(e) = ec2.disable_deregistration_protection(&img.ami).await {
                fail(out, Problem::Call(e), format!("{} not deregistered: its protection could not be turned off; its snapshots are kept", img.ami));
                continue;
            }
        }
        ctx.events.phase("prune", Stage::Deregister, format!("deregistering {} ({}){label}", img.ami, img.name));
        if let Err(e) = ec2.deregister_image(&img.ami).await {
            // It stays: so does its protection.
            let back_on = img.protected && ec2.enable_deregistration_protection(&img.ami).await.is_ok();
            let protection = if back_on { "; its deregistration protection is back on" } else { "" };
            fail(out, Problem::Call(e), format!("{} not deregistered; its snapshots are kept{protection}", img.ami));
            continue;
        }
        let filter = ImageFilter { ids: vec![img.ami.clone()], ..Default::default() };
        let gone = settle(ctx, format!("EC2 to stop listing {} before deleting its snapshots", img.ami), async || {
            match ec2.find_images(&filter).await {
                Ok(found) if found.is_empty() => Ok(Check::Ready(())),
                Ok(found) => Ok(Check::NotYet(format!("still listed as {:?}", found[0].state))),
                Err(e) if e.kind == ErrorKind::NotFound => Ok(Check::Ready(())),
                Err(e) => Err(e),
            }
        })
        .await;
        match gone {
            Ok(()) => out.done.push(img.ami.clone()),
            Err(p) => {
                fail(out, p, format!("{} still listed after deregistering; its snapshots are kept", img.ami));
                continue;
            }
        }
        for snap in &img.snapshots {
            // EC2 answers InvalidSnapshot.InUse for a moment after DeregisterImage: retry until it lets go.
            let deleted = settle(ctx, format!("DeleteSnapshot {snap} to be accepted (the image lets go of it)"), async || {
                match ec2.delete_snapshot(snap).await {
                    Ok(()) => Ok(Check::Ready(())),
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(Check::Ready(())),
                    Err(e) if e.is("InvalidSnapshot.InUse") => Ok(Check::NotYet(e.to_string())),
                    Err(e) => Err(e),
                }
            })
            .await;
            match deleted {
                Ok(()) => out.snapshots_deleted.push(snap.clone()),
                Err(p) => fail(out, p, format!("snapshot {snap} of {} not deleted", img.ami)),
            }
        }
    }
    for snap in &decision.orphan_snapshots {
        ctx.events.phase("prune", Stage::Snapshot, format!("deleting snapshot {snap}{label}, whose image is gone"));
        match ec2.delete_snapshot(snap).await {
            Ok(()) => out.snapshots_deleted.push(snap.clone()),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            // An image registered from it since the plan was made: it is not junk any more.
            Err(e) if e.is("InvalidSnapshot.InUse") => ctx.events.info("prune", format!("snapshot {snap} is in use again; kept")),
            Err(e) => fail(out, Problem::Call(e), format!("orphaned snapshot {snap} not deleted")),
        }
    }
    let deleted_here: Vec<String> = out.snapshots_deleted[before..].to_vec();
    if !deleted_here.is_empty() {
        match ec2.find_snapshots(&pipeline_tag(ctx)).await {
            Ok(left) => {
                let still: Vec<String> = left.into_iter().map(|s| s.id).filter(|id| deleted_here.contains(id)).collect();
                for id in still {
                    let p = Problem::Unsettled(format!("snapshot {id} is still listed after DeleteSnapshot"));
                    fail(out, p, format!("snapshot {id} not verified deleted"));
                }
            }
            Err(e) => fail(out, Problem::Call(e), "deleted snapshots not verified".into()),
        }
    }
    first
}

pub(super) fn describe(out: &Executed, what: &str, verb: &str) -> String {
    let done = if out.done.is_empty() { format!("no {what} {verb}") } else { format!("{verb}: {}", out.done.join(", ")) };
    let snaps = if out.snapshots_deleted.is_empty() { String::new() } else { format!("; snapshots deleted: {}", out.snapshots_deleted.join(", ")) };
    format!("{done}{snaps}; not done: {}", out.errors.join("; "))
}

//! Bake: produce the AMI for one commit. Reuses an image already named for the commit (a retried job
//! neither fails nor duplicates), else launches and provisions a build instance (or images an existing
//! one), waits for readiness, creates and tags the image and its snapshots, waits for `available`, and
//! terminates the build instance on every exit path.

use std::time::Duration;

use serde::Serialize;

use super::images::{self, ami_name, CommitImage};
use super::wait::{Check, Poller, WaitError, Waited};
use super::Ctx;
use crate::events::Stage;
use crate::cloud::{CloudError, CloudResult, ErrorKind, Wait};
use crate::config::Ready;
use crate::core::model::{Image, ImageFilter, ImageState, InstanceState, LaunchSpec, Tags};
use crate::core::tags;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct BakeRequest {
    pub commit: String,
    /// Image this existing instance instead of launching one (never terminated by bakeroll).
    pub build_instance: Option<String>,
    /// Extra tags for the image and snapshots only (e.g. test markers).
    pub extra_tags: Tags,
    /// CI provenance (pipeline/job ids and URLs), tagged on image and snapshots.
    pub provenance: Tags,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Baked {
    pub ami_id: String,
    pub ami_name: String,
    pub commit: String,
    pub reused: bool,
    pub source: String,
    pub snapshot_ids: Vec<String>,
    pub build_instance: Option<String>,
}

/// Runs a bake and then its cleanup, whatever happened; the cleanup report becomes the error's state.
pub async fn bake(ctx: &Ctx, req: &BakeRequest) -> Result<Baked> {
    let result = bake_inner(ctx, req).await;
    let report = ctx.ledger.clean_bake(&ctx.cloud).await;
    for t in &report.terminated {
        ctx.events.info("bake", format!("terminated build instance {t}"));
    }
    match result {
        Ok(baked) => {
            for e in &report.errors {
                ctx.events.warn("bake", e.clone());
            }
            Ok(baked)
        }
        Err(mut err) => {
            // What cleanup did is what is true now; a precondition error keeps its "nothing was changed".
            let precondition = matches!(err, Error::Precondition { .. });
            if let (Some(state), false) = (err.state_mut(), precondition) {
                *state = report.describe();
                if let Some(id) = req.build_instance.as_ref().or(ctx.pipeline.pipeline.bake.build_instance.as_ref()) {
                    state.push_str(&format!("; build instance {id} (given, not bakeroll's) is left as it was"));
                }
            }
            Err(err)
        }
    }
}

/// The state of an error raised inside the bake: `bake` replaces it with what cleanup did.
const AFTER_CLEANUP: &str = "(replaced by the cleanup report)";

fn bake_error(name: &str, message: impl Into<String>, source: Option<CloudError>) -> Error {
    Error::Bake { ami_name: name.into(), message: message.into(), state: AFTER_CLEANUP.into(), source }
}

async fn bake_inner(ctx: &Ctx, req: &BakeRequest) -> Result<Baked> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let name = ami_name(&cfg.ami_name, &req.commit);
    let ev = &ctx.events;
    ev.phase("bake", Stage::Lookup, format!("looking for an existing image named {name}"));
    if let Some(image) = existing(ctx, &req.commit).await.map_err(|e| Error::cloud(e, "nothing was changed"))?? {
        // A run killed after CreateImage left its build instance: this run terminates it.
        left_behind(ctx, req, None).await?;
        return reuse(ctx, &name, image, req).await;
    }

    let build_instance = req.build_instance.clone().or_else(|| cfg.build_instance.clone());
    let (instance_id, source, launched) = match build_instance {
        Some(id) => (existing_instance(ctx, &id).await?, format!("instance:{id}"), false),
        None => {
            let base = resolve_base(ctx).await?;
            let id = match left_behind(ctx, req, Some(&base)).await? {
                Some(id) => id,
                None => launch(ctx, req, &name, &base).await?,
            };
            (id, base, true)
        }
    };
    if launched {
        wait_ready(ctx, &name, &instance_id).await?;
    }

    let mut tags = provenance_tags(ctx, req, &source);
    tags.extend(req.extra_tags.clone());
    let stopped = launched || is_stopped(ctx, &instance_id).await?;
    ev.phase("bake", Stage::CreateImage, format!("creating image {name} from {instance_id}"));
    let description = format!("bakeroll {} commit {}", ctx.pipeline.name(), req.commit);
    let creating = ctx.ledger.creating();
    let created = ctx.cloud.ec2.create_image(&instance_id, &name, &description, stopped, &tags).await;
    if let Ok(id) = &created {
        ctx.ledger.unfinished_image(id);
    }
    drop(creating);
    let ami_id = match created {
        Ok(id) => id,
        // Another job baked the same commit a moment ago: theirs is ours.
        Err(e) if e.is("InvalidAMIName.Duplicate") => {
            let found = existing(ctx, &req.commit).await.map_err(|e| Error::cloud(e, AFTER_CLEANUP))??;
            let image = found.ok_or_else(|| bake_error(&name, "name taken but image not found", Some(e)))?;
            return reuse(ctx, &name, image, req).await;
        }
        Err(e) => return Err(Error::cloud(e, AFTER_CLEANUP)),
    };
    let image = wait_available(ctx, &name, &ami_id).await?;
    ctx.ledger.image_snapshots(&ami_id, &image.snapshot_ids);
    if !image.snapshot_ids.is_empty() {
        ev.phase("bake", Stage::Tag, format!("tagging snapshots {}", image.snapshot_ids.join(", ")));
        ctx.cloud.ec2.create_tags(&image.snapshot_ids, &tags).await.map_err(|e| Error::cloud(e, AFTER_CLEANUP))?;
    }
    ctx.ledger.image_done(&ami_id);
    ev.info("bake", format!("image {ami_id} ({name}) is available"));
    Ok(Baked {
        ami_id,
        ami_name: name,
        commit: req.commit.clone(),
        reused: false,
        source,
        snapshot_ids: image.snapshot_ids,
        build_instance: Some(instance_id),
    })
}

/// The image this pipeline baked for the commit earlier, if any; an image of that name baked by
/// someone else is refused (its name blocks ours, and it is not our release).
async fn existing(ctx: &Ctx, commit: &str) -> CloudResult<Result<Option<Image>>> {
    Ok(match images::for_commit(ctx, commit).await? {
        CommitImage::None { .. } => Ok(None),
        CommitImage::Ours(image) => Ok(Some(image)),
        CommitImage::Foreign { name, image } => Err(Error::precondition(format!(
            "an image named {name} ({}) exists but was not baked by pipeline {} (its {} tag is {:?}); change bake.ami_name, or deregister it",
            image.id,
            ctx.pipeline.name(),
            tags::PIPELINE,
            image.tags.get(tags::PIPELINE)
        ))),
    })
}

async fn reuse(ctx: &Ctx, name: &str, image: Image, req: &BakeRequest) -> Result<Baked> {
    let image = match image.state {
        ImageState::Available => image,
        ImageState::Pending => {
            ctx.events.info("bake", format!("image {} ({name}) exists and is pending; waiting for it", image.id));
            wait_available(ctx, name, &image.id).await?
        }
        other => {
            return Err(Error::precondition(format!(
                "image {} named {name} exists in state {other:?}; deregister it (bakeroll prune) or bake another commit",
                image.id
            )))
        }
    };
    ctx.events.info("bake", format!("reusing image {} ({name}) baked earlier for this commit", image.id));
    Ok(Baked {
        source: image.tags.get(tags::SOURCE_AMI).cloned().unwrap_or_default(),
        ami_id: image.id,
        ami_name: name.into(),
        commit: req.commit.clone(),
        reused: true,
        snapshot_ids: image.snapshot_ids,
        build_instance: None,
    })
}

async fn existing_instance(ctx: &Ctx, id: &str) -> Result<String> {
    let found = ctx.cloud.ec2.describe_instances(&[id.to_string()]).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    match found.first() {
        Some(i) if !i.state.is_gone() => Ok(i.id.clone()),
        Some(i) => Err(Error::precondition(format!("build instance {id} is {:?}; it cannot be imaged", i.state))),
        None => Err(Error::precondition(format!(
            "build instance {id} not found{}; check --build-instance or bake.build_instance",
            ctx.pipeline.region_hint()
        ))),
    }
}

async fn is_stopped(ctx: &Ctx, id: &str) -> Result<bool> {
    let found = ctx.cloud.ec2.describe_instances(&[id.to_string()]).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    Ok(found.first().is_some_and(|i| i.state == InstanceState::Stopped))
}

/// The base image: `base_ami` as given (must exist and be available), or the newest match of the filter.
async fn resolve_base(ctx: &Ctx) -> Result<String> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let (filter, what) = match (&cfg.base_ami, &cfg.base_ami_filter) {
        (Some(id), _) => (ImageFilter { ids: vec![id.clone()], ..Default::default() }, format!("bake.base_ami {id}")),
        (None, Some(f)) => (
            ImageFilter { owners: f.owners.clone(), name: Some(f.name.clone()), ..Default::default() },
            format!("bake.base_ami_filter (owners {:?}, name {})", f.owners, f.name),
        ),
        (None, None) => {
            return Err(Error::precondition(
                "nothing to bake from: set one of bake.base_ami, bake.base_ami_filter, bake.build_instance, or pass --build-instance",
            ))
        }
    };
    let images = match ctx.cloud.ec2.find_images(&filter).await {
        Ok(images) => images,
        Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::cloud(e, "nothing was changed")),
    };
    let newest = images
        .into_iter()
        .filter(|i| i.state == ImageState::Available)
        // Ties (same creation time) break on the name, then the id, so the pick is reproducible.
        .max_by(|a, b| (&a.creation_date, &a.name, &a.id).cmp(&(&b.creation_date, &b.name, &b.id)))
        .ok_or_else(|| Error::precondition(format!("{what} matches no available image{}", ctx.pipeline.region_hint())))?;
    ctx.events.info("bake", format!("base image {} ({})", newest.id, newest.name));
    Ok(newest.id)
}

/// A build instance an earlier run of this bake launched and left behind (killed before its cleanup):
/// found by its tags (role, pipeline, commit). One launched from today's base image is reused — its
/// provisioning goes on, or is already done; any other is terminated. Either way it is this run's to
/// clean up now, so `gc`'s age limit never has to find it.
async fn left_behind(ctx: &Ctx, req: &BakeRequest, base: Option<&str>) -> Result<Option<String>> {
    let wanted = Tags::from([
        (tags::ROLE.to_string(), tags::ROLE_BUILD.to_string()),
        (tags::PIPELINE.to_string(), ctx.pipeline.name()),
        (tags::COMMIT.to_string(), req.commit.clone()),
    ]);
    // Only an economy (gc finds whatever this misses): a failed lookup never fails the bake.
    let found = match ctx.cloud.ec2.find_instances(&wanted).await {
        Ok(found) => found,
        Err(e) => {
            ctx.events.warn("bake", format!("could not look for build instances an earlier run left behind: {e}"));
            return Ok(None);
        }
    };
    let mut reused = None;
    for i in found.into_iter().filter(|i| !i.state.is_gone()) {
        ctx.ledger.build_instance(&i.id);
        if reused.is_none() && Some(i.image_id.as_str()) == base {
            ctx.events.info("bake", format!("reusing build instance {} ({:?}) that an earlier run for this commit left behind", i.id, i.state));
            reused = Some(i.id);
        } else {
            ctx.events.info("bake", format!("build instance {} left behind by an earlier run (from {}) will be terminated", i.id, i.image_id));
        }
    }
    Ok(reused)
}

async fn launch(ctx: &Ctx, req: &BakeRequest, name: &str, base: &str) -> Result<String> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let user_data = match &cfg.user_data {
        Some(path) => {
            let full = ctx.pipeline.base_dir().join(path);
            Some(std::fs::read_to_string(&full).map_err(|e| {
                Error::precondition(format!(
                    "bake.user_data: cannot read {}: {e}; the path is relative to the repository root (the pipeline file's directory, or its parent for pipeline/)",
                    full.display()
                ))
            })?)
        }
        None => None,
    };
    let mut tags = cfg.tags.clone();
    tags.insert(tags::ROLE.into(), tags::ROLE_BUILD.into());
    tags.insert(tags::PIPELINE.into(), ctx.pipeline.name());
    tags.insert(tags::COMMIT.into(), req.commit.clone());
    tags.insert(tags::CREATED_BY.into(), "bakeroll".into());
    tags.insert("Name".into(), format!("bakeroll-build {name}"));
    let spec = LaunchSpec {
        image_id: base.into(),
        instance_type: cfg.instance_type.clone(),
        subnet_id: cfg.subnet_id.clone(),
        security_group_ids: cfg.security_group_ids.clone(),
        iam_instance_profile: cfg.iam_instance_profile.clone(),
        user_data,
        tags,
    };
    ctx.events.phase("bake", Stage::Launch, format!("launching a {} build instance from {base}", cfg.instance_type));
    let creating = ctx.ledger.creating();
    let instance = ctx.cloud.ec2.launch_instance(&spec).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    ctx.ledger.build_instance(&instance.id);
    drop(creating);
    ctx.events.info("bake", format!("build instance {} launched", instance.id));
    Ok(instance.id)
}

/// Waits until the build instance says provisioning is done; on failure shows its console tail.
async fn wait_ready(ctx: &Ctx, name: &str, id: &str) -> Result<()> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let ready = cfg.ready;
    ctx.events.phase("bake", Stage::Provision, format!("waiting for {id} {ready}"));
    let what = format!("for build instance {id} {ready}; on failure or timeout, show its console output");
    let wait = Wait { what, every: cfg.poll_interval.0, timeout: cfg.timeout.0 };
    let ids = [id.to_string()];
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let result = loop {
        let seen = check_ready(ctx, &ids, ready).await;
        if let Some(ended) = poller.after(seen).await {
            break ended;
        }
    };
    let Err(e) = result else { return Ok(()) };
    let console = ctx.cloud.ec2.console_output(id).await.unwrap_or_else(|e| format!("(console output unavailable: {e})"));
    let tail: Vec<&str> = console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    ctx.events.detail("bake", format!("console output of {id} (last {} lines)", tail.len()), tail.join("\n"));
    Err(match e {
        WaitError::TimedOut { waited, last } => bake_error(
            name,
            format!("build instance {id} not ready after {}s (bake.timeout; last seen: {last}); its console output is shown above", waited.as_secs()),
            None,
        ),
        WaitError::Cloud(e) if e.kind == ErrorKind::Denied => Error::cloud(e, AFTER_CLEANUP),
        WaitError::Cloud(e) => bake_error(name, format!("provisioning of {id} could not be checked; its console output is shown above"), Some(e)),
        WaitError::Failed(why) => bake_error(name, format!("provisioning of {id} failed ({why}); its console output is shown above"), None),
    })
}

/// One look at the build instance: is provisioning done (as `ready` says it shows), or over?
async fn check_ready(ctx: &Ctx, ids: &[String; 1], ready: Ready) -> CloudResult<Check<()>> {
    let id = &ids[0];
    let inst = ctx.cloud.ec2.describe_instances(ids).await?;
    let Some(inst) = inst.first() else { return Ok(Check::NotYet("not visible yet".into())) };
    if inst.state.is_gone() {
        return Ok(Check::Failed(format!("build instance {id} is {:?}", inst.state)));
    }
    Ok(match ready {
        Ready::Stopped if inst.state == InstanceState::Stopped => Check::Ready(()),
        Ready::StatusOk if ctx.cloud.ec2.instance_status_ok(id).await? == Some(true) => Check::Ready(()),
        Ready::Tag => match inst.tags.get(tags::READY).map(String::as_str) {
            Some("ok") => Check::Ready(()),
            Some("failed") => Check::Failed(format!("{id} tagged {}=failed", tags::READY)),
            _ => Check::NotYet(format!("{:?}, no {} tag", inst.state, tags::READY)),
        },
        _ => Check::NotYet(format!("{:?}", inst.state)),
    })
}

/// Waits for the new image to be available. A clock that does not wait hands back the image as last seen.
async fn wait_available(ctx: &Ctx, name: &str, ami: &str) -> Result<Image> {
    let cfg = &ctx.pipeline.pipeline.bake;
    ctx.events.phase("bake", Stage::WaitImage, format!("waiting for {ami} to become available"));
    let filter = ImageFilter { ids: vec![ami.to_string()], ..Default::default() };
    // Images take minutes; polling faster than the configured bake interval buys nothing.
    let every = cfg.poll_interval.0.max(Duration::from_millis(100));
    let what = format!("until image {ami} is available; if it fails, deregister it");
    let wait = Wait { what, every, timeout: cfg.image_timeout.0 };
    let mut seen: Option<Image> = None;
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let result = loop {
        let check = match ctx.cloud.ec2.find_images(&filter).await {
            Ok(found) => Ok(match found.into_iter().next() {
                None => Check::NotYet("not visible yet".into()),
                Some(i) => {
                    seen = Some(i.clone());
                    match i.state {
                        ImageState::Available => Check::Ready(i),
                        ImageState::Failed | ImageState::Deregistered => Check::Failed(format!(
                            "image {ami} is {:?}{}",
                            i.state,
                            i.state_reason.map(|r| format!(": {r}")).unwrap_or_default()
                        )),
                        other => Check::NotYet(format!("{other:?}")),
                    }
                }
            }),
            Err(e) => Err(e),
        };
        if let Some(ended) = poller.after(check).await {
            break ended;
        }
    };
    match result {
        Ok(Waited::Ready(image)) => Ok(image),
        Ok(Waited::Unobserved { last }) => seen.ok_or_else(|| bake_error(name, format!("image {ami} not found ({last})"), None)),
        Err(WaitError::TimedOut { waited, last }) => {
            Err(bake_error(name, format!("image {ami} not done after {}s (last seen: {last})", waited.as_secs()), None))
        }
        Err(WaitError::Failed(why)) => Err(bake_error(name, format!("image {ami} did not become available: {why}"), None)),
        Err(WaitError::Cloud(e)) if e.kind == ErrorKind::Denied => Err(Error::cloud(e, AFTER_CLEANUP)),
        Err(WaitError::Cloud(e)) => Err(bake_error(name, format!("image {ami} did not become available"), Some(e))),
    }
}

fn provenance_tags(ctx: &Ctx, req: &BakeRequest, source: &str) -> Tags {
    let mut t = ctx.pipeline.pipeline.bake.tags.clone();
    t.insert(tags::COMMIT.into(), req.commit.clone());
    t.insert(tags::PIPELINE.into(), ctx.pipeline.name());
    t.insert(tags::CREATED_BY.into(), format!("bakeroll {}", env!("CARGO_PKG_VERSION")));
    t.insert(tags::SOURCE_AMI.into(), source.into());
    t.extend(req.provenance.clone());
    t
}

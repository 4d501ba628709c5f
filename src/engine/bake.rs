//! Bake: produce the AMI for one commit. Reuses an image already named for the commit (a retried job
//! neither fails nor duplicates), else launches and provisions a build instance (or images an existing
//! one), waits for readiness, creates and tags the image and its snapshots, waits for `available`, and
//! terminates the build instance on every exit path.

use std::time::Duration;

use serde::Serialize;

use super::wait::{poll_until, Check, PollError};
use super::Ctx;
use crate::cloud::CloudError;
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

/// `shop-{commit}` → `shop-0123abcd…`; `{short_commit}` is the first 12 characters.
pub fn ami_name(template: &str, commit: &str) -> String {
    let short: String = commit.chars().take(12).collect();
    template.replace("{commit}", commit).replace("{short_commit}", &short)
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
            let described = report.describe();
            match &mut err {
                Error::Bake { state, .. } | Error::Denied { state, .. } | Error::Cloud { state, .. }
                    if !report.is_empty() =>
                {
                    *state = described;
                }
                _ => {}
            }
            Err(err)
        }
    }
}

fn bake_error(name: &str, message: impl Into<String>, source: Option<CloudError>) -> Error {
    Error::Bake { ami_name: name.into(), message: message.into(), state: "nothing was left behind".into(), source }
}

fn from_poll(name: &str, what: &str, e: PollError) -> Error {
    match e {
        PollError::TimedOut { waited, last } => {
            bake_error(name, format!("{what} not done after {}s (last seen: {last})", waited.as_secs()), None)
        }
        PollError::Failed(e) => Error::cloud(e, "see below"),
    }
}

async fn bake_inner(ctx: &Ctx, req: &BakeRequest) -> Result<Baked> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let name = ami_name(&cfg.ami_name, &req.commit);
    let ev = &ctx.events;
    ev.phase("bake", "lookup", format!("looking for an existing image named {name}"));
    let filter = ImageFilter { owners: vec!["self".into()], name: Some(name.clone()), ..Default::default() };
    let existing = ctx.cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    if let Some(image) = existing.into_iter().find(|i| i.name == name) {
        return reuse(ctx, &name, image, req).await;
    }

    let build_instance = req.build_instance.clone().or_else(|| cfg.build_instance.clone());
    let (instance_id, source, launched) = match build_instance {
        Some(id) => (existing_instance(ctx, &id).await?, format!("instance:{id}"), false),
        None => {
            let base = resolve_base(ctx).await?;
            let id = launch(ctx, req, &name, &base).await?;
            (id, base, true)
        }
    };
    if launched {
        wait_ready(ctx, &name, &instance_id).await?;
    }

    let mut tags = provenance_tags(ctx, req, &source);
    tags.extend(req.extra_tags.clone());
    let stopped = launched || is_stopped(ctx, &instance_id).await?;
    ev.phase("bake", "create-image", format!("creating image {name} from {instance_id}"));
    let description = format!("bakeroll {} commit {}", ctx.pipeline.name(), req.commit);
    let ami_id = match ctx.cloud.ec2.create_image(&instance_id, &name, &description, stopped, &tags).await {
        Ok(id) => id,
        // Another job baked the same commit a moment ago: theirs is ours.
        Err(e) if e.is("InvalidAMIName.Duplicate") => {
            let found = ctx.cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, "see below"))?;
            let image = found.into_iter().find(|i| i.name == name).ok_or_else(|| bake_error(&name, "name taken but image not found", Some(e)))?;
            return reuse(ctx, &name, image, req).await;
        }
        Err(e) => return Err(Error::cloud(e, "see below")),
    };
    ctx.ledger.unfinished_image(&ami_id);
    let image = wait_available(ctx, &name, &ami_id).await?;
    ctx.ledger.image_snapshots(&ami_id, &image.snapshot_ids);
    if !image.snapshot_ids.is_empty() {
        ev.phase("bake", "tag", format!("tagging snapshots {}", image.snapshot_ids.join(", ")));
        ctx.cloud.ec2.create_tags(&image.snapshot_ids, &tags).await.map_err(|e| Error::cloud(e, "see below"))?;
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
        None => Err(Error::precondition(format!("build instance {id} not found"))),
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
        Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::cloud(e, "nothing was changed")),
    };
    let newest = images
        .into_iter()
        .filter(|i| i.state == ImageState::Available)
        // Ties (same creation time) break on the name, then the id, so the pick is reproducible.
        .max_by(|a, b| (&a.creation_date, &a.name, &a.id).cmp(&(&b.creation_date, &b.name, &b.id)))
        .ok_or_else(|| Error::precondition(format!("{what} matches no available image")))?;
    ctx.events.info("bake", format!("base image {} ({})", newest.id, newest.name));
    Ok(newest.id)
}

async fn launch(ctx: &Ctx, req: &BakeRequest, name: &str, base: &str) -> Result<String> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let user_data = match &cfg.user_data {
        Some(path) => {
            let full = ctx.pipeline.base_dir().join(path);
            Some(std::fs::read_to_string(&full).map_err(|e| {
                Error::precondition(format!("bake.user_data: cannot read {}: {e}", full.display()))
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
    ctx.events.phase("bake", "launch", format!("launching a {} build instance from {base}", cfg.instance_type));
    let instance = ctx.cloud.ec2.launch_instance(&spec).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    ctx.ledger.build_instance(&instance.id);
    ctx.events.info("bake", format!("build instance {} launched", instance.id));
    Ok(instance.id)
}

/// Waits until the build instance says provisioning is done; on failure shows its console tail.
async fn wait_ready(ctx: &Ctx, name: &str, id: &str) -> Result<()> {
    let cfg = &ctx.pipeline.pipeline.bake;
    let ready = cfg.ready;
    ctx.events.phase("bake", "provision", format!("waiting for {id} {ready}"));
    if let Some(plan) = &ctx.plan {
        let what = format!("for build instance {id} {ready}; on failure or timeout, show its console output");
        plan.wait(what, cfg.poll_interval.0, cfg.timeout.0);
        return Ok(());
    }
    let ids = [id.to_string()];
    let result = poll_until(cfg.poll_interval.0, cfg.timeout.0, async || {
        let inst = ctx.cloud.ec2.describe_instances(&ids).await?;
        let Some(inst) = inst.first() else { return Ok(Check::NotYet("not visible yet".into())) };
        if inst.state.is_gone() {
            return Err(CloudError::with_kind("ec2:DescribeInstances", crate::cloud::ErrorKind::Other, Some("BuildInstanceGone"), format!("build instance {id} is {:?}", inst.state)));
        }
        match ready {
            Ready::Stopped if inst.state == InstanceState::Stopped => Ok(Check::Ready(())),
            Ready::StatusOk if ctx.cloud.ec2.instance_status_ok(id).await? == Some(true) => Ok(Check::Ready(())),
            Ready::Tag => match inst.tags.get(tags::READY).map(String::as_str) {
                Some("ok") => Ok(Check::Ready(())),
                Some("failed") => Err(CloudError::with_kind("ec2:DescribeInstances", crate::cloud::ErrorKind::Other, Some("ProvisioningFailed"), format!("{id} tagged {}=failed", tags::READY))),
                _ => Ok(Check::NotYet(format!("{:?}, no {} tag", inst.state, tags::READY))),
            },
            _ => Ok(Check::NotYet(format!("{:?}", inst.state))),
        }
    })
    .await;
    let Err(e) = result else { return Ok(()) };
    let console = ctx.cloud.ec2.console_output(id).await.unwrap_or_else(|e| format!("(console output unavailable: {e})"));
    let tail: Vec<&str> = console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    ctx.events.detail("bake", format!("console output of {id} (last {} lines)", tail.len()), tail.join("\n"));
    Err(match e {
        PollError::TimedOut { waited, last } => bake_error(
            name,
            format!("build instance {id} not ready after {}s (bake.timeout; last seen: {last}); its console output is shown above", waited.as_secs()),
            None,
        ),
        PollError::Failed(e) if e.kind == crate::cloud::ErrorKind::Denied => Error::cloud(e, "see below"),
        PollError::Failed(e) => bake_error(name, format!("provisioning of {id} failed; its console output is shown above"), Some(e)),
    })
}

async fn wait_available(ctx: &Ctx, name: &str, ami: &str) -> Result<Image> {
    let cfg = &ctx.pipeline.pipeline.bake;
    ctx.events.phase("bake", "wait-image", format!("waiting for {ami} to become available"));
    let filter = ImageFilter { ids: vec![ami.to_string()], ..Default::default() };
    // Images take minutes; polling faster than the configured bake interval buys nothing.
    let every = cfg.poll_interval.0.max(Duration::from_millis(100));
    if let Some(plan) = &ctx.plan {
        plan.wait(format!("until image {ami} is available; if it fails, deregister it"), every, cfg.image_timeout.0);
        // The plan's own record of the image (a planned one), or the real image being reused.
        let found = ctx.cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
        return found.into_iter().next().ok_or_else(|| bake_error(name, format!("image {ami} not found"), None));
    }
    poll_until(every, cfg.image_timeout.0, async || {
        let found = ctx.cloud.ec2.find_images(&filter).await?;
        match found.into_iter().next() {
            Some(i) if i.state == ImageState::Available => Ok(Check::Ready(i)),
            Some(i) if matches!(i.state, ImageState::Failed | ImageState::Deregistered) => Err(CloudError::with_kind(
                "ec2:DescribeImages",
                crate::cloud::ErrorKind::Other,
                Some("ImageFailed"),
                format!("image {ami} is {:?}{}", i.state, i.state_reason.map(|r| format!(": {r}")).unwrap_or_default()),
            )),
            Some(i) => Ok(Check::NotYet(format!("{:?}", i.state))),
            None => Ok(Check::NotYet("not visible yet".into())),
        }
    })
    .await
    .map_err(|e| match e {
        PollError::Failed(e) if e.kind != crate::cloud::ErrorKind::Denied => {
            bake_error(name, format!("image {ami} did not become available"), Some(e))
        }
        other => from_poll(name, &format!("image {ami}"), other),
    })
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

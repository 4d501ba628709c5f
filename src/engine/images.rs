//! The pipeline's images, each question answered once: "the image of a commit" (found by its unique
//! name, and baked by this pipeline: the `bakeroll:pipeline` tag), used by bake, deploy and rollback;
//! `deploy --commit` and rollback; and "what state is this AMI in", used wherever an image must be available before it is used.

use super::Ctx;
use crate::cloud::{CloudResult, ErrorKind};
use crate::core::model::{Image, ImageFilter, ImageState};
use crate::core::tags;
use crate::error::{Error, Result};

/// What carries the commit's image name.
#[derive(Debug)]
pub enum CommitImage {
    /// None of this account's images has the name.
    None { name: String },
    /// The image this pipeline baked for the commit (in any state).
    Ours(Image),
    /// An image of this account has the name but another pipeline (or nobody) baked it: the name is
    /// taken, and the image is not ours to deploy.
    Foreign { name: String, image: Image },
}

/// `shop-{commit}` → `shop-0123abcd…`; `{short_commit}` is the first 12 characters.
pub fn ami_name(template: &str, commit: &str) -> String {
    let short: String = commit.chars().take(12).collect();
    template.replace("{commit}", commit).replace("{short_commit}", &short)
}

/// The image baked for `commit` by this pipeline.
pub async fn for_commit(ctx: &Ctx, commit: &str) -> CloudResult<CommitImage> {
    let name = ami_name(&ctx.pipeline.pipeline.bake.ami_name, commit);
    let filter = ImageFilter { owners: vec!["self".into()], name: Some(name.clone()), ..Default::default() };
    let found = ctx.cloud.ec2.find_images(&filter).await?;
    // The name filter takes wildcards; only the exact name is the commit's.
    let Some(image) = found.into_iter().find(|i| i.name == name) else { return Ok(CommitImage::None { name }) };
    if image.tags.get(tags::PIPELINE) == Some(&ctx.pipeline.name()) {
        Ok(CommitImage::Ours(image))
    } else {
        Ok(CommitImage::Foreign { name, image })
    }
}

/// The AMI this pipeline baked for `commit`.
pub async fn ami_of_commit(ctx: &Ctx, commit: &str) -> Result<String> {
    let pipeline = ctx.pipeline.name();
    match for_commit(ctx, commit).await.map_err(|e| Error::cloud(e, "nothing was changed"))? {
        CommitImage::Ours(i) => Ok(i.id),
        CommitImage::None { name } => Err(Error::precondition(format!(
            "no image baked for commit {commit} (looked for an AMI named {name}{}); run `bakeroll bake --commit {commit}`",
            ctx.pipeline.region_hint()
        ))),
        CommitImage::Foreign { name, image } => Err(Error::precondition(format!(
            "AMI {} is named {name} but was not baked by pipeline {pipeline}; deploy it with --ami if it is really this commit's",
            image.id
        ))),
    }
}

/// The image with this id, as EC2 describes it; None when EC2 does not know it (never existed, or
/// deregistered: DescribeImages cannot tell the two apart).
pub async fn by_id(ctx: &Ctx, ami: &str) -> CloudResult<Option<Image>> {
    let filter = ImageFilter { ids: vec![ami.to_string()], ..Default::default() };
    match ctx.cloud.ec2.find_images(&filter).await {
        Ok(found) => Ok(found.into_iter().find(|i| i.id == ami)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The image must exist and be available: a pending image cannot launch yet, a deregistered one never
/// again. `what` says what the image is to the user ("release c0ffee1 (version 3) of shop-web"); the
/// error (exit 2, nothing changed) names the image, its state and the fix.
pub async fn require_available(ctx: &Ctx, ami: &str, what: &str) -> Result<Image> {
    let found = by_id(ctx, ami).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    match found {
        Some(i) if i.state == ImageState::Available => Ok(i),
        Some(i) => Err(Error::precondition(format!("{what}: AMI {ami} is {}, not available", state_name(&i.state)))),
        // DescribeImages cannot tell a deregistered image from one that never existed.
        None => Err(Error::precondition(format!(
            "{what}: AMI {ami} not found{} — deregistered (pruned?), never existed, or not this account's; `bakeroll history` lists the releases",
            ctx.pipeline.region_hint()
        ))),
    }
}

/// An image state as EC2 spells it.
fn state_name(state: &ImageState) -> &str {
    match state {
        ImageState::Pending => "pending",
        ImageState::Available => "available",
        ImageState::Failed => "failed",
        ImageState::Deregistered => "deregistered",
        ImageState::Other(s) => s,
    }
}

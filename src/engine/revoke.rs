//! `revoke`: a release of this pipeline declared bad — `bakeroll:revoked` = when and why on its image, so
//! that deploy and ship refuse it and `rollback` steps over it — or declared good again (`--restore`).
//! The release is named as `rollback --to` names one, by commit (or a prefix of 7+) or AMI id, and found
//! among the pipeline's images; each write is read back until EC2 shows it.

use std::time::Duration;

use serde::Serialize;

use super::images;
use super::promote::{self, Images};
use super::wait::{self, Check, WaitError};
use super::Ctx;
use crate::cloud::Wait;
use crate::core::model::{Image, Tags};
use crate::core::promotion::{revoked_value, ImageMarks, Revocation};
use crate::core::releases::TargetSpec;
use crate::core::tags;
use crate::error::{Error, Result};
use crate::events::Stage;

/// EC2 tags are eventually consistent: how long a written tag may take to show, and how often to look.
const SETTLE: Duration = Duration::from_secs(60);
const SETTLE_POLL: Duration = Duration::from_secs(2);

/// The most characters of a reason: the tag value holds 256, the time and a space take 21.
pub const REASON_MAX: usize = 235;

/// What `revoke` did (the JSON summary's keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revoked {
    pub ami: String,
    pub commit: Option<String>,
    /// The revocation on the image now (None after `--restore`).
    pub revoked: Option<Revocation>,
    /// The revocation it carried before (a second `revoke` replaces the reason; `--restore` removes it).
    pub was: Option<Revocation>,
    /// The image's marks now.
    pub marks: ImageMarks,
}

/// The pipeline's image `spec` names: by AMI id, or by the commit it was baked for (a prefix of 7 or more
/// characters, when only one commit matches). Unknown, ambiguous, or not this pipeline's: exit 2.
pub async fn find(ctx: &Ctx, spec: &TargetSpec, given: &str) -> Result<Image> {
    check_spec(spec, given)?;
    let pipeline = ctx.pipeline.name();
    let images = promote::pipeline_images(ctx).await?;
    match spec {
        TargetSpec::Ami(ami) => match images.get(ami) {
            Some(i) => Ok(i.clone()),
            None => match images::by_id(ctx, ami).await.map_err(|e| Error::cloud(e, "nothing was changed"))? {
                Some(_) => Err(Error::precondition(format!(
                    "AMI {ami} was not baked by pipeline {pipeline}: bakeroll revokes only its own images (deploys of others carry no marks)"
                ))),
                None => Err(Error::precondition(format!("AMI {ami} not found{} — deregistered, or never existed", ctx.pipeline.region_hint()))),
            },
        },
        TargetSpec::Commit(c) => by_commit(&images, c, &pipeline),
        TargetSpec::Previous | TargetSpec::Version(_) => unreachable!("check_spec refused {given} above"),
    }
}

/// A release is named by commit or AMI id: `previous` and a version number name one group's version,
/// and a revocation is about the image, in every environment. Refused before any call (exit 2).
pub fn check_spec(spec: &TargetSpec, given: &str) -> Result<()> {
    match spec {
        TargetSpec::Previous | TargetSpec::Version(_) => Err(Error::Usage(format!(
            "`{given}`: revoke names a release by its commit (7 or more characters) or its AMI id; a launch-template version belongs to one group, a release to every environment"
        ))),
        TargetSpec::Ami(_) | TargetSpec::Commit(_) => Ok(()),
    }
}

fn by_commit(images: &Images, c: &str, pipeline: &str) -> Result<Image> {
    let matches = |have: &str| have == c || (c.len() >= 7 && have.starts_with(c));
    let found: Vec<&Image> = images.values().filter(|i| i.tags.get(tags::COMMIT).is_some_and(|have| matches(have))).collect();
    let mut commits: Vec<&str> = found.iter().filter_map(|i| i.tags.get(tags::COMMIT).map(String::as_str)).collect();
    commits.sort_unstable();
    commits.dedup();
    match (found.first(), commits.len()) {
        (_, n) if n > 1 => Err(Error::precondition(format!("commit {c} is ambiguous: it matches {}", commits.join(", ")))),
        (Some(i), _) => Ok((*i).clone()),
        (None, _) => Err(Error::precondition(format!("no image of pipeline {pipeline} was baked for commit {c} (`bakeroll history` lists the releases)"))),
    }
}

/// Writes the revocation (replacing an earlier one's reason) and waits until EC2 shows it.
pub async fn revoke(ctx: &Ctx, image: &Image, reason: &str) -> Result<Revoked> {
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let value = revoked_value(&at, reason);
    ctx.events.phase("revoke", Stage::Revoke, format!("revoking {}: {value}", image.id));
    let tag = Tags::from([(tags::REVOKED.to_string(), value.clone())]);
    ctx.cloud.ec2.create_tags(std::slice::from_ref(&image.id), &tag).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let now = settled(ctx, &image.id, |i| i.tags.get(tags::REVOKED) == Some(&value), "the revocation").await?;
    Ok(report(image, &now))
}

/// Removes the revocation (nothing to do when there is none) and waits until EC2 shows it gone.
pub async fn restore(ctx: &Ctx, image: &Image) -> Result<Revoked> {
    if !image.tags.contains_key(tags::REVOKED) {
        ctx.events.info("revoke", format!("{} is not revoked; nothing to restore", image.id));
        return Ok(report(image, image));
    }
    ctx.events.phase("revoke", Stage::Revoke, format!("restoring {}: removing {}", image.id, tags::REVOKED));
    let key = [tags::REVOKED.to_string()];
    ctx.cloud.ec2.delete_tags(std::slice::from_ref(&image.id), &key).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    let now = settled(ctx, &image.id, |i| !i.tags.contains_key(tags::REVOKED), "the restore").await?;
    Ok(report(image, &now))
}

fn report(before: &Image, now: &Image) -> Revoked {
    let marks = ImageMarks::of(&now.tags);
    Revoked {
        ami: now.id.clone(),
        commit: now.tags.get(tags::COMMIT).cloned(),
        revoked: marks.revoked.clone(),
        was: ImageMarks::of(&before.tags).revoked,
        marks,
    }
}

/// Reads the image back until `shown` holds (EC2's tags are eventually consistent).
async fn settled(ctx: &Ctx, ami: &str, shown: impl Fn(&Image) -> bool, what: &str) -> Result<Image> {
    let wait = Wait { what: format!("EC2 to show {what} on {ami}"), every: SETTLE_POLL, timeout: SETTLE };
    let state = format!("the tag was written on {ami}; EC2 does not show it yet");
    let seen = wait::until(&*ctx.cloud.clock, &wait, async || match images::by_id(ctx, ami).await? {
        Some(i) if shown(&i) => Ok(Check::Ready(i)),
        Some(_) => Ok(Check::NotYet("not shown yet".into())),
        None => Ok(Check::Failed(format!("{ami} is gone (deregistered)"))),
    })
    .await;
    match seen {
        Ok(wait::Waited::Ready(i)) => Ok(i),
        Ok(wait::Waited::Unobserved { .. }) => Err(Error::Bug(format!("{what} of {ami} was not observed"))),
        Err(WaitError::Cloud(e)) => Err(Error::cloud(e, state)),
        Err(WaitError::TimedOut { last, .. } | WaitError::Failed(last)) => Err(Error::Unsettled { message: format!("{what} of {ami}: {last}"), state }),
    }
}

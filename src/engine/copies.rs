//! The release in every region and account of an environment: the bake account copies the image to each
//! region other than the bake region (all copies at once, before any group changes), each copy found
//! again by its name and provenance when an earlier run made it (pending or available: reused), made
//! with a ClientToken that is the same for every attempt at it (a retried call, a re-run: never a second
//! copy), encrypted with the region's `kms_key_ids` key, and tagged — with its snapshots — with its
//! provenance; a copy that fails is deregistered with its snapshots. When the environment deploys
//! through another account's role, each region's image and its snapshots are shared with that account.
//! An encrypted image cannot be shared on the AWS-managed key, so a region without a customer key is
//! refused before any copy.

use std::collections::BTreeMap;
use std::hash::Hasher;

use futures_util::future::join_all;

use super::wait::{Check, Poller, WaitError, Waited};
use super::Ctx;
use crate::cloud::{Cloud, CopyRequest, Wait};
use crate::core::model::{Image, ImageFilter, ImageState, Tags};
use crate::core::settings::Placement;
use crate::core::tags;
use crate::error::{Error, Result};
use crate::events::Stage;

/// The release's image in each region: the bake region's (`None`) is the source itself.
pub type RegionImages = BTreeMap<Option<String>, String>;

/// Every region's image of `source` (the release in the bake region), shared with the deploy account
/// when there is one. Nothing is copied or shared when the environment lives in the bake region only.
pub async fn ensure(ctx: &Ctx, placement: &Placement, source: &Image) -> Result<RegionImages> {
    let mut images = RegionImages::from([(None, source.id.clone())]);
    let regions = placement.copy_regions();
    let share_with = placement.role.as_ref().map(|r| r.account.clone()).filter(|a| source.owner.as_deref() != Some(a.as_str()));
    if let (Some(account), true) = (&share_with, source.encrypted) {
        // The AWS-managed key cannot be shared: each copy must be made with a customer key, and the bake
        // region's image itself cannot be proven to be on one (its key is not in DescribeImages).
        for region in placement.rollout_regions() {
            let fix = match &region {
                None => format!(
                    "the release deploys in its bake region, whose image bakeroll cannot re-encrypt in place: bake it from a base image \
                     encrypted with a customer key whose policy allows account {account} and its Auto Scaling service-linked role, or \
                     leave the bake region out of `regions`"
                ),
                Some(r) if !placement.kms_key_ids.contains_key(r) => format!(
                    "set `kms_key_ids` for {r} to a customer key whose policy allows account {account} and its Auto Scaling \
                     service-linked role (an image on the AWS-managed EBS key cannot be shared)"
                ),
                Some(_) => continue,
            };
            return Err(Error::precondition(format!("image {} is encrypted and account {account} deploys it: {fix}", source.id)));
        }
    }
    if regions.is_empty() && share_with.is_none() {
        return Ok(images);
    }
    let bake_region = match placement.bake_region.clone() {
        Some(r) => r,
        // Sharing alone needs no region name (the config refuses `regions` without `region`).
        None if regions.is_empty() => "the bake region".to_string(),
        None => return Err(Error::precondition("copies need the bake region: set `region` in the pipeline file")),
    };
    let from = bake_region.as_str();
    let made = join_all(regions.iter().map(|r| async move { copy_to(ctx, placement, source, from, r).await.map_err(|e| e.in_region(Some(r))) })).await;
    let mut errors = Vec::new();
    for (region, result) in regions.iter().zip(made) {
        match result {
            Ok(id) => {
                images.insert(Some(region.clone()), id);
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    if let Some(account) = share_with {
        for (region, id) in &images {
            share(ctx, &ctx.bake_cloud(region.as_deref()), id, &account, region.as_deref().unwrap_or(&bake_region)).await?;
        }
    }
    Ok(images)
}

/// The same ClientToken for every attempt at this copy, in this and every later run (64 characters at
/// most, as EC2 allows): a stable hash (FNV-1a) of the pipeline, the source and the destination.
fn client_token(pipeline: &str, source: &str, region: &str, key: Option<&str>) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for part in [pipeline, source, region, key.unwrap_or("")] {
        h.write(part.as_bytes());
        h.write(&[0]);
    }
    format!("bakeroll-copy-{:016x}", h.finish())
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// One region's copy: reused when an earlier attempt made it, else made; then waited for.
async fn copy_to(ctx: &Ctx, placement: &Placement, source: &Image, bake_region: &str, region: &str) -> Result<String> {
    let cloud = ctx.bake_cloud(Some(region));
    let scope = format!("copy@{region}");
    let unchanged = || format!("nothing was changed in {region}");
    let mut provenance = Tags::from([(tags::SOURCE_AMI.to_string(), source.id.clone()), (tags::SOURCE_REGION.to_string(), bake_region.to_string())]);
    for key in [tags::COMMIT, tags::PIPELINE] {
        if let Some(v) = source.tags.get(key) {
            provenance.insert(key.to_string(), v.clone());
        }
    }
    let filter = ImageFilter { owners: vec!["self".into()], name: Some(source.name.clone()), tags: provenance.clone(), ..Default::default() };
    let found = cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, unchanged()))?;
    let id = match found.into_iter().find(|i| i.name == source.name && matches!(i.state, ImageState::Pending | ImageState::Available)) {
        Some(existing) => {
            ctx.events.info(&scope, format!("reusing {} in {region}, the copy of {} an earlier attempt made ({:?})", existing.id, source.id, existing.state));
            existing.id
        }
        None => {
            let key = placement.kms_key_ids.get(region).cloned();
            let mut image_tags = source.tags.clone();
            image_tags.extend(provenance.clone());
            let req = CopyRequest {
                source_region: bake_region.to_string(),
                source_image: source.id.clone(),
                name: source.name.clone(),
                description: format!("{} copied from {bake_region} by bakeroll", source.id),
                kms_key_id: key.clone(),
                client_token: client_token(&ctx.pipeline.name(), &source.id, region, key.as_deref()),
                snapshot_tags: image_tags.clone(),
                image_tags,
            };
            let encrypted = key.as_ref().map(|k| format!(", encrypted with {k}")).unwrap_or_default();
            ctx.events.phase(&scope, Stage::Copy, format!("copying {} from {bake_region} to {region}{encrypted}", source.id));
            let _creating = ctx.ledger.creating();
            cloud.copies.copy_image(&req).await.map_err(|e| Error::cloud(e, unchanged()))?
        }
    };
    wait_available(ctx, &cloud, &id, region, placement).await?;
    Ok(id)
}

/// Waits (up to `copy_timeout`) for the copy to be available; a copy that fails or never becomes
/// available is deregistered with its snapshots, and the error is exit 6 (nothing was deployed).
async fn wait_available(ctx: &Ctx, cloud: &Cloud, id: &str, region: &str, placement: &Placement) -> Result<()> {
    let every = ctx.pipeline.pipeline.bake.poll_interval.0;
    let wait = Wait { what: format!("copy {id} in {region} available"), every, timeout: placement.copy_timeout };
    let mut last: Option<Image> = None;
    // A Poller, not `wait::until` with an async closure: such a closure's future, borrowing this
    // function's references, is not `Send`, and deploys run in spawned tasks.
    let mut poller = Poller::start(&*cloud.clock, &wait);
    let filter = ImageFilter { ids: vec![id.to_string()], ..Default::default() };
    let ended = loop {
        let seen = cloud.ec2.find_images(&filter).await.map(|found| {
            last = found.into_iter().find(|i| i.id == id);
            match last.as_ref().map(|i| &i.state) {
                Some(ImageState::Available) => Check::Ready(()),
                Some(ImageState::Pending) | None => Check::NotYet("pending".into()),
                Some(other) => Check::Failed(format!("{other:?}")),
            }
        });
        if let Some(ended) = poller.after(seen).await {
            break ended;
        }
    };
    let why = match ended {
        Ok(Waited::Ready(())) | Ok(Waited::Unobserved { .. }) => return Ok(()),
        Err(WaitError::TimedOut { waited, .. }) => format!("still pending after {}s (copy_timeout)", waited.as_secs()),
        Err(WaitError::Failed(state)) => {
            let reason = last.and_then(|i| i.state_reason).map(|r| format!(": {r}")).unwrap_or_default();
            format!("{state}{reason}")
        }
        Err(WaitError::Cloud(e)) => return Err(Error::cloud(e, format!("copy {id} in {region} left as it is (a re-run reuses it)"))),
    };
    let snapshots = last_snapshots(cloud, id).await;
    let cleaned = clean_copy(cloud, id, &snapshots).await;
    Err(Error::Copy { region: region.to_string(), message: format!("copy {id} of the release in {region} failed: {why}"), state: format!("{cleaned}; nothing was deployed") })
}

async fn last_snapshots(cloud: &Cloud, id: &str) -> Vec<String> {
    let filter = ImageFilter { ids: vec![id.to_string()], ..Default::default() };
    cloud.ec2.find_images(&filter).await.ok().into_iter().flatten().find(|i| i.id == id).map(|i| i.snapshot_ids).unwrap_or_default()
}

/// Deregisters a failed copy and deletes its snapshots; says what it could and could not do.
async fn clean_copy(cloud: &Cloud, id: &str, snapshots: &[String]) -> String {
    let mut said = Vec::new();
    match cloud.ec2.deregister_image(id).await {
        Ok(()) => said.push(format!("copy {id} deregistered")),
        Err(e) => said.push(format!("copy {id} NOT deregistered ({e}): `aws ec2 deregister-image --image-id {id}`")),
    }
    for snap in snapshots {
        if let Err(e) = cloud.ec2.delete_snapshot(snap).await {
            said.push(format!("snapshot {snap} NOT deleted ({e})"));
        }
    }
    said.join("; ")
}

/// A launch permission on the image and a create-volume permission on each of its snapshots for the
/// deploy account.
async fn share(ctx: &Ctx, cloud: &Cloud, id: &str, account: &str, region: &str) -> Result<()> {
    let unshared = || format!("image {id} in {region} not shared with account {account}; nothing was deployed");
    ctx.events.phase(&format!("copy@{region}"), Stage::Copy, format!("sharing {id} and its snapshots with account {account}"));
    cloud.copies.share_image(id, account).await.map_err(|e| Error::cloud(e, unshared()))?;
    for snap in last_snapshots(cloud, id).await {
        cloud.copies.share_snapshot(&snap, account).await.map_err(|e| Error::cloud(e, unshared()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_token_is_the_same_for_every_attempt_and_differs_between_copies() {
        let a = client_token("shop", "ami-1", "ap-southeast-1", None);
        assert_eq!(a, client_token("shop", "ami-1", "ap-southeast-1", None));
        assert!(a.len() <= 64 && a.starts_with("bakeroll-copy-"));
        for other in [
            client_token("shop", "ami-2", "ap-southeast-1", None),
            client_token("shop", "ami-1", "eu-west-1", None),
            client_token("web", "ami-1", "ap-southeast-1", None),
            client_token("shop", "ami-1", "ap-southeast-1", Some("alias/ami")),
        ] {
            assert_ne!(a, other);
        }
    }
}

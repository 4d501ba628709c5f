//! Ship: the commit's image baked, then deployed — one workflow, one preflight. Every precondition of the
//! deploy is checked before the bake (a misspelt group or an unhealthy fleet should not cost a 20-minute
//! bake and leave an image nobody deploys), and what preflight found — an earlier run's refresh to attach
//! to included — is what the deploy starts from.
//!
//! The promotion guard too is asked before the bake, of the image an earlier bake of the commit made: a
//! revoked one is refused, and so is a commit not baked yet when the environment `requires_verified_in`
//! another — an image that does not exist cannot have been verified anywhere, so such an environment
//! only ever receives an image another environment proved (`--force` overrides, recorded as forced).

use std::collections::BTreeMap;

use super::bake::{self, BakeRequest, Baked};
use super::deploy::{self, DeployReport, DeployRequest};
use super::images::{self, CommitImage};
use super::preflight::{self, ReleaseKey};
use super::promote;
use super::Ctx;
use crate::core::settings::EnvSettings;
use crate::error::{Error, Result};

/// What a ship did: the bake (None when it did not get that far) and the deploy.
#[derive(Debug, Clone, Default)]
pub struct Shipped {
    pub baked: Option<Baked>,
    pub deploy: Option<DeployReport>,
}

pub async fn ship(ctx: &Ctx, env: &EnvSettings, bake_req: &BakeRequest, force: bool) -> (Shipped, Result<()>) {
    let mut shipped = Shipped::default();
    let key = ReleaseKey { ami: None, commit: Some(&bake_req.commit) };
    let prepared = match preflight::check_all(ctx, env, key, force).await {
        Ok(p) => p,
        Err(e) => return (shipped, Err(e)),
    };
    let existing = match images::for_commit(ctx, &bake_req.commit).await {
        Ok(CommitImage::Ours(i) | CommitImage::Foreign { image: i, .. }) => Some(i),
        Ok(CommitImage::None { .. }) => None,
        Err(e) => return (shipped, Err(Error::cloud(e, "nothing was changed"))),
    };
    let what = match &existing {
        Some(i) => promote::describe(&i.id, Some(&bake_req.commit)),
        None => format!("commit {}", bake_req.commit),
    };
    let promotion = match promote::guard(ctx, env, existing.as_ref(), &what, force) {
        (p, Ok(())) => p,
        (p, Err(e)) => {
            let ami = existing.map(|i| i.id).unwrap_or_default();
            let report = DeployReport { env: env.name.clone(), ami, commit: Some(bake_req.commit.clone()), waves: env.waves.clone(), promotion: Some(p), ..Default::default() };
            shipped.deploy = Some(report);
            return (shipped, Err(e));
        }
    };
    let baked = match bake::bake(ctx, bake_req).await {
        Ok(b) => b,
        Err(e) => return (shipped, Err(e)),
    };
    shipped.baked = Some(baked.clone());
    let req = DeployRequest { env: env.name.clone(), image_id: baked.ami_id.clone(), commit: Some(baked.commit), force, targets: BTreeMap::new(), images: BTreeMap::new() };
    // The release in every region of the environment (copies, sharing) before any group changes.
    let req = match images::require_available(ctx, &baked.ami_id, "the baked image").await {
        Ok(source) if !env.placement.regions.is_empty() || env.placement.role.is_some() => deploy::in_every_region(ctx, env, &req, &source).await,
        Ok(_) => Ok(req),
        Err(e) => Err(e),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => return (shipped, Err(e)),
    };
    let (report, result) = deploy::release(ctx, env, &req, prepared, Some(promotion)).await;
    shipped.deploy = Some(report);
    (shipped, result)
}

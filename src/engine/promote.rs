//! Promotion against the cloud: the pipeline's images with their marks (one DescribeImages), the
//! promotion guard before a deploy changes anything, the mark a release leaves on its image when it
//! ends, and — after a verified deploy — deregistration protection on every image a group runs and on
//! each group's rollback target. What to decide is `core::promotion`'s; this gathers and writes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::releases::{read_group, GroupState, ReleaseRef, RollbackTargetView};
use super::Ctx;
use crate::core::model::{Image, ImageFilter, Tags};
use crate::core::promotion::{check, skip_reason, with_source_marks, GuardFacts, GuardVerdict, ImageMarks, MarkKind, Promotion};
use crate::core::releases::{previous_fit, ReleaseRecord, Skipped};
use crate::core::settings::EnvSettings;
use crate::core::tags;
use crate::error::{Error, Result};
use crate::events::Stage;

/// The pipeline's images by id.
pub type Images = BTreeMap<String, Image>;

/// Where promotion events go (the progress lines' scope).
const SCOPE: &str = "promote";

/// Every image this pipeline baked (owner self, `bakeroll:pipeline` tag), with its tags and protection:
/// where the marks live. One DescribeImages, every page.
pub async fn pipeline_images(ctx: &Ctx) -> Result<Images> {
    let ours = Tags::from([(tags::PIPELINE.to_string(), ctx.pipeline.name())]);
    let filter = ImageFilter { owners: vec!["self".into()], tags: ours, ..Default::default() };
    let found = ctx.cloud.ec2.find_images(&filter).await.map_err(|e| Error::cloud(e, "nothing was changed"))?;
    Ok(found.into_iter().map(|i| (i.id.clone(), i)).collect())
}

/// The pipeline's images in `region` (None: the bake region's, `home`), each copy judged by its source's
/// marks (`core::promotion::with_source_marks`): what a rollback, prune or protection in that region reads.
pub async fn images_in(ctx: &Ctx, region: Option<&str>, home: &Images) -> Result<Images> {
    if region.is_none() {
        return Ok(home.clone());
    }
    let bake = Ctx { cloud: ctx.bake_cloud(region), ..ctx.clone() };
    Ok(with_home_marks(pipeline_images(&bake).await?, home))
}

/// `copies` (a region's images) each with its source's marks from `home`.
pub fn with_home_marks(copies: Images, home: &Images) -> Images {
    copies
        .into_iter()
        .map(|(id, copy)| {
            let source = copy.tags.get(tags::SOURCE_AMI).and_then(|s| home.get(s));
            (id, with_source_marks(&copy, source))
        })
        .collect()
}

/// The image was baked by this pipeline (the only images bakeroll marks: the IAM policy lets it tag no other).
pub fn is_ours(ctx: &Ctx, image: &Image) -> bool {
    image.tags.get(tags::PIPELINE) == Some(&ctx.pipeline.name())
}

/// `AMI ami-… (commit c0ffee1)`.
pub fn describe(ami: &str, commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("AMI {ami} (commit {c})"),
        None => format!("AMI {ami}"),
    }
}

/// The promotion guard, before anything changes: `image` is the release's image (None: not baked yet, a
/// `ship` before its bake). Refused → exit 2 naming why, where the image was verified or failed and
/// when; forced → a warning; allowed → said when the environment requires anything.
pub fn guard(ctx: &Ctx, env: &EnvSettings, image: Option<&Image>, what: &str, force: bool) -> (Promotion, Result<()>) {
    let marks = image.map(|i| ImageMarks::of(&i.tags));
    let p = check(&GuardFacts { env: &env.name, requires: &env.requires_verified_in, marks: marks.as_ref(), force });
    match p.verdict {
        GuardVerdict::Refused => {
            let e = Error::precondition(p.explain(what));
            return (p, Err(e));
        }
        GuardVerdict::Forced => ctx.events.warn(SCOPE, format!("{}; deploying anyway (--force), recorded as forced={}", p.explain(what), p.forced().unwrap_or_default())),
        GuardVerdict::Allowed if !env.requires_verified_in.is_empty() => {
            ctx.events.phase(SCOPE, Stage::Promote, format!("{what} may go to {}: {}", env.name, p.said()));
        }
        GuardVerdict::Allowed => {}
    }
    (p, Ok(()))
}

/// The release's mark, as written (or why it could not be).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marked {
    pub kind: MarkKind,
    /// `bakeroll:verified:<env>` or `bakeroll:failed:<env>`.
    pub key: String,
    /// Its value: when.
    pub at: String,
    /// Why it is not on the image (the deploy's own result stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deregistration protection of one image after a verified deploy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Protected {
    pub ami: String,
    /// Why it must stay: the groups running it, the groups it is the rollback target of.
    pub reasons: Vec<String>,
    /// It was on already.
    pub already: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The region of the copy protected; absent: the bake region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// What a release leaves on images when it ends (the JSON summary's `deploy.mark` and `deploy.protected`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Aftermath {
    pub mark: Option<Marked>,
    pub protected: Vec<Protected>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A group the release left verified: its name in the release, and the version and image it runs.
#[derive(Debug, Clone)]
pub struct OnRelease {
    pub group: String,
    pub version: i64,
    pub image: String,
}

/// After the verdict: the mark `kind` on the release's image `ami` (replacing the other kind for this
/// environment), then, after a verified release, protection on what every group runs (`verified`) and
/// its rollback target. A write that fails is a warning and is reported: the release's result stands.
pub async fn after_release(ctx: &Ctx, env: &EnvSettings, ami: &str, kind: Option<MarkKind>, verified: &[OnRelease]) -> Aftermath {
    let mut out = Aftermath::default();
    let Some(kind) = kind else { return out };
    let images = match pipeline_images(ctx).await {
        Ok(i) => i,
        Err(e) => {
            ctx.events.warn(SCOPE, format!("could not read the pipeline's images to mark {ami}: {e}"));
            return out;
        }
    };
    out.mark = Some(mark(ctx, &env.name, ami, kind, images.get(ami)).await);
    if kind == MarkKind::Verified {
        out.protected = protect(ctx, env, &images, verified).await;
    }
    out
}

async fn mark(ctx: &Ctx, env: &str, ami: &str, kind: MarkKind, image: Option<&Image>) -> Marked {
    let (key, other) = kind.keys(env);
    let mut marked = Marked { kind, key: key.clone(), at: now(), error: None };
    let Some(image) = image else {
        let why = format!("{ami} was not baked by pipeline {}: bakeroll marks only its own images", ctx.pipeline.name());
        // Only a loss where an environment would look for the mark.
        match required_by(ctx, env) {
            later if later.is_empty() => ctx.events.info(SCOPE, format!("no {key} mark: {why}")),
            later => ctx.events.warn(SCOPE, format!("no {key} mark: {why}; {} (requires_verified_in {env}) will refuse it", later.join(", "))),
        }
        marked.error = Some(why);
        return marked;
    };
    ctx.events.phase(SCOPE, Stage::Mark, format!("marking {ami} {key}={}", marked.at));
    let ids = [ami.to_string()];
    let written = match ctx.cloud.ec2.create_tags(&ids, &Tags::from([(key.clone(), marked.at.clone())])).await {
        Ok(()) if image.tags.contains_key(&other) => ctx.cloud.ec2.delete_tags(&ids, std::slice::from_ref(&other)).await,
        other => other,
    };
    if let Err(e) = written {
        ctx.events.warn(SCOPE, format!("the {key} mark could not be written on {ami}: {e}"));
        marked.error = Some(e.to_string());
    }
    marked
}

/// The environments of the pipeline that require an image verified in `env`.
fn required_by(ctx: &Ctx, env: &str) -> Vec<String> {
    let envs = &ctx.pipeline.pipeline.environments;
    envs.iter().filter(|(_, e)| e.requires_verified_in.iter().any(|r| r == env)).map(|(n, _)| n.clone()).collect()
}

/// Where `rollback` would take the group, past revoked releases and releases failed in its environment.
pub fn rollback_target(state: &GroupState, images: &Images) -> (Option<ReleaseRecord>, Vec<Skipped>) {
    let Some(current) = state.current else { return (None, vec![]) };
    let history = state.history();
    let skip = skipper(&state.env, images);
    let (found, skipped) = previous_fit(&history, current, &skip);
    (found.cloned(), skipped)
}

/// Why `rollback` steps over a release of `env`, from its image's marks.
pub fn skipper<'a>(env: &'a str, images: &'a Images) -> impl Fn(&ReleaseRecord) -> Option<String> + 'a {
    move |r: &ReleaseRecord| {
        let marks = r.ami.as_ref().and_then(|a| images.get(a)).map(|i| ImageMarks::of(&i.tags));
        skip_reason(env, marks.as_ref())
    }
}

/// Protection on the image every group of the release runs and on each group's rollback target, as
/// `rollback` would choose it from the release's version (groups in the bake region; the images are
/// this pipeline's). Already on: left as it is.
async fn protect(ctx: &Ctx, env: &EnvSettings, images: &Images, verified: &[OnRelease]) -> Vec<Protected> {
    // Region by region: each region's groups run its own copy, owned by the bake account there.
    let mut by_region: BTreeMap<Option<String>, Vec<&OnRelease>> = BTreeMap::new();
    for g in verified {
        by_region.entry(env.group(&g.group).region).or_default().push(g);
    }
    let mut out = Vec::new();
    for (region, groups) in by_region {
        let bake = Ctx { cloud: ctx.bake_cloud(region.as_deref()), ..ctx.clone() };
        let here = match images_in(ctx, region.as_deref(), images).await {
            Ok(i) => i,
            Err(e) => {
                let r = region.as_deref().unwrap_or("the bake region");
                ctx.events.warn(SCOPE, format!("could not read the pipeline's images in {r} to protect them: {e}"));
                continue;
            }
        };
        out.extend(protect_region(ctx, &bake, env, region.as_deref(), &here, &groups).await);
    }
    out
}

/// Protection in one region: what its groups (read where they live, through the deploy account's role
/// when the environment has one) run and would roll back to, set with the bake account's credentials.
async fn protect_region(ctx: &Ctx, bake: &Ctx, env: &EnvSettings, region: Option<&str>, images: &Images, verified: &[&OnRelease]) -> Vec<Protected> {
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let place = ctx.place(region);
    for g in verified {
        let (name, settings) = (&g.group, env.group(&g.group));
        let mut state = match read_group(&place, &env.name, &settings.name).await {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                ctx.events.warn(SCOPE, format!("could not read group {name} to protect its images: {e}"));
                continue;
            }
        };
        // The release's version, as the verdict found it (a dry run's group never really moved).
        state.current = Some(g.version);
        wanted.entry(g.image.clone()).or_default().push(format!("run by group {name}"));
        if let (Some(r), _) = rollback_target(&state, images) {
            if let Some(ami) = r.ami {
                wanted.entry(ami).or_default().push(format!("rollback target of group {name} (version {})", r.version));
            }
        }
    }
    let mut out = Vec::new();
    let within = region.map(|r| format!(" in {r}")).unwrap_or_default();
    for (ami, reasons) in wanted {
        let Some(image) = images.get(&ami) else {
            ctx.events.info(SCOPE, format!("{ami}{within} ({}) is not this pipeline's image: its protection is left to its owner", reasons.join(", ")));
            continue;
        };
        let mut p = Protected { ami: ami.clone(), reasons, already: image.protection.is_on(), error: None, region: region.map(str::to_string) };
        if !p.already {
            ctx.events.phase(SCOPE, Stage::Mark, format!("protecting {ami}{within} from deregistration ({})", p.reasons.join(", ")));
            if let Err(e) = bake.cloud.ec2.enable_deregistration_protection(&ami).await {
                ctx.events.warn(SCOPE, format!("deregistration protection could not be turned on for {ami}{within}: {e}"));
                p.error = Some(e.to_string());
            }
        }
        out.push(p);
    }
    out
}

/// The marks of each release's image, for `history`.
pub fn annotate_history(releases: &mut [ReleaseRecord], images: &Images) {
    for r in releases {
        r.marks = r.ami.as_ref().and_then(|a| images.get(a)).map(|i| ImageMarks::of(&i.tags));
    }
}

/// The current release's marks and protection, and the rollback target, for `status`.
pub fn annotate_status(status: &mut super::releases::GroupStatus, state: &GroupState, images: &Images) {
    let current = status.release.ami.as_ref().and_then(|a| images.get(a));
    status.marks = current.map(|i| ImageMarks::of(&i.tags));
    status.protected = current.map(|i| i.protection.is_on());
    let (target, skipped) = rollback_target(state, images);
    let protected = target.as_ref().and_then(|r| r.ami.as_ref()).and_then(|a| images.get(a)).map(|i| i.protection.is_on());
    let release = target.as_ref().map(ReleaseRef::of_record);
    status.rollback_target = (release.is_some() || !skipped.is_empty()).then_some(RollbackTargetView { release, protected, skipped });
}

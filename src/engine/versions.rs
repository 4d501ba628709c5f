//! The launch-template version a release is deployed as, and the refresh that rolls it out — each
//! step safe to repeat. A version is reused when an earlier attempt made it (found by its release
//! mark), created from the group's current version otherwise (only the image changes, ClientToken on
//! the request), and read back after writing. StartInstanceRefresh takes no client token: when its
//! answer is lost (a dropped connection, the SDK retrying into `InstanceRefreshInProgress`), the refresh
//! in the way is looked at, and adopted when it rolls out our version.

use super::preflight::{OverrideTemplate, Prepared};
use super::Ctx;
use crate::cloud::{CloudError, ErrorKind};
use crate::core::model::{Refresh, RefreshRequest};
use crate::core::releases::{format_mark, Mark, RELEASE_MARK};
use crate::events::Stage;

/// Why no version could be used.
#[derive(Debug)]
pub enum VersionError {
    Cloud(CloudError),
    /// The existing version asked for launches another image (nothing was changed).
    Mismatch(String),
    /// The version was created, but reads back with another image.
    Unverified(String),
}

impl From<CloudError> for VersionError {
    fn from(e: CloudError) -> Self {
        Self::Cloud(e)
    }
}

/// What the version is for.
pub struct Wanted<'a> {
    pub env: &'a str,
    pub image: &'a str,
    pub commit: Option<&'a str>,
    /// Use this existing version (a rollback to an earlier release); it must launch `image`.
    pub existing: Option<i64>,
    /// What `--force` overrode (the mark's `forced=`).
    pub forced: Option<&'a str>,
}

/// The version for this release: `existing` (checked), else one a previous attempt created (same
/// image, marked by us, newer than the current one), else a new one copied from the current version.
/// Returns the number and whether this call created it.
pub async fn for_release(ctx: &Ctx, want: &Wanted<'_>, p: &Prepared) -> Result<(i64, bool), VersionError> {
    let ec2 = &ctx.cloud.ec2;
    if let Some(n) = want.existing {
        let found = ec2.launch_template_versions(&p.template.id, &[n.to_string()]).await?;
        return match found.first() {
            Some(v) if v.image_id.as_deref() == Some(want.image) => Ok((n, false)),
            other => Err(VersionError::Mismatch(format!(
                "version {n} of {} launches {:?}, not {}",
                p.template.id,
                other.and_then(|v| v.image_id.clone()),
                want.image
            ))),
        };
    }
    ensure(ctx, want, &p.group.name, &p.template.id, p.current).await
}

/// A version of an override's own launch template (a mixed instances policy) launching the release's
/// image: copied from the version the policy names, or the one an earlier attempt made.
pub async fn for_override(ctx: &Ctx, want: &Wanted<'_>, group: &str, o: &OverrideTemplate) -> Result<(i64, bool), VersionError> {
    ensure(ctx, want, group, &o.template.id, o.current).await
}

/// The version of `template_id` for this release: an earlier attempt's (same image, marked by us,
/// newer than `current`), else a new one copied from `current`, read back to verify.
async fn ensure(ctx: &Ctx, want: &Wanted<'_>, name: &str, template_id: &str, current: i64) -> Result<(i64, bool), VersionError> {
    let ec2 = &ctx.cloud.ec2;
    let latest = ec2.launch_template_versions(template_id, &["$Latest".to_string()]).await?;
    if let Some(v) = latest.first() {
        let ours = v.description.as_deref().is_some_and(|d| d.starts_with(RELEASE_MARK));
        if ours && v.image_id.as_deref() == Some(want.image) && v.number > current {
            ctx.events.info(name, format!("reusing version {} of {template_id} from an earlier attempt", v.number));
            return Ok((v.number, false));
        }
    }
    let description = format_mark(&Mark {
        commit: want.commit.map(str::to_string),
        ami: Some(want.image.to_string()),
        env: Some(want.env.to_string()),
        at: Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
        job: std::env::var("CI_JOB_ID").ok().filter(|j| !j.is_empty()),
        from: Some(current),
        forced: want.forced.map(str::to_string),
    });
    ctx.events.phase(name, Stage::Template, format!("creating a version of {template_id} from {current} with image {}", want.image));
    let creating = ctx.ledger.creating();
    let created = ec2.create_launch_template_version(template_id, current, want.image, &description).await?;
    ctx.ledger.version_created(name, template_id, created.number);
    drop(creating);
    // Verify after write: the version must launch the new image (an emulator or API change that drops
    // the override would otherwise roll out the old image and report success).
    let check = ec2.launch_template_versions(template_id, &[created.number.to_string()]).await?;
    match check.first().and_then(|v| v.image_id.clone()) {
        Some(img) if img == want.image => Ok((created.number, true)),
        other => Err(VersionError::Unverified(format!(
            "version {} of {template_id} reads back image {:?}, not {}",
            created.number, other, want.image
        ))),
    }
}

/// How starting the refresh ended.
#[derive(Debug)]
pub enum Started {
    /// Its id; `adopted` when the answer was lost and the refresh found by its desired version.
    Running { id: String, adopted: bool },
    /// Another refresh holds the group (a concurrent deploy, or a person).
    Blocked(Refresh),
    Failed(CloudError),
}

/// StartInstanceRefresh, recognising our own refresh when its answer was lost.
pub async fn start_refresh(ctx: &Ctx, request: &RefreshRequest) -> Started {
    let asg = &ctx.cloud.autoscaling;
    let err = match asg.start_instance_refresh(request).await {
        Ok(id) => return Started::Running { id, adopted: false },
        Err(e) => e,
    };
    // A refused start (bad preferences, denied) never reached the group; anything else may have.
    let unknown = err.is("InstanceRefreshInProgress") || matches!(err.kind, ErrorKind::Transient | ErrorKind::Other);
    if !unknown {
        return Started::Failed(err);
    }
    let refreshes = match asg.describe_instance_refreshes(&request.group, &[]).await {
        Ok(r) => r,
        Err(_) => return Started::Failed(err),
    };
    match refreshes.into_iter().find(|r| r.status.is_active()) {
        Some(r) if r.desired_version.is_some() && r.desired_version == request.version().map(|v| v.to_string()) => {
            let version = r.desired_version.clone().unwrap_or_default();
            ctx.events.warn(
                &request.group,
                format!("the answer to StartInstanceRefresh was lost ({err}); refresh {} rolls out version {version}: adopting it", r.id),
            );
            Started::Running { id: r.id, adopted: true }
        }
        Some(r) => Started::Blocked(r),
        None => Started::Failed(err),
    }
}

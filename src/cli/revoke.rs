//! `bakeroll revoke RELEASE --reason TEXT` and `bakeroll revoke --restore RELEASE`: declare a release of
//! this pipeline bad (deploy and ship then refuse it, `rollback` steps over it, `prune` stops keeping it as
//! a rollback target) or good again. RELEASE is a commit (7+ characters) or an AMI id. The revocation is a
//! tag on the image, so it holds in every environment and for every person and pipeline job at once.

use super::{summary_base, Finished, Global, Session};
use crate::core::releases::TargetSpec;
use crate::engine::revoke::{self, Revoked, REASON_MAX};
use crate::error::{Error, Result};
use crate::summary::{Details, Release};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The release: a commit SHA (or a prefix of 7+ characters; `commit:SHA` forces a commit) or an AMI id.
    #[arg(value_name = "RELEASE")]
    pub release: String,
    /// Why it is revoked (shown wherever it is refused or skipped).
    #[arg(long, value_name = "TEXT", required_unless_present = "restore", conflicts_with = "restore")]
    pub reason: Option<String>,
    /// Remove the revocation: the release may be deployed and rolled back to again.
    #[arg(long)]
    pub restore: bool,
}

/// The reason, checked before anything is read: present, and short enough for the tag value.
fn reason(args: &Args) -> Result<Option<String>> {
    let Some(r) = args.reason.as_deref().map(|r| r.split_whitespace().collect::<Vec<_>>().join(" ")) else { return Ok(None) };
    if r.is_empty() {
        return Err(Error::Usage("--reason is empty: say why the release is revoked (it is shown wherever the release is refused or skipped)".into()));
    }
    let n = r.chars().count();
    if n > REASON_MAX {
        return Err(Error::Usage(format!("--reason is {n} characters; the revocation is an EC2 tag, which holds at most {REASON_MAX} after its time")));
    }
    Ok(Some(r))
}

pub fn text(r: &Revoked, restored: bool) -> String {
    let what = match &r.commit {
        Some(c) => format!("{} (commit {c})", r.ami),
        None => r.ami.clone(),
    };
    match (&r.revoked, restored, &r.was) {
        (Some(now), false, _) => format!(
            "revoked {what} at {}: {}. deploy and ship refuse it; rollback steps over it (an environment running it now: deploy another release, or `bakeroll rollback`)",
            now.at, now.reason
        ),
        (None, true, Some(_)) => format!("restored {what}: no longer revoked"),
        (None, true, None) => format!("{what} was not revoked; nothing changed"),
        (Some(now), true, _) => format!("{what} is still revoked ({}: {})", now.at, now.reason),
        (None, false, _) => format!("{what}: not revoked"),
    }
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let checked = TargetSpec::parse(&args.release)
        .map_err(Error::Usage)
        .and_then(|spec| revoke::check_spec(&spec, &args.release).map(|()| spec))
        .and_then(|spec| Ok((spec, reason(&args)?)));
    let (spec, reason) = match checked {
        Ok(c) => c,
        Err(e) => return Finished::early("revoke", e),
    };
    let session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("revoke", e),
    };
    let ctx = &session.ctx;
    let work = async {
        let image = revoke::find(ctx, &spec, &args.release).await?;
        match &reason {
            Some(r) => revoke::revoke(ctx, &image, r).await,
            None => revoke::restore(ctx, &image).await,
        }
    };
    let result = session.interruptible(work).await;
    session.display.finish();
    let mut summary = summary_base(&session, "revoke");
    match result {
        Ok(r) => {
            let text = text(&r, args.restore);
            summary.release = Some(Release { ami: r.ami.clone(), commit: r.commit.clone() });
            summary.details = Some(Details::Revoke { target: args.release.clone(), restored: args.restore, revoke: r });
            Finished { summary, text: Some(text), result: Ok(()), next: None }
        }
        Err(e) => {
            let next = (e.exit_code() == crate::error::exit::USAGE).then(|| "`bakeroll history` lists the releases (commit and AMI of each)".to_string());
            Finished { summary, text: None, result: Err(e), next }
        }
    }
}

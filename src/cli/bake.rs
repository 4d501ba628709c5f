//! `bakeroll bake`: bake the AMI for a commit and print its id.

use std::path::PathBuf;

use super::{bake_request, parse_tag, summary_base, write_dotenv, Finished, Global, Session};
use crate::engine::bake;
use crate::summary::Outcome;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Commit to bake [default: $CI_COMMIT_SHA, else `git rev-parse HEAD`].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Image this existing, already provisioned instance (it is never terminated).
    #[arg(long, value_name = "ID")]
    pub build_instance: Option<String>,
    /// Write AMI_ID, AMI_NAME and RELEASE as KEY=value lines (GitLab artifacts:reports:dotenv).
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    pub dotenv: Option<PathBuf>,
    /// Extra tag for the image and its snapshots (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Print every AWS call the bake would make and change nothing (EC2 permissions checked with DryRun).
    #[arg(long)]
    pub dry_run: bool,
}


pub async fn run(global: &Global, args: Args) -> Finished {
    let req = match bake_request(args.commit.as_deref(), args.build_instance.clone(), &args.tags) {
        Ok(r) => r,
        Err(e) => return Finished::early("bake", e),
    };
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("bake", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    // A bake that cannot become ready would wait out bake.timeout: say so first (a note in a dry run).
    if req.build_instance.is_none() {
        for w in session.ctx.pipeline.bake_warnings() {
            session.ctx.events.warn("bake", w);
        }
    }
    let result = session.interruptible(bake::bake(&session.ctx, &req)).await;
    session.display.finish();
    let mut summary = summary_base(&session, "bake");
    let result = result.and_then(|baked| {
        summary.bake = Some(baked.clone());
        summary.outcome = Some(Outcome::Baked);
        if let Some(path) = &args.dotenv {
            write_dotenv(path, &super::outcome::bake_vars(&baked), &format!("image {} baked", baked.ami_id))?;
        }
        Ok(baked)
    });
    let finished = match result {
        Ok(baked) => Finished { summary, text: Some(baked.ami_id), result: Ok(()), next: None },
        Err(e) => Finished { summary, text: None, result: Err(e), next: None },
    };
    super::dry_run::finished(&session, "bake --dry-run", finished)
}

//! `bakeroll ship`: bake the commit's AMI, then deploy it (what a GitLab job on every commit runs). The
//! workflow is the engine's (`engine::ship`); this parses the arguments and hands them to `flow`.

use std::path::PathBuf;

use super::flow::{self, ShipInput};
use super::{parse_tag, Finished, Global};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Commit to ship [default: $CI_COMMIT_SHA, else `git rev-parse HEAD`].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Write AMI_ID, AMI_NAME, RELEASE, DEPLOY_OUTCOME and BAKEROLL_ENV as KEY=value lines.
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    pub dotenv: Option<PathBuf>,
    /// Extra tag for the image and its snapshots (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Deploy even if the fleet is already unhealthy before the deploy.
    #[arg(long)]
    pub force: bool,
    /// Print every AWS call the bake and the deploy would make and change nothing (also: `bakeroll plan`).
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let input = ShipInput { command: "ship", commit: args.commit, tags: args.tags, force: args.force, dry_run: args.dry_run, dotenv: args.dotenv };
    flow::ship(global, input).await
}

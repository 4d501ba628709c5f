//! `bakeroll plan`: what `ship` would do for a commit, changing nothing — `ship --dry-run` by a name
//! that reads well in a merge-request pipeline.

use super::flow::{self, ShipInput};
use super::{parse_tag, Finished, Global};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Commit to plan for [default: $CI_COMMIT_SHA, else `git rev-parse HEAD`].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Extra tag the bake would put on the image and its snapshots (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Plan the deploy even if the fleet is already unhealthy.
    #[arg(long)]
    pub force: bool,
}

/// Runs `ship --dry-run` (a bake that cannot become ready is warned about by the workflow itself: the
/// plan of such a ship would look fine, and the real one would wait out `bake.timeout`).
pub async fn run(global: &Global, args: Args) -> Finished {
    // The summary says `ship`: a plan is a ship that changes nothing (README "Dry runs").
    let input = ShipInput { command: "ship", commit: args.commit, tags: args.tags, force: args.force, dry_run: true, dotenv: None };
    flow::ship(global, input).await
}

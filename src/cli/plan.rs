//! `bakeroll plan`: what `ship` would do for a commit, changing nothing — `ship --dry-run` by a name
//! that reads well in a merge-request pipeline — plus a warning when the bake could never become ready.

use super::flow::{self, ShipInput};
use super::{parse_tag, Finished, Global};
use crate::cloud::dry_run::Note;

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

/// Runs `ship --dry-run`, and warns (stderr, and `plan.notes` with scope `pipeline`) about a bake that
/// cannot become ready as configured (`Loaded::bake_warnings`): the plan of such a ship looks fine, and
/// the real one would wait out `bake.timeout`.
pub async fn run(global: &Global, args: Args) -> Finished {
    let warnings = crate::config::Loaded::load(&global.pipeline).map(|l| l.bake_warnings()).unwrap_or_default();
    crate::display::dry_run::print_warnings(&warnings);
    // The summary says `ship`: a plan is a ship that changes nothing (README "Dry runs").
    let input = ShipInput { command: "ship", commit: args.commit, tags: args.tags, force: args.force, dry_run: true, dotenv: None };
    let mut finished = flow::ship(global, input).await;
    if let Some(plan) = finished.summary.plan.as_mut() {
        let notes = warnings.into_iter().map(|message| Note { after_step: 0, scope: "pipeline".into(), message: format!("warning: {message}") });
        plan.notes.splice(0..0, notes);
    }
    finished
}

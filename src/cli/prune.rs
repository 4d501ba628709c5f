//! `bakeroll prune [--keep N] [--yes]`: deregister old AMIs of this pipeline and delete their snapshots.
//! Without `--yes` it only shows what it would delete and why each kept image stays.

use super::{summary_base, Finished, Global, Session};
use crate::core::retention::{PruneDecision, DEFAULT_KEEP};
use crate::engine::retention::{prune_execute, prune_decision, Executed, RegionPrune};
use crate::engine::sites::read_sites;
use crate::error::Result;
use crate::summary::Details;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Keep the newest N available images (in-use and rollback-target images are kept on top).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEEP)]
    pub keep: usize,
    /// Delete for real; without it, only show what would be deleted.
    #[arg(long)]
    pub yes: bool,
    /// Go through the delete calls without making them: print every AWS call, with EC2's DryRun verdict on
    /// each (is the permission there?), and change nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

/// Every region's decision as one: images and orphaned snapshots of all regions (each image names its
/// region), the bake region's last as decided.
fn merged(regions: &[RegionPrune], keep: usize) -> PruneDecision {
    let mut all = PruneDecision { region: None, keep_newest: keep, keep: vec![], delete: vec![], orphan_snapshots: vec![] };
    for r in regions {
        all.keep.extend(r.decision.keep.iter().cloned());
        all.delete.extend(r.decision.delete.iter().cloned());
        all.orphan_snapshots.extend(r.decision.orphan_snapshots.iter().cloned());
    }
    all
}

pub fn text(decision: &PruneDecision, executed: Option<&Executed>) -> String {
    let mut lines = Vec::new();
    let at = |r: &Option<String>| r.as_ref().map(|r| format!(" in {r}")).unwrap_or_default();
    for k in &decision.keep {
        lines.push(format!("keep   {} {}{} ({})", k.ami, k.name, at(&k.region), k.reasons.join("; ")));
    }
    for d in &decision.delete {
        let snaps = if d.snapshots.is_empty() { "no snapshots".into() } else { d.snapshots.join(", ") };
        lines.push(format!("delete {} {}{} created {} with {snaps}", d.ami, d.name, at(&d.region), d.created));
    }
    if !decision.orphan_snapshots.is_empty() {
        lines.push(format!("delete snapshots whose image is gone: {}", decision.orphan_snapshots.join(", ")));
    }
    let snapshots: usize = decision.delete.iter().map(|d| d.snapshots.len()).sum::<usize>() + decision.orphan_snapshots.len();
    lines.push(match executed {
        None if decision.delete.is_empty() && decision.orphan_snapshots.is_empty() => "nothing to delete".into(),
        None => format!("nothing deleted: pass --yes to deregister {} image(s) and delete {snapshots} snapshot(s)", decision.delete.len()),
        Some(e) => format!("deregistered {} image(s), deleted {} snapshot(s)", e.done.len(), e.snapshots_deleted.len()),
    });
    lines.join("\n")
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("prune", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let work = async {
        let sites = read_sites(&session.ctx, &session.every_environment().await?).await?;
        let regions = prune_decision(&sites, args.keep).await?;
        let executed = if args.yes || args.dry_run { Some(prune_execute(&regions).await) } else { None };
        Result::Ok((merged(&regions, args.keep), executed))
    };
    let result = session.interruptible(work).await;
    session.display.finish();
    let mut summary = summary_base(&session, "prune");
    let (decision, executed) = match result {
        Ok(r) => r,
        Err(e) => {
            summary.details = Some(Details::Prune {
                executed: args.yes,
                keep_newest: None,
                keep: None,
                delete: None,
                orphan_snapshots: None,
                deleted: None,
            });
            return super::dry_run::finished(&session, "prune --dry-run", Finished { summary, text: None, result: Err(e), next: None });
        }
    };
    let (done, result) = match executed {
        Some((done, result)) => (Some(done), result),
        None => (None, Ok(())),
    };
    summary.details = Some(Details::Prune {
        executed: args.yes,
        keep_newest: Some(decision.keep_newest),
        keep: Some(decision.keep.clone()),
        delete: Some(decision.delete.clone()),
        orphan_snapshots: Some(decision.orphan_snapshots.clone()),
        // A dry run deleted nothing: its decision (added by dry_run::finished) lists the calls instead.
        deleted: done.clone().filter(|_| !args.dry_run),
    });
    let next = result.is_err().then(|| "run `bakeroll prune --yes` again: it only deletes what is still there".to_string());
    let f = Finished { text: Some(text(&decision, done.as_ref())), summary, result, next };
    super::dry_run::finished(&session, "prune --dry-run", f)
}

//! `bakeroll gc [--older-than 2h] [--yes]`: find and terminate build instances of this pipeline that a
//! dead bake left behind, and report launch-template versions nothing refers to. Without `--yes` it only
//! shows what it would terminate.

use std::time::Duration;

use super::{summary_base, Finished, Global, Session};
use crate::core::retention::human;
use crate::engine::gc::{gc_decision, gc_execute, GcDecision};
use crate::engine::retention::Executed;
use crate::engine::sites::read_sites;
use crate::error::Result;
use crate::summary::Details;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only build instances launched longer ago than this (e.g. 90m, 2h, 0s).
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_duration)]
    pub older_than: Duration,
    /// Terminate for real; without it, only show what would be terminated.
    #[arg(long)]
    pub yes: bool,
    /// Go through the terminate calls without making them: print every AWS call, with EC2's DryRun verdict on
    /// each (is the permission there?), and change nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 90m or 2h"))
}

pub fn text(decision: &GcDecision, executed: Option<&Executed>) -> String {
    let mut lines = Vec::new();
    let b = &decision.build_instances;
    for i in &b.terminate {
        let age = i.age_secs.map(human).unwrap_or_else(|| "?".into());
        lines.push(format!("terminate {} ({}, commit {}, launched {age} ago)", i.id, i.state, i.commit.as_deref().unwrap_or("-")));
    }
    for s in &b.spared {
        lines.push(format!("spare     {} ({}): {}", s.instance.id, s.instance.state, s.reason));
    }
    for c in &decision.stuck_copies {
        let region = c.region.as_deref().unwrap_or("the bake region");
        lines.push(format!("deregister {} {} in {region}: a copy still pending since {} (commit {})", c.ami, c.name, c.created, c.commit.as_deref().unwrap_or("-")));
    }
    let copies = decision.stuck_copies.len();
    lines.push(match executed {
        None if b.terminate.is_empty() && copies == 0 => format!("no build instance or copy older than {} to clean up", human(b.older_than_secs)),
        None => format!("nothing done: pass --yes to terminate {} build instance(s) and deregister {copies} stuck cop{}", b.terminate.len(), if copies == 1 { "y" } else { "ies" }),
        Some(e) => format!("cleaned up {}", if e.done.is_empty() { "nothing".into() } else { e.done.join(", ") }),
    });
    for u in &decision.unreferenced_versions {
        let versions: Vec<String> = u.versions.iter().map(i64::to_string).collect();
        lines.push(format!(
            "unreferenced launch-template versions of {} ({}): {} (report only; `aws ec2 delete-launch-template-versions{} --launch-template-id {} --versions {}`)",
            u.template_name,
            u.groups.join(", "),
            versions.join(", "),
            u.region.as_ref().map(|r| format!(" --region {r}")).unwrap_or_default(),
            u.template_id,
            versions.join(" ")
        ));
    }
    lines.join("\n")
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("gc", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let ctx = &session.ctx;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    let work = async {
        let sites = read_sites(&session.ctx, &session.every_environment().await?).await?;
        let decision = gc_decision(ctx, &sites, args.older_than, now).await?;
        let executed = if args.yes || args.dry_run { Some(gc_execute(ctx, &sites, &decision).await) } else { None };
        Result::Ok((decision, executed))
    };
    let result = session.interruptible(work).await;
    session.display.finish();
    let mut summary = summary_base(&session, "gc");
    let (decision, executed) = match result {
        Ok(r) => r,
        Err(e) => {
            summary.details =
                Some(Details::Gc { executed: args.yes, build_instances: None, stuck_copies: None, unreferenced_versions: None, terminated: None });
            return super::dry_run::finished(&session, "gc --dry-run", Finished { summary, text: None, result: Err(e), next: None });
        }
    };
    let (done, result) = match executed {
        Some((done, result)) => (Some(done), result),
        None => (None, Ok(())),
    };
    summary.details = Some(Details::Gc {
        executed: args.yes,
        build_instances: Some(decision.build_instances.clone()),
        stuck_copies: Some(decision.stuck_copies.clone()),
        unreferenced_versions: Some(decision.unreferenced_versions.clone()),
        // A dry run terminated nothing: its decision (added by dry_run::finished) lists the calls instead.
        terminated: done.as_ref().filter(|_| !args.dry_run).map(|d| d.done.clone()),
    });
    let f = Finished { text: Some(text(&decision, done.as_ref())), summary, result, next: None };
    super::dry_run::finished(&session, "gc --dry-run", f)
}

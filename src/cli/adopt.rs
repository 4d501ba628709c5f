//! `bakeroll adopt [--force] [--dry-run]`: move the environment's launch-configuration groups to launch
//! templates with the same settings, replacing no instance (engine::adopt). Prints one line per group
//! and, for each configuration it left in place, the command that deletes it.

use super::{summary_base, Finished, Global, Session};
use crate::engine::adopt::{self, AdoptOutcome, AdoptReport};
use crate::summary::Details;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Adopt even when the launch configuration sets what a launch template cannot carry (listed).
    #[arg(long)]
    pub force: bool,
    /// Print every AWS call adopt would make (EC2 permissions checked with DryRun) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn text(reports: &[AdoptReport]) -> String {
    let mut lines = Vec::new();
    for r in reports {
        let template = format!("{} ({})", r.template_name.as_deref().unwrap_or("?"), r.template_id.as_deref().unwrap_or("?"));
        lines.push(match r.outcome {
            AdoptOutcome::Adopted => format!(
                "{}: adopted: launch configuration {} -> launch template {template} version 1; same {} instances{}",
                r.group,
                r.launch_configuration.as_deref().unwrap_or("?"),
                r.instances.len(),
                if r.resumed { " (finishing an interrupted adopt)" } else { "" }
            ),
            AdoptOutcome::AlreadyAdopted => format!("{}: already adopted (launch template {template}); nothing changed", r.group),
            AdoptOutcome::NotAConfiguration => format!("{}: runs no launch configuration; nothing to adopt", r.group),
        });
        for n in &r.not_carried {
            lines.push(format!("  not carried over (--force): {n}"));
        }
        if let (AdoptOutcome::Adopted | AdoptOutcome::AlreadyAdopted, Some(cmd)) = (r.outcome, &r.delete_command) {
            lines.push(format!("  the launch configuration is left in place; once nothing uses it: {cmd}"));
        }
    }
    lines.join("\n")
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("adopt", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let env_cfg = match session.settings(global).await {
        Ok(e) => e,
        Err(e) => return Finished { summary: summary_base(&session, "adopt"), text: None, result: Err(e), next: None },
    };
    let env = env_cfg.name.clone();
    let lock = match session.lock(&env_cfg, None).await {
        Ok(l) => l,
        Err(e) => return Finished { summary: summary_base(&session, "adopt"), text: None, result: Err(e), next: None },
    };
    let work = async { Ok(adopt::adopt(&session.ctx, &env_cfg, args.force).await) };
    let (groups, result) = match session.interruptible(work).await {
        Ok((groups, result)) => (groups, result),
        Err(e) => (Vec::new(), Err(e)),
    };
    session.unlock(lock).await;
    session.display.finish();
    let mut summary = summary_base(&session, "adopt");
    summary.env = Some(env.clone());
    let text = result.is_ok().then(|| text(&groups));
    let next = match &result {
        Err(e) if e.exit_code() == crate::error::exit::USAGE => Some(format!("fix what is named, then `bakeroll --env {env} adopt` again")),
        _ => None,
    };
    summary.details = Some(Details::Adopt { groups });
    super::dry_run::finished(&session, "adopt --dry-run", Finished { summary, text, result, next })
}

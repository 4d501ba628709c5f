//! `bakeroll rollback [--to RELEASE]`: put the environment back on an earlier release (default: the one
//! deployed before the current one), undoing a refresh in flight first. Exit codes as `deploy`. It opens
//! with one line saying from which release to which, and why that one.

use super::{summary_base, Finished, Global, Session};
use crate::core::release::GroupState;
use crate::core::releases::TargetSpec;
use crate::engine::releases::ReleaseRef;
use crate::engine::rollback::{self, RollbackDecision, RollbackReport};
use crate::error::{Error, Result};
use crate::summary::{Details, Outcome, Release};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// previous | a commit SHA (or a prefix of 7+ characters) | an AMI id | a launch-template version
    /// number (fewer than 7 digits; `commit:SHA` forces a commit).
    #[arg(long, value_name = "RELEASE", default_value = "previous")]
    pub to: String,
    /// Roll back onto a revoked release named with --to (refused otherwise; `previous` steps over them).
    #[arg(long)]
    pub force: bool,
    /// Print the plan (every AWS call, with EC2's DryRun verdict on each write) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The one line a rollback opens with: every group's move, groups going the same way together.
pub fn headline(d: &RollbackDecision) -> String {
    let mut moves: Vec<(String, Vec<&str>)> = Vec::new();
    for g in &d.groups {
        let what = match (&g.undo, g.refresh) {
            (Some(u), false) => format!("from {} (refresh {} {}) back to {}: {}", u.release.describe(), u.refresh_id, u.status, g.to.describe(), g.why),
            (Some(u), true) => format!("from {} (refresh {} {}) to {}: {}", u.release.describe(), u.refresh_id, u.status, g.to.describe(), g.why),
            (None, _) if g.from == g.to => format!("stays on {}: it already runs {}", g.to.describe(), g.why),
            (None, _) => format!("from {} to {}: {}", g.from.describe(), g.to.describe(), g.why),
        };
        match moves.iter_mut().find(|(w, _)| *w == what) {
            Some((_, groups)) => groups.push(&g.group),
            None => moves.push((what, vec![&g.group])),
        }
    }
    let parts: Vec<String> = moves.into_iter().map(|(what, groups)| format!("{} {what}", groups.join(", "))).collect();
    format!("rolling {} back: {}", d.env, parts.join("; "))
}

/// The summary's `outcome`, in deploy's words, from where the groups ended — never from the exit code.
fn outcome(report: Option<&RollbackReport>, result: &Result<()>) -> Outcome {
    let Some(r) = report else { return Outcome::NotStarted };
    let deploys: Vec<_> = r.groups.iter().filter_map(|g| g.deploy.as_ref()).collect();
    let undone = r.groups.iter().any(|g| g.undo.as_ref().is_some_and(|u| u.outcome.is_some()));
    let unverified = r.groups.iter().any(|g| g.undo.as_ref().is_some_and(|u| matches!(u.outcome, Some(crate::core::rollout::Outcome::Failed { .. }))))
        || deploys.iter().any(|d| d.state == Some(GroupState::Unverified));
    let moved_back = deploys.iter().any(|d| d.state == Some(GroupState::Restored));
    match () {
        _ if unverified => Outcome::Failed,
        _ if moved_back => Outcome::RolledBack,
        _ if result.is_ok() => Outcome::Deployed,
        _ if undone || deploys.iter().any(|d| d.state == Some(GroupState::Verified)) => Outcome::Failed,
        _ => Outcome::NotStarted,
    }
}

fn text(report: &RollbackReport) -> String {
    let groups: Vec<String> = report
        .groups
        .iter()
        .zip(&report.decision.groups)
        .map(|(r, p)| match &r.deploy {
            Some(d) if d.already_deployed => format!("{} already on it", r.group),
            Some(d) => format!("{} on launch-template version {}", r.group, d.new_version.unwrap_or(d.old_version)),
            None if r.undo.is_some() => format!(
                "{} back on version {} (refresh {} rolled back)",
                r.group,
                p.from.version.unwrap_or(0),
                p.undo.as_ref().map(|u| u.refresh_id.as_str()).unwrap_or("?")
            ),
            None => format!("{} already on it", r.group),
        })
        .collect();
    format!("rolled {} back: {}", report.decision.env, groups.join(", "))
}

/// The explicit release every group is going to, when it is one: what a `Next:` line can name with
/// `--to` so that following it moves no group further back than this rollback meant to.
fn explicit_target(d: &RollbackDecision) -> Option<String> {
    let first = d.groups.first()?.to.clone();
    let same = d.groups.iter().all(|g| g.to.ami == first.ami);
    let ReleaseRef { ami, commit, .. } = first;
    same.then(|| commit.or(ami)).flatten()
}

fn next(result: &Result<()>, env: &str, decision: Option<&RollbackDecision>, report: Option<&RollbackReport>) -> Option<String> {
    let to = decision.and_then(explicit_target);
    let again = |what: &str| match &to {
        Some(t) => format!("{what} `bakeroll rollback --env {env} --to {t}` (groups already on it stay as they are)"),
        None => format!("{what} `bakeroll status --env {env}` shows where each group stands before you choose a release (`bakeroll history`)"),
    };
    let stuck = report.is_some_and(|r| r.groups.iter().any(|g| g.deploy.as_ref().is_some_and(|d| d.state == Some(GroupState::Unverified))));
    match result {
        Ok(()) => None,
        Err(Error::RolledBack { .. }) => Some(
            "nothing to undo: every group is verified back where it was before this rollback; the target failed its health checks, so pick another release (`bakeroll history`)".into(),
        ),
        Err(_) if stuck => {
            let groups: Vec<String> = report
                .into_iter()
                .flat_map(|r| r.groups.iter())
                .filter(|g| g.deploy.as_ref().is_some_and(|d| d.state == Some(GroupState::Unverified)))
                .map(|g| format!("`aws autoscaling describe-instance-refreshes --auto-scaling-group-name {}`", g.group))
                .collect();
            Some(again(&format!("look at {}; then", groups.join(" and "))))
        }
        Err(Error::NeedsHuman { .. }) => Some(again("look at the refreshes in the state above; then")),
        // A second signal: bakeroll left while AWS goes on.
        Err(Error::Interrupted { .. }) if decision.is_some() && report.is_none() => {
            Some(again(&format!("let the refreshes above end (`bakeroll status --env {env}` shows each group); then")))
        }
        Err(Error::Interrupted { .. }) if decision.is_some() => Some(again("every group is verified where the State above says; to finish the rollback, run")),
        Err(e) if e.exit_code() == crate::error::exit::USAGE => Some("`bakeroll history` lists the releases you can roll back to".into()),
        Err(_) => None,
    }
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let spec = match TargetSpec::parse(&args.to) {
        Ok(s) => s,
        Err(e) => return Finished::early("rollback", Error::Usage(e)),
    };
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("rollback", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let finished = run_session(global, &args, &spec, &session).await;
    super::dry_run::finished(&session, "rollback --dry-run", finished)
}

async fn run_session(global: &Global, args: &Args, spec: &TargetSpec, session: &Session) -> Finished {
    let mut summary = summary_base(session, "rollback");
    let fail = |summary, e| Finished { summary, text: None, result: Err(e), next: None };
    let env = match session.settings(global).await {
        Ok(env) => env,
        Err(e) => return fail(summary, e),
    };
    summary.env = Some(env.name.clone());
    let lock = match session.lock(&env, None).await {
        Ok(l) => l,
        Err(e) => return fail(summary, e),
    };
    let ctx = &session.ctx;
    let decided = session.interruptible(rollback::decide(ctx, &env, spec, &args.to, args.force)).await;
    let (decision, report, result) = match decided {
        Ok(d) => {
            session.display.say(&env.name, headline(&d));
            match session.interruptible(async { Ok(rollback::execute(ctx, &env, &d).await) }).await {
                Ok((report, result)) => (Some(d), Some(report), result),
                Err(e) => (Some(d), None, Err(e)),
            }
        }
        Err(e) => (None, None, Err(e)),
    };
    session.unlock(lock).await;
    session.display.finish();
    summary.outcome = Some(outcome(report.as_ref(), &result));
    summary.details = Some(Details::Rollback {
        target: args.to.clone(),
        headline: decision.as_ref().map(headline),
        rollback: decision.clone(),
        groups: report.as_ref().map(|r| r.groups.clone()),
    });
    if let Some(to) = decision.as_ref().and_then(|d| d.groups.first()).map(|g| &g.to) {
        summary.release = Some(Release { ami: to.ami.clone().unwrap_or_default(), commit: to.commit.clone() });
    }
    let next = next(&result, &env.name, decision.as_ref(), report.as_ref());
    let text = report.as_ref().filter(|_| result.is_ok()).map(text);
    session.stamp(&mut summary);
    Finished { summary, text, result, next }
}

//! `bakeroll rollback [--to RELEASE]`: put the environment back on an earlier release (default: the one
//! deployed before the current one), undoing a refresh in flight first. Exit codes as `deploy`.

use super::{summary_base, Finished, Global, Session};
use crate::core::releases::TargetSpec;
use crate::engine::rollback::{self, RollbackReport};
use crate::error::{exit, Error, Result};
use crate::summary::{Details, Outcome, Release};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// previous | a commit SHA (or a prefix of 7+ characters) | an AMI id | a launch-template version
    /// number (fewer than 7 digits; `commit:SHA` forces a commit).
    #[arg(long, value_name = "RELEASE", default_value = "previous")]
    pub to: String,
    /// Print the plan (every AWS call, with EC2's DryRun verdict on each write) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The `outcome` key, in deploy's words: `deployed` means verified on the chosen release.
fn outcome(result: &Result<()>, report: Option<&RollbackReport>) -> Outcome {
    match (result, report) {
        (Ok(()), _) => Outcome::Deployed,
        (Err(e), _) if e.exit_code() == exit::ROLLED_BACK => Outcome::RolledBack,
        (Err(_), Some(r)) if r.groups.iter().any(|g| g.undo.is_some() || g.deploy.as_ref().is_some_and(|d| d.outcome.is_some())) => {
            Outcome::Failed
        }
        _ => Outcome::NotStarted,
    }
}

pub fn text(report: &RollbackReport) -> String {
    let groups: Vec<String> = report
        .groups
        .iter()
        .zip(&report.plan.groups)
        .map(|(r, p)| match &r.deploy {
            Some(d) if d.already_deployed => format!("{} already on it", r.group),
            Some(d) => format!("{} on launch-template version {}", r.group, d.new_version.unwrap_or(d.old_version)),
            None if r.undo.is_some() => format!("{} back on version {} (refresh {} rolled back)", r.group, p.from.version.unwrap_or(0), p.undo.as_ref().map(|u| u.refresh_id.as_str()).unwrap_or("?")),
            None => format!("{} already on it", r.group),
        })
        .collect();
    let to = report.plan.groups.first().map(|g| g.to.describe()).unwrap_or_default();
    format!("rolled {} back to {to}: {}", report.plan.env, groups.join(", "))
}

fn next(result: &Result<()>, env: &str) -> Option<String> {
    match result {
        Err(e) if e.exit_code() == exit::ROLLED_BACK => {
            Some("the target release failed its health checks and the fleet is back where it was; pick another (`bakeroll history`)".into())
        }
        Err(e) if e.exit_code() == exit::NEEDS_HUMAN || e.exit_code() == exit::INTERRUPTED => Some(format!(
            "`bakeroll status --env {env}` shows where each group stands; `aws autoscaling describe-instance-refreshes --auto-scaling-group-name <group>` the refreshes"
        )),
        Err(e) if e.exit_code() == exit::USAGE => Some("`bakeroll history` lists the releases you can roll back to".into()),
        _ => None,
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
    let (env, env_cfg) = match session.ctx.pipeline.environment(global.env.as_deref()) {
        Ok((n, e)) => (n, e.clone()),
        Err(e) => return Finished { summary: summary_base(&session, "rollback"), text: None, result: Err(e.into()), next: None },
    };
    let ctx = &session.ctx;
    let lock = match session.lock(&env, &env_cfg, None).await {
        Ok(l) => l,
        Err(e) => return Finished { summary: summary_base(&session, "rollback"), text: None, result: Err(e), next: None },
    };
    let work = async {
        let plan = rollback::plan(ctx, &env, &env_cfg, &spec, &args.to).await?;
        Ok(rollback::execute(ctx, &env_cfg, &plan).await)
    };
    let (report, result) = match session.interruptible(work).await {
        Ok((report, result)) => (Some(report), result.map_err(|e| session.after_stop(e))),
        Err(e) => (None, Err(e)),
    };
    session.unlock(lock).await;
    session.display.finish();
    let mut summary = summary_base(&session, "rollback");
    summary.env = Some(env.clone());
    summary.outcome = Some(outcome(&result, report.as_ref()));
    summary.details = Some(Details::Rollback {
        target: args.to.clone(),
        rollback: report.as_ref().map(|r| r.plan.clone()),
        groups: report.as_ref().map(|r| r.groups.clone()),
    });
    if let Some(to) = report.as_ref().and_then(|r| r.plan.groups.first()).map(|g| &g.to) {
        summary.release = Some(Release { ami: to.ami.clone().unwrap_or_default(), commit: to.commit.clone() });
    }
    let next = next(&result, &env);
    let text = report.as_ref().filter(|_| result.is_ok()).map(text);
    super::dry_run::finished(&session, "rollback --dry-run", Finished { summary, text, result, next })
}

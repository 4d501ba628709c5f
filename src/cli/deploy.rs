//! `bakeroll deploy`: roll the environment onto an AMI (given, or the one baked for a commit).

use std::path::PathBuf;

use super::{check_writable, resolve_commit, summary_base, write_dotenv, Finished, Global, Session};
use crate::core::rollout::Outcome as GroupOutcome;
use crate::summary::{Outcome, Release, Summary};
use crate::engine::deploy::{self, DeployReport, DeployRequest};
use crate::error::Result;

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("release").required(true).args(["ami", "commit"])))]
pub struct Args {
    /// The AMI to deploy.
    #[arg(long, value_name = "AMI_ID")]
    pub ami: Option<String>,
    /// Deploy the AMI baked for this commit.
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Write DEPLOY_OUTCOME, AMI_ID, RELEASE and BAKEROLL_ENV as KEY=value lines.
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    pub dotenv: Option<PathBuf>,
    /// Deploy even if the fleet is already unhealthy before the deploy.
    #[arg(long)]
    pub force: bool,
    /// Print every AWS call the deploy would make and change nothing (EC2 permissions checked with DryRun).
    #[arg(long)]
    pub dry_run: bool,
}

/// Deploys and fills the summary; shared with `ship`.
pub async fn execute(
    session: &Session,
    env_name: Option<&str>,
    image: String,
    commit: Option<String>,
    force: bool,
    summary: &mut Summary,
) -> (Option<DeployReport>, Result<()>, Option<String>) {
    let (env, env_cfg) = match session.ctx.pipeline.environment(env_name) {
        Ok((n, e)) => (n, e.clone()),
        Err(e) => return (None, Err(e.into()), None),
    };
    let req = DeployRequest { env: env.clone(), image_id: image, commit, force, existing_version: None };
    let (report, result) = session.interruptible(async { Ok(deploy::deploy(&session.ctx, &env_cfg, &req).await) }).await.map_or_else(
        |e| (None, Err(e)),
        |(report, result)| (Some(report), result.map_err(|e| session.after_stop(e))),
    );
    summary.env = Some(env.clone());
    summary.release = Some(Release { ami: req.image_id.clone(), commit: req.commit.clone() });
    summary.deploy = report.clone();
    summary.outcome = Some(match (&result, report.as_ref()) {
        (Ok(()), _) => Outcome::Deployed,
        (Err(e), _) if e.exit_code() == crate::error::exit::ROLLED_BACK => Outcome::RolledBack,
        (Err(e), Some(r)) if e.exit_code() == crate::error::exit::NEEDS_HUMAN || r.groups.iter().any(|g| g.outcome.is_some()) => {
            Outcome::Failed
        }
        _ => Outcome::NotStarted,
    });
    let next = match &result {
        Err(e) => next_step(e.exit_code(), &env, &req.image_id, report.as_ref()),
        Ok(()) => None,
    };
    (report, result, next)
}

/// The command to run after a failed deploy, naming the real groups and releases.
fn next_step(code: i32, env: &str, image: &str, report: Option<&DeployReport>) -> Option<String> {
    use crate::error::exit;
    let groups: Vec<&crate::engine::deploy::GroupReport> = report.map(|r| r.groups.iter().collect()).unwrap_or_default();
    let previous: Vec<String> = groups.iter().filter(|g| !g.already_deployed).map(|g| format!("{} ({})", g.old_image, g.group)).collect();
    let previous = if previous.is_empty() { "the previous release".to_string() } else { previous.join(", ") };
    match code {
        exit::ROLLED_BACK => Some(format!(
            "nothing to undo: {env} runs {previous} again. Fix the release and ship a new commit; AMI {image} is kept so you can launch it and see why it fails its health checks"
        )),
        exit::NEEDS_HUMAN | exit::INTERRUPTED => {
            let inspect: Vec<String> = groups
                .iter()
                .filter(|g| !matches!(g.outcome, Some(GroupOutcome::Deployed) | Some(GroupOutcome::RolledBack { .. })))
                .map(|g| format!("`aws autoscaling describe-instance-refreshes --auto-scaling-group-name {}`", g.group))
                .collect();
            let inspect = if inspect.is_empty() { String::new() } else { format!("look at {}; then ", inspect.join(" and ")) };
            Some(format!("{inspect}run `bakeroll rollback --env {env}` to return to {previous}"))
        }
        _ => None,
    }
}

pub fn dotenv_vars(env: &str, image: &str, commit: Option<&str>, outcome: Option<Outcome>) -> Vec<(&'static str, String)> {
    vec![
        ("DEPLOY_OUTCOME", outcome.map(Outcome::as_str).unwrap_or_default().to_string()),
        ("AMI_ID", image.to_string()),
        ("RELEASE", commit.unwrap_or("").to_string()),
        ("BAKEROLL_ENV", env.to_string()),
    ]
}

pub fn text(report: &DeployReport) -> String {
    let groups: Vec<String> = report
        .groups
        .iter()
        .map(|g| {
            let mut line = match (&g.outcome, g.already_deployed) {
                (Some(GroupOutcome::Deployed), true) => format!("{} already on it", g.group),
                (_, _) => format!("{} on launch-template version {}", g.group, g.new_version.unwrap_or(g.old_version)),
            };
            if let Some(pool) = g.warm_pool.as_ref().filter(|p| !p.is_empty()) {
                line.push_str(&format!(" (warm pool: {} instances on it)", pool.iter().filter(|i| i.image.as_deref() == Some(g.new_image.as_str())).count()));
            }
            for l in &g.left_behind {
                line.push_str(&format!("; {} left on {} ({}), not verified", l.id, l.image, l.because));
            }
            line
        })
        .collect();
    format!("deployed {} to {}: {}", report.ami, report.env, groups.join(", "))
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("deploy", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let finished = run_session(global, &args, &session).await;
    super::dry_run::finished(&session, "deploy --dry-run", finished)
}

async fn run_session(global: &Global, args: &Args, session: &Session) -> Finished {
    let summary = summary_base(session, "deploy");
    if let Some(path) = &args.dotenv {
        if let Err(e) = check_writable(path, "--dotenv") {
            return Finished { summary, text: None, result: Err(e), next: None };
        }
    }
    let (env_name, env) = match session.ctx.pipeline.environment(global.env.as_deref()) {
        Ok((n, e)) => (n, e.clone()),
        Err(e) => return Finished { summary, text: None, result: Err(e.into()), next: None },
    };
    // A malformed --commit is refused before the lock is taken (it would be after, in deploy_locked).
    if let Some(Err(e)) = args.commit.as_deref().map(|c| resolve_commit(Some(c))) {
        return Finished { summary, text: None, result: Err(e), next: None };
    }
    let lock = match session.lock(&env_name, &env, args.commit.as_deref()).await {
        Ok(l) => l,
        Err(e) => return Finished { summary, text: None, result: Err(e), next: None },
    };
    let mut finished = deploy_locked(global, args, session, summary).await;
    session.unlock(lock).await;
    // Releasing the lock takes calls too: the summary counts every call of the run.
    session.stamp(&mut finished.summary);
    finished
}

async fn deploy_locked(global: &Global, args: &Args, session: &Session, mut summary: Summary) -> Finished {
    let (image, commit) = match (&args.ami, &args.commit) {
        (Some(ami), c) => (ami.clone(), c.clone()),
        (None, Some(c)) => match resolve_commit(Some(c)) {
            Ok(c) => match crate::engine::images::ami_of_commit(&session.ctx, &c).await {
                Ok(ami) => (ami, Some(c)),
                Err(e) => return Finished { summary, text: None, result: Err(e), next: None },
            },
            Err(e) => return Finished { summary, text: None, result: Err(e), next: None },
        },
        (None, None) => unreachable!("clap requires --ami or --commit"),
    };
    let (report, result, next) = execute(session, global.env.as_deref(), image.clone(), commit.clone(), args.force, &mut summary).await;
    session.display.finish();
    session.stamp(&mut summary);
    let env = summary.env.clone().unwrap_or_default();
    let mut result = result;
    if let Some(path) = &args.dotenv {
        let done = format!("deploy {}", summary.outcome.map_or("not started", |o| o.as_str()));
        if let Err(e) = write_dotenv(path, &dotenv_vars(&env, &image, commit.as_deref(), summary.outcome), &done) {
            result = result.and(Err(e));
        }
    }
    let text = report.as_ref().map(text);
    Finished { summary, text, result, next }
}

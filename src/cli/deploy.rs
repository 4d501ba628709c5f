//! `bakeroll deploy`: roll the environment onto an AMI (given, or the one baked for a commit), wave by wave.

use std::path::PathBuf;

use super::{check_writable, resolve_commit, summary_base, write_dotenv, Finished, Global, Session};
use crate::engine::deploy::{self, DeployRequest};
use crate::summary::Release;

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

pub async fn run(global: &Global, args: Args) -> Finished {
    // A malformed --commit is refused before anything else.
    let commit = match args.commit.as_deref().map(|c| resolve_commit(Some(c))).transpose() {
        Ok(c) => c,
        Err(e) => return Finished::early("deploy", e),
    };
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("deploy", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let finished = run_session(global, &args, commit, &session).await;
    super::dry_run::finished(&session, "deploy --dry-run", finished)
}

async fn run_session(global: &Global, args: &Args, commit: Option<String>, session: &Session) -> Finished {
    let mut summary = summary_base(session, "deploy");
    let fail = |summary, e| Finished { summary, text: None, result: Err(e), next: None };
    if let Some(path) = &args.dotenv {
        if let Err(e) = check_writable(path, "--dotenv") {
            return fail(summary, e);
        }
    }
    let env = match session.settings(global).await {
        Ok(env) => env,
        Err(e) => return fail(summary, e),
    };
    summary.env = Some(env.name.clone());
    let lock = match session.lock(&env, commit.as_deref()).await {
        Ok(l) => l,
        Err(e) => return fail(summary, e),
    };
    let ctx = &session.ctx;
    let work = async {
        Ok(match (&args.ami, &commit) {
            (Some(ami), _) => {
                let req = DeployRequest { env: env.name.clone(), image_id: ami.clone(), commit: commit.clone(), force: args.force, targets: Default::default(), images: Default::default() };
                deploy::deploy(ctx, &env, &req).await
            }
            (None, Some(c)) => deploy::deploy_commit(ctx, &env, c, args.force).await,
            (None, None) => unreachable!("clap requires --ami or --commit"),
        })
    };
    let (report, mut result) = match session.interruptible(work).await {
        Ok((report, result)) => (Some(report), result),
        Err(e) => (None, Err(e)),
    };
    session.unlock(lock).await;
    session.display.finish();
    let outcome = super::outcome::of_release(report.as_ref());
    summary.outcome = Some(outcome);
    if let Some(r) = report.as_ref().filter(|r| !r.ami.is_empty()) {
        summary.release = Some(Release { ami: r.ami.clone(), commit: r.commit.clone() });
    }
    let image = report.as_ref().map(|r| r.ami.clone()).filter(|a| !a.is_empty()).or_else(|| args.ami.clone()).unwrap_or_default();
    if let Some(path) = &args.dotenv {
        let done = format!("deploy {}", outcome.as_str());
        if let Err(e) = write_dotenv(path, &super::outcome::deploy_vars(&env.name, &image, commit.as_deref(), outcome, report.as_ref()), &done) {
            result = result.and(Err(e));
        }
    }
    let next = result.as_ref().err().and_then(|e| super::outcome::after_deploy(&env.name, report.as_ref(), e, &session.ctx.ledger));
    let text = report.as_ref().filter(|_| result.is_ok()).map(super::outcome::deployed_text);
    summary.deploy = report;
    // Releasing the lock takes calls too: the summary counts every call of the run.
    session.stamp(&mut summary);
    Finished { summary, text, result, next }
}

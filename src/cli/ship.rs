//! `bakeroll ship`: bake the commit's AMI, then deploy it (what a GitLab job on every commit runs).

use std::path::PathBuf;

use super::{check_writable, parse_tag, summary_base, write_dotenv, Finished, Global, Session};
use crate::engine::deploy::preflight_all;
use crate::engine::preflight::ReleaseKey;
use crate::engine::bake;

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
    let bake_args = super::bake::Args {
        commit: args.commit.clone(),
        build_instance: None,
        dotenv: None,
        tags: args.tags.clone(),
        dry_run: args.dry_run,
    };
    let req = match bake_args.request() {
        Ok(r) => r,
        Err(e) => return Finished::early("ship", e),
    };
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("ship", e),
    };
    if args.dry_run {
        super::dry_run::start(&mut session);
    }
    let finished = run_session(global, &args, &req, &session).await;
    super::dry_run::finished(&session, "ship --dry-run", finished)
}

async fn run_session(global: &Global, args: &Args, req: &bake::BakeRequest, session: &Session) -> Finished {
    // Everything a deploy needs is checked before the bake: a typo, a held environment or an unhealthy
    // fleet should not cost a 20-minute bake and leave an image nobody deploys.
    let early = |e| Finished { summary: summary_base(session, "ship"), text: None, result: Err(e), next: None };
    if let Some(path) = &args.dotenv {
        if let Err(e) = check_writable(path, "--dotenv") {
            return early(e);
        }
    }
    let (env_name, env) = match session.ctx.pipeline.environment(global.env.as_deref()) {
        Ok((n, e)) => (n, e.clone()),
        Err(e) => return early(e.into()),
    };
    let lock = match session.lock(&env_name, &env, Some(&req.commit)).await {
        Ok(l) => l,
        Err(e) => return early(e),
    };
    let release = ReleaseKey { ami: None, commit: Some(&req.commit) };
    let checked = session.interruptible(preflight_all(&session.ctx, &env, release, args.force)).await;
    let mut finished = match checked {
        Ok(_) => bake_and_deploy(global, args, req, session).await,
        Err(e) => early(e),
    };
    session.unlock(lock).await;
    // Releasing the lock takes calls too: the summary counts every call of the run.
    session.stamp(&mut finished.summary);
    finished
}

async fn bake_and_deploy(global: &Global, args: &Args, req: &bake::BakeRequest, session: &Session) -> Finished {
    let baked = session.interruptible(bake::bake(&session.ctx, req)).await;
    let mut summary = summary_base(session, "ship");
    let baked = match baked {
        Ok(b) => b,
        Err(e) => {
            session.display.finish();
            return Finished { summary, text: None, result: Err(e), next: None };
        }
    };
    summary.bake = Some(baked.clone());
    let (report, mut result, next) =
        super::deploy::execute(session, global.env.as_deref(), baked.ami_id.clone(), Some(baked.commit.clone()), args.force, &mut summary).await;
    session.display.finish();
    session.stamp(&mut summary);
    if let Some(path) = &args.dotenv {
        let env = summary.env.clone().unwrap_or_default();
        let mut vars = super::bake::dotenv_vars(&baked);
        let deploy_vars = super::deploy::dotenv_vars(&env, &baked.ami_id, Some(&baked.commit), summary.outcome);
        vars.extend(deploy_vars.into_iter().filter(|(k, _)| *k != "AMI_ID" && *k != "RELEASE"));
        let done = format!("image {} baked; deploy {}", baked.ami_id, summary.outcome.map_or("not started", |o| o.as_str()));
        if let Err(e) = write_dotenv(path, &vars, &done) {
            result = result.and(Err(e));
        }
    }
    let text = report.as_ref().map(super::deploy::text);
    Finished { summary, text, result, next }
}

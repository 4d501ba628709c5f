//! The ship workflow as the command line runs it, for `ship` and `plan` (= `ship --dry-run`): a session,
//! the environment resolved once, the deploy lock, `engine::ship`, and what the user is told at the end.

use std::path::PathBuf;

use super::{bake_request, check_writable, summary_base, write_dotenv, Finished, Global, Session};
use crate::engine::ship;
use crate::summary::Release;

/// What `ship` and `plan` ask for.
pub struct ShipInput {
    /// The summary's `command`.
    pub command: &'static str,
    pub commit: Option<String>,
    pub tags: Vec<(String, String)>,
    pub force: bool,
    pub dry_run: bool,
    pub dotenv: Option<PathBuf>,
}

pub async fn ship(global: &Global, input: ShipInput) -> Finished {
    let req = match bake_request(input.commit.as_deref(), None, &input.tags) {
        Ok(r) => r,
        Err(e) => return Finished::early(input.command, e),
    };
    let mut session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early(input.command, e),
    };
    if input.dry_run {
        super::dry_run::start(&mut session);
    }
    // A bake that cannot become ready would wait out bake.timeout: said first (in a dry run, on stderr and
    // as the plan's first note).
    let warnings = session.ctx.pipeline.bake_warnings();
    if input.dry_run {
        crate::display::dry_run::print_warnings(&warnings);
    }
    for w in warnings {
        session.ctx.events.warn("pipeline", w);
    }
    let finished = run_session(global, &input, &req, &session).await;
    super::dry_run::finished(&session, "ship --dry-run", finished)
}

async fn run_session(global: &Global, input: &ShipInput, req: &crate::engine::bake::BakeRequest, session: &Session) -> Finished {
    let mut summary = summary_base(session, input.command);
    let fail = |summary, e| Finished { summary, text: None, result: Err(e), next: None };
    if let Some(path) = &input.dotenv {
        if let Err(e) = check_writable(path, "--dotenv") {
            return fail(summary, e);
        }
    }
    let env = match session.settings(global).await {
        Ok(env) => env,
        Err(e) => return fail(summary, e),
    };
    summary.env = Some(env.name.clone());
    let lock = match session.lock(&env, Some(&req.commit)).await {
        Ok(l) => l,
        Err(e) => return fail(summary, e),
    };
    let work = async { Ok(ship::ship(&session.ctx, &env, req, input.force).await) };
    let (shipped, mut result) = match session.interruptible(work).await {
        Ok((shipped, result)) => (shipped, result),
        Err(e) => (ship::Shipped::default(), Err(e)),
    };
    session.unlock(lock).await;
    session.display.finish();
    let outcome = super::outcome::of_release(shipped.deploy.as_ref());
    summary.outcome = Some(outcome);
    if let Some(baked) = &shipped.baked {
        summary.release = Some(Release { ami: baked.ami_id.clone(), commit: Some(baked.commit.clone()) });
    }
    if let (Some(path), Some(baked)) = (&input.dotenv, &shipped.baked) {
        let mut vars = super::outcome::bake_vars(baked);
        let deploy_vars = super::outcome::deploy_vars(&env.name, &baked.ami_id, Some(&baked.commit), outcome, shipped.deploy.as_ref());
        vars.extend(deploy_vars.into_iter().filter(|(k, _)| k != "AMI_ID" && k != "RELEASE"));
        let done = format!("image {} baked; deploy {}", baked.ami_id, outcome.as_str());
        if let Err(e) = write_dotenv(path, &vars, &done) {
            result = result.and(Err(e));
        }
    }
    let next = result.as_ref().err().and_then(|e| super::outcome::after_deploy(&env.name, shipped.deploy.as_ref(), e, &session.ctx.ledger));
    let text = shipped.deploy.as_ref().filter(|_| result.is_ok()).map(super::outcome::deployed_text);
    summary.bake = shipped.baked;
    summary.deploy = shipped.deploy;
    // Releasing the lock takes calls too: the summary counts every call of the run.
    session.stamp(&mut summary);
    Finished { summary, text, result, next }
}

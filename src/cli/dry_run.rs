//! What `--dry-run` changes in a command, and the only place that knows a run is a dry run: the
//! session's cloud is wrapped by a recording `DryRun` (reads real, writes and waits only recorded) and
//! the engine's events label the plan; at the end the plan goes into the JSON summary or on stdout as
//! text, and any permission EC2's DryRun refused becomes exit 5.

use std::sync::Arc;

use super::{Finished, Output, Session};
use crate::cloud::dry_run::DryRun;
use crate::engine::Ctx;
use crate::error::{exit, Error, Result};
use crate::events::Events;
use crate::summary::Outcome;

/// `ctx` as a dry run sees it: the same pipeline and ledger over `dry`'s recording of `ctx`'s cloud,
/// with every event going into the plan (phases label its steps, info and warnings become notes).
pub fn context(dry: &DryRun, ctx: &Ctx) -> Ctx {
    Ctx { cloud: dry.wrap(ctx.cloud.clone()), events: Events(Arc::new(dry.clone())), places: { let d = dry.clone(); ctx.places.map(move |c| d.wrap(c)) }, ..ctx.clone() }
}

/// Turns the session into a dry run. Call before any AWS work.
pub fn start(session: &mut Session) {
    let dry = DryRun::default();
    session.ctx = context(&dry, &session.ctx);
    session.dry_run = Some(dry);
}

/// For a dry-run session: adds `dry_run` and `plan` to the summary, prints the plan (text mode), and
/// fails with exit 5 naming every action EC2 refused. Other sessions' results pass unchanged.
pub fn finished(session: &Session, command: &str, mut f: Finished) -> Finished {
    let Some(plan) = &session.dry_run else { return f };
    f.result = f.result.and_then(|()| denied(plan));
    f.summary.dry_run = Some(true);
    f.summary.plan = Some(plan.report());
    // Whatever happened, a dry run changed nothing.
    f.summary.outcome = Some(if f.result.is_ok() { Outcome::Planned } else { Outcome::NotStarted });
    if session.global_output == Output::Text {
        crate::display::dry_run::print(command, plan);
    }
    f.text = None;
    f.next = match &f.result {
        Err(e) if e.exit_code() == exit::DENIED => {
            Some("grant what is missing (`bakeroll iam-policy` prints the policy this pipeline needs), then dry-run again".into())
        }
        _ => None,
    };
    f
}

fn denied(plan: &DryRun) -> Result<()> {
    let denials = plan.denials();
    let Some(first) = denials.first() else { return Ok(()) };
    let mut source = first.to_error();
    let mut others: Vec<&str> = Vec::new();
    for d in &denials[1..] {
        if d.action != first.action && !others.contains(&d.action.as_str()) {
            others.push(&d.action);
        }
    }
    if !others.is_empty() {
        source.message = format!("{}; also denied: {}", source.message, others.join(", "));
    }
    Err(Error::Denied { state: "nothing was changed (dry run)".into(), source, region: None })
}

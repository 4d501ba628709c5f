//! `bakeroll history`: each group's releases, newest first — when, commit, AMI, launch-template version
//! and outcome — from the launch-template versions deploy records (kept for good) sharpened by the
//! refreshes AWS still keeps (six weeks). Read-only.

use super::{summary_base, Finished, Global, Session};
use crate::engine::releases::GroupHistory;
use crate::error::Result;
use crate::summary::Details;

/// `--limit` default: enough to see the last few weeks of a busy pipeline on one screen.
pub const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Show at most N releases per group, newest first.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub limit: usize,
}

async fn collect(session: &Session, global: &Global, limit: usize) -> Result<Vec<GroupHistory>> {
    let mut out = Vec::new();
    let environments = session.environments(global)?;
    // One DescribeImages for the marks of every release (verified, failed, revoked): the pipeline's images
    // live in the bake region and account, where the marks are written.
    let images = crate::engine::promote::pipeline_images(&session.ctx).await?;
    for env in environments {
        let ctx = session.context_for(&env).await?;
        for name in &env.group_names() {
            let state = session.group_state(&ctx, &env, name).await?;
            let mut releases = state.history();
            // Another region's releases are its copies, judged by their sources' marks.
            let here = crate::engine::promote::images_in(&ctx, env.group(name).region.as_deref(), &images).await?;
            crate::engine::promote::annotate_history(&mut releases, &here);
            let more = releases.len().saturating_sub(limit);
            releases.truncate(limit);
            out.push(GroupHistory {
                env: env.name.clone(),
                group: name.clone(),
                template_id: state.template.id.clone(),
                current_version: state.current,
                more,
                releases,
            });
        }
    }
    Ok(out)
}

pub fn text(groups: &[GroupHistory]) -> String {
    let mut lines = Vec::new();
    for g in groups {
        let on = g.current_version.map(|v| format!(", on version {v}")).unwrap_or_default();
        lines.push(format!("{} (environment {}){on}:", g.group, g.env));
        lines.push(format!("  {:<7}  {:<20}  {:<14}  {:<21}  {:<11}  {}", "VERSION", "WHEN", "COMMIT", "AMI", "OUTCOME", "DETAIL"));
        for r in &g.releases {
            let commit: String = r.commit.as_deref().unwrap_or(if r.bakeroll { "-" } else { "(not bakeroll)" }).chars().take(14).collect();
            let when: String = r.at.as_deref().unwrap_or("-").chars().take(20).collect();
            lines.push(format!(
                "  {:<7}  {:<20}  {:<14}  {:<21}  {:<11}  {}{}",
                r.version,
                when,
                commit,
                r.ami.as_deref().unwrap_or("-"),
                r.outcome.as_str(),
                r.detail,
                annotations(r)
            ));
        }
        if g.more > 0 {
            lines.push(format!("  … {} older (--limit)", g.more));
        }
    }
    lines.join("\n")
}

/// `; forced (revoked); REVOKED at …: reason; verified in staging at …`: what `--force` overrode to deploy
/// it, and its image's marks.
fn annotations(r: &crate::core::releases::ReleaseRecord) -> String {
    let mut out = String::new();
    if let Some(f) = &r.forced {
        out.push_str(&format!("; deployed with --force over: {f}"));
    }
    if let Some(m) = r.marks.as_ref() {
        if let Some(rev) = &m.revoked {
            out.push_str(&format!("; REVOKED at {}: {}", rev.at, rev.reason));
        }
        let standing = crate::core::promotion::ImageMarks { revoked: None, ..m.clone() };
        if !standing.is_empty() {
            out.push_str(&format!("; {}", standing.describe()));
        }
    }
    out
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("history", e),
    };
    let result = session.interruptible(collect(&session, global, args.limit)).await;
    session.display.finish();
    let mut summary = summary_base(&session, "history");
    match result {
        Ok(groups) => {
            let text = text(&groups);
            summary.details = Some(Details::History { groups });
            Finished { summary, text: Some(text), result: Ok(()), next: None }
        }
        Err(e) => Finished { summary, text: None, result: Err(e), next: None },
    }
}

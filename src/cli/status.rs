//! `bakeroll status`: per Auto Scaling group, the release it runs (commit, AMI, launch-template version),
//! the refresh in flight, healthy/total per target group and instances per image. Read-only.

use super::{summary_base, Finished, Global, Session};
use crate::display::counts_text;
use crate::engine::releases::{status, GroupStatus};
use crate::error::Result;
use crate::summary::Details;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

async fn collect(session: &Session, global: &Global) -> Result<Vec<GroupStatus>> {
    let mut out = Vec::new();
    let environments = session.environments(global)?;
    // One DescribeImages for the marks and protection of every release image (the bake region's).
    let images = crate::engine::promote::pipeline_images(&session.ctx).await?;
    for env in environments {
        let ctx = session.context_for(&env).await?;
        for scope in env.group_names() {
            let state = session.group_state(&ctx, &env, &scope).await?;
            let settings = env.group(&scope);
            let mut group = status(&ctx.place(settings.region.as_deref()), &state, settings.prefs.left_alone()).await?;
            group.group = scope;
            // Another region's group runs a copy, judged by its source's marks.
            let here = crate::engine::promote::images_in(&ctx, settings.region.as_deref(), &images).await?;
            crate::engine::promote::annotate_status(&mut group, &state, &here);
            out.push(group);
        }
    }
    Ok(out)
}

pub fn text(groups: &[GroupStatus]) -> String {
    let mut lines = Vec::new();
    for g in groups {
        lines.push(format!("{} (environment {}): {}", g.group, g.env, g.release.describe()));
        if let Some(m) = g.marks.as_ref().filter(|m| !m.is_empty()) {
            lines.push(format!("  marks: {}", m.describe()));
        }
        if g.protected == Some(true) {
            lines.push("  its image is protected from deregistration".into());
        }
        if let Some(t) = &g.rollback_target {
            let skipped = if t.skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipping {})", t.skipped.iter().map(|s| s.describe()).collect::<Vec<_>>().join("; "))
            };
            let protected = if t.protected == Some(true) { ", protected from deregistration" } else { "" };
            match &t.release {
                Some(r) => lines.push(format!("  rollback target: {}{protected}{skipped}", r.describe())),
                None => lines.push(format!("  rollback target: none fit{skipped}")),
            }
        }
        if g.version_ref.starts_with('$') {
            lines.push(format!("  launch template {} on {} (version {})", g.template_id, g.version_ref, g.release.version.unwrap_or(0)));
        }
        let last = g.last_refresh.as_ref().map(|r| format!("; last {} {}", r.id, r.status)).unwrap_or_default();
        match &g.refresh {
            Some(r) => lines.push(format!(
                "  refresh in flight: {} {} {}% to version {}",
                r.id,
                r.status,
                r.percent.unwrap_or(0),
                r.desired_version.as_deref().unwrap_or("?")
            )),
            None => lines.push(format!("  refresh: none in flight{last}")),
        }
        lines.push(format!("  {} of {} desired instances in service; {}", g.in_service, g.desired, counts_text(&g.target_groups, 0)));
        for i in &g.images {
            let commit = i.commit.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            lines.push(format!("  {} on {}{commit}", i.instances, i.ami));
        }
        if let Some(m) = &g.mixed_instances {
            let own = if m.override_templates.is_empty() { String::new() } else { format!("; overrides' own templates: {}", m.override_templates.join(", ")) };
            lines.push(format!("  mixed instances policy: {}{own}", m.instance_types.join(", ")));
        }
        if let Some(pool) = &g.warm_pool {
            let each: Vec<String> =
                pool.iter().map(|i| format!("{} {} on {}", i.id, i.lifecycle, i.image.as_deref().unwrap_or("unknown image"))).collect();
            lines.push(format!("  warm pool: {}", if each.is_empty() { "empty".to_string() } else { each.join("; ") }));
        }
        if !g.suspended_processes.is_empty() {
            lines.push(format!("  suspended processes: {} (an instance refresh stalls while Launch, Terminate or InstanceRefresh is)", g.suspended_processes.join(", ")));
        }
        for l in &g.left_behind {
            lines.push(format!("  left on {}: {} ({})", l.image, l.id, l.because));
        }
        if g.healthy {
            lines.push("  verified: every instance in service on the release, healthy in every target group".into());
        } else {
            lines.push(format!("  NOT verified: {}", if g.problems.is_empty() { "release unknown".into() } else { g.problems.join("; ") }));
        }
    }
    lines.join("\n")
}

pub async fn run(global: &Global, _args: Args) -> Finished {
    let session = match Session::open(global).await {
        Ok(s) => s,
        Err(e) => return Finished::early("status", e),
    };
    let result = session.interruptible(collect(&session, global)).await;
    session.display.finish();
    let mut summary = summary_base(&session, "status");
    match result {
        Ok(groups) => {
            let text = text(&groups);
            summary.details = Some(Details::Status { groups });
            Finished { summary, text: Some(text), result: Ok(()), next: None }
        }
        Err(e) => Finished { summary, text: None, result: Err(e), next: None },
    }
}

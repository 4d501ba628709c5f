//! A dry run's plan as text for people: the calls in order under their engine phase, what each write
//! would create, change or delete and whether its permission was proved, then the resources and the
//! permissions in one place. Printed on stdout (the plan is the command's result).

use std::fmt::Write as _;

use serde_json::Value;

use crate::cloud::dry_run::{Change, DryRun, Permission, StepKind};

/// Longest argument value shown; JSON output carries them whole.
const MAX_VALUE_CHARS: usize = 100;

pub fn print(command: &str, plan: &DryRun) {
    let _ = std::io::Write::write_all(&mut std::io::stdout(), render(command, plan).as_bytes());
}

/// Lines for stderr that qualify a result (e.g. assumptions `iam-policy` made).
pub fn print_notes(notes: &[String]) {
    for n in notes {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("note: {n}\n").as_bytes());
    }
}

/// Warnings about the pipeline a plan cannot show as a failed step (a bake that would wait out its
/// timeout), on stderr.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("warning: {w}\n").as_bytes());
    }
}

fn change(c: Change) -> &'static str {
    match c {
        Change::Create => "create",
        Change::Change => "change",
        Change::Delete => "delete",
    }
}

fn permission(p: Option<Permission>) -> &'static str {
    match p {
        Some(Permission::Allowed) => "allowed",
        Some(Permission::Denied) => "DENIED",
        Some(Permission::Unverified) | None => "unverified",
    }
}

/// `name=shop-abc owners=["self"]`: strings bare, everything else as compact JSON, long values cut.
fn args_text(args: &Value) -> String {
    let Value::Object(map) = args else { return String::new() };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let cut: String = v.chars().take(MAX_VALUE_CHARS).collect();
            let more = if cut.len() < v.len() { "…" } else { "" };
            format!("{k}={cut}{more}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn secs(args: &Value, key: &str) -> String {
    let s = args[key].as_f64().unwrap_or_default();
    if s.fract() == 0.0 {
        format!("{s}s")
    } else {
        format!("{}ms", (s * 1000.0).round())
    }
}

pub fn render(command: &str, plan: &DryRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Dry run of `bakeroll {command}`: nothing was changed. The AWS calls it would make, in order:");
    let notes = plan.notes();
    let mut phase: Option<String> = None;
    let write_notes = |out: &mut String, after: usize| {
        for n in notes.iter().filter(|n| n.after_step == after) {
            let _ = writeln!(out, "       note ({}): {}", n.scope, n.message);
        }
    };
    write_notes(&mut out, 0);
    for s in plan.steps() {
        if s.phase != phase {
            let _ = writeln!(out, "\n[{}]", s.phase.as_deref().unwrap_or("start"));
            phase = s.phase.clone();
        }
        let action = s.action.as_deref().unwrap_or_default();
        match s.kind {
            StepKind::Read => {
                let _ = writeln!(out, "{:>4}  read    {action} {}", s.n, args_text(&s.args));
                if s.permission != Some(Permission::Allowed) {
                    let _ = writeln!(out, "        failed: {}", s.why.as_deref().unwrap_or_default());
                }
            }
            StepKind::Write => {
                let verb = s.effects.first().map_or("write", |e| change(e.change));
                let _ = writeln!(out, "{:>4}  {verb:<7} {action} {}", s.n, args_text(&s.args));
                for e in &s.effects {
                    let _ = writeln!(out, "        -> {} {} {}: {}", change(e.change), e.resource, e.id, e.detail);
                }
                let why = s.why.as_deref().unwrap_or_default();
                let _ = writeln!(out, "        permission: {} ({why})", permission(s.permission));
            }
            StepKind::Wait => {
                let what = s.what.as_deref().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{:>4}  wait    {what} (every {}, at most {})",
                    s.n,
                    secs(&s.args, "every_seconds"),
                    secs(&s.args, "timeout_seconds")
                );
            }
        }
        write_notes(&mut out, s.n);
    }
    let resources = plan.resources();
    let _ = writeln!(out, "\nResources it would create, change or delete:");
    if resources.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (n, e) in resources {
        let _ = writeln!(out, "  {:<7} {} {}: {} (step {n})", change(e.change), e.resource, e.id, e.detail);
    }
    let permissions = plan.report().permissions;
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let _ = writeln!(out, "\nPermissions of the writes:");
    let _ = writeln!(out, "  allowed (EC2 DryRun): {}", list(&permissions.allowed));
    let _ = writeln!(out, "  unverified (no DryRun, or it could not tell): {}", list(&permissions.unverified));
    let _ = writeln!(out, "  DENIED: {}", list(&permissions.denied));
    out
}

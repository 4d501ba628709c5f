//! The deploy report (`--report PATH`): one self-contained HTML file (inline CSS and SVG, no scripts,
//! no network) with the outcome and a timeline of every instance. The journal records the run's
//! events as they happen; `write` renders it with the JSON summary when the command finishes. Every
//! time in the page is on one clock, said in its header: seconds since bakeroll started.

mod lanes;
mod timeline;
mod waves;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crate::summary::Summary;

use super::ndjson::unix_ms;
use crate::events::{Event, Sink};

/// Everything the renderer needs; built from the journal, or by hand in tests.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// (Unix ms, event), in the order they happened.
    pub events: Vec<(u64, Event)>,
    /// Group → the refresh's checkpoint percentages (from the pipeline file).
    pub checkpoints: BTreeMap<String, Vec<i32>>,
    /// The command's summary (`bakeroll.summary/v1`).
    pub summary: Summary,
    /// Unix ms when the run started: the report's one clock (else its first event).
    pub started_ms: Option<u64>,
}

impl ReportInput {
    /// The report's zero: every `+Ns` in the page is measured from it.
    pub(crate) fn clock_zero(&self) -> u64 {
        self.started_ms.or_else(|| self.events.first().map(|(t, _)| *t)).unwrap_or(0)
    }

    /// When the refresh watch of `group` began (its `Fleet` samples carry seconds since then), in Unix
    /// ms: what turns the gate's evidence times into the report's clock.
    fn watch_began(&self, group: &str) -> Option<u64> {
        self.events.iter().find_map(|(ms, e)| match e {
            Event::Fleet { scope, t, .. } if scope == group => Some(ms.saturating_sub((t * 1000.0) as u64)),
            _ => None,
        })
    }
}

/// `ms` on the report's clock, in seconds.
pub(crate) fn on_clock(input: &ReportInput, ms: u64) -> f64 {
    ms.saturating_sub(input.clock_zero()) as f64 / 1000.0
}

/// The run's events, kept in memory for the report (a deploy emits a few thousand at most).
#[derive(Default)]
pub struct Journal {
    events: Mutex<Vec<(u64, Event)>>,
    checkpoints: Mutex<BTreeMap<String, Vec<i32>>>,
    /// Unix ms when the journal was made (as the session opens): the report's zero.
    started_ms: u64,
}

impl Sink for Journal {
    fn emit(&self, event: Event) {
        self.events.lock().expect("journal poisoned").push((unix_ms(SystemTime::now()), event));
    }
}

/// The process's journal: one command runs per process, and `cli::finish` (which writes the report)
/// has no other way to reach what the session recorded.
pub fn journal() -> Arc<Journal> {
    static JOURNAL: OnceLock<Arc<Journal>> = OnceLock::new();
    JOURNAL.get_or_init(|| Arc::new(Journal { started_ms: unix_ms(SystemTime::now()), ..Journal::default() })).clone()
}

impl Journal {
    pub fn set_checkpoints(&self, group: &str, checkpoints: Vec<i32>) {
        self.checkpoints.lock().expect("journal poisoned").insert(group.to_string(), checkpoints);
    }

    pub fn input(&self, summary: Summary) -> ReportInput {
        ReportInput {
            events: self.events.lock().expect("journal poisoned").clone(),
            checkpoints: self.checkpoints.lock().expect("journal poisoned").clone(),
            summary,
            started_ms: Some(self.started_ms),
        }
    }
}

/// Renders the journal and `summary` to `path`.
pub fn write(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let html = render(&journal().input(summary.clone()));
    std::fs::write(path, html)
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}


const STYLE: &str = "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1f2328;background:#fff}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}\
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}\
.deployed,.baked{background:#1a7f37}.rolled-back{background:#bc4c00}.failed{background:#cf222e}.not-started{background:#57606a}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:12px 0}dt{color:#57606a}dd{margin:0;font-family:ui-monospace,monospace}\
.error{border-left:4px solid #cf222e;background:#fff5f5;padding:8px 12px;margin:12px 0;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:13px}\
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}th{color:#57606a;font-weight:500}\
td.warn{color:#bc4c00}td.phase{font-weight:600}svg text{font-family:ui-monospace,monospace}";

/// The whole page.
pub fn render(input: &ReportInput) -> String {
    let s = &input.summary;
    let outcome = s.outcome.map_or("not-started", |o| o.as_str());
    let env = s.env.as_deref().unwrap_or_default();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bakeroll {} {} — {}</title><style>{STYLE}</style></head><body>\n",
        esc(&s.command),
        esc(env),
        esc(outcome)
    );
    let _ = write!(
        html,
        "<h1>bakeroll {} <span class=\"badge {o}\" id=\"outcome\">{o}</span></h1>\n<dl>",
        esc(&s.command),
        o = esc(outcome)
    );
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(html, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
        }
    };
    row("environment", env.into());
    let zero = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(input.clock_zero()));
    row("times", format!("+seconds since bakeroll started ({zero})"));
    if let Some(r) = &s.release {
        row("release", format!("{} {}", r.ami, r.commit.as_deref().unwrap_or_default()).trim().into());
    }
    row("exit code", s.exit_code.to_string());
    row("took", s.seconds.map(|x| format!("{x:.1}s")).unwrap_or_default());
    row("pipeline", s.pipeline.clone().unwrap_or_default());
    let several = s.deploy.as_ref().is_some_and(|d| d.waves.len() > 1);
    for g in s.deploy.iter().flat_map(|d| &d.groups) {
        let versions = match g.new_version {
            Some(n) => format!("launch-template version {} → {n}", g.old_version),
            None => format!("launch-template version {}", g.old_version),
        };
        let outcome = g.outcome.as_ref().map_or("", |o| o.name());
        let mut text = format!("{} → {}, {versions}, {outcome}", g.old_image, g.new_image);
        if several {
            // In a release of several waves, where the group stood: a group whose wave never came has no outcome.
            let state = waves::state_text(input, &g.group).unwrap_or_default();
            text = format!("wave {}: {state}; {}", g.wave, text.trim_end_matches([',', ' ']));
        }
        row(&format!("group {}", esc(&g.group)), text);
    }
    html.push_str("</dl>\n");
    if let Some(e) = &s.error {
        let mut text = format!("error: {}", e.message);
        for c in &e.causes {
            let _ = write!(text, "\n  Caused by: {c}");
        }
        for (k, v) in [("State", &e.state), ("Next", &e.next)] {
            if let Some(v) = v {
                let _ = write!(text, "\n  {k}: {v}");
            }
        }
        let _ = writeln!(html, "<div class=\"error\" id=\"error\">{}</div>", esc(&text));
    }
    html.push_str(&timeline::render(input));
    html.push_str(&why(input));
    html.push_str(&shapes(input));
    html.push_str(&event_table(input));
    let _ = writeln!(html, "<p style=\"color:#57606a\">written by bakeroll {}</p></body></html>", env!("CARGO_PKG_VERSION"));
    html
}

/// The evidence that convicted each rolled-back group, or the alarm that stopped its refresh.
fn why(input: &ReportInput) -> String {
    use crate::core::health::{tg_name, HealthFailure};
    use crate::core::rollout::{Outcome, RollbackReason};
    let mut out = String::new();
    for g in input.summary.deploy.iter().flat_map(|d| &d.groups) {
        let reason = match &g.outcome {
            Some(Outcome::RolledBack { reason }) | Some(Outcome::Failed { reason: Some(reason), .. }) => reason,
            _ => continue,
        };
        let id = esc(&g.group);
        // The gate counts from the start of its watch; the page counts from the start of the run.
        let began = input.watch_began(&g.group).map(|ms| on_clock(input, ms));
        match reason {
            RollbackReason::Unhealthy { failure: f @ HealthFailure::Unhealthy { evidence, observations, .. } } => {
                let _ = writeln!(
                    out,
                    "<h2>Why {id} was rolled back</h2>\n<p id=\"evidence-summary-{id}\">{observations} observations against the release; the rollback was sent {:.1}s after the first.</p>\n<table id=\"evidence-{id}\"><tr><th>at</th><th>instance</th><th>target group</th><th>evidence</th><th>reason</th></tr>",
                    f.verdict_after_secs()
                );
                for e in evidence {
                    let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                    let at = match began {
                        Some(b) => format!("+{:.1}s", b + e.at_secs),
                        None => format!("{:.1}s into the watch", e.at_secs),
                    };
                    let _ = writeln!(
                        out,
                        "<tr><td>{at}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&e.instance),
                        esc(tg_name(&e.target_group)),
                        esc(&kind),
                        esc(e.reason.as_deref().unwrap_or_default())
                    );
                }
                out.push_str("</table>\n");
            }
            RollbackReason::Alarm { .. } | RollbackReason::Unhealthy { .. } => {
                let _ = writeln!(out, "<h2>Why {id} was rolled back</h2>\n<p id=\"evidence-summary-{id}\">{}</p>", esc(&reason.to_string()));
            }
            _ => {}
        }
    }
    out
}

/// Per group: the instances the refresh's preferences left on another image (never verified), the
/// override templates a mixed instances policy moved, and the warm pool as the verification saw it.
fn shapes(input: &ReportInput) -> String {
    let mut out = String::new();
    for g in input.summary.deploy.iter().flat_map(|d| &d.groups) {
        let id = esc(&g.group);
        if !g.left_behind.is_empty() {
            let _ = writeln!(
                out,
                "<h2>Left on another image in {id} (not verified)</h2>\n<table id=\"left-behind-{id}\"><tr><th>instance</th><th>image</th><th>because</th></tr>"
            );
            for l in &g.left_behind {
                let _ = writeln!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&l.id), esc(&l.image), esc(&l.because));
            }
            out.push_str("</table>\n");
        }
        if !g.override_templates.is_empty() {
            let _ = writeln!(out, "<h2>Override templates of {id}'s mixed instances policy</h2>\n<table id=\"overrides-{id}\"><tr><th>template</th><th>version</th></tr>");
            for t in &g.override_templates {
                let _ = writeln!(out, "<tr><td>{}</td><td>{} → {}</td></tr>", esc(&t.template_id), t.old_version, t.new_version);
            }
            out.push_str("</table>\n");
        }
        if let Some(pool) = &g.warm_pool {
            let _ = writeln!(out, "<h2>Warm pool of {id}</h2>\n<table id=\"warm-pool-{id}\"><tr><th>instance</th><th>state</th><th>image</th></tr>");
            for i in pool {
                let image = i.image.as_deref().unwrap_or("unknown");
                let class = if image == g.new_image { "" } else { "warn" };
                let _ = writeln!(out, "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>", esc(&i.id), esc(&i.lifecycle), esc(image));
            }
            out.push_str("</table>\n");
        }
    }
    out
}

/// Phases, notes and warnings in order (progress and fleet samples are in the picture instead).
fn event_table(input: &ReportInput) -> String {
    let mut out = String::from("<h2>Log</h2>\n<table id=\"log\"><tr><th>at</th><th>scope</th><th>what</th></tr>\n");
    for (t, e) in &input.events {
        let (scope, class, text) = match e {
            Event::Phase { scope, phase, detail } => (scope, "phase", format!("{phase}: {detail}")),
            Event::Info { scope, message } => (scope, "", message.clone()),
            Event::Warn { scope, message } => (scope, "warn", format!("WARNING: {message}")),
            Event::Detail { scope, title, .. } => (scope, "", format!("{title} (see the job log)")),
            Event::Release { scope, waves } => (scope, "phase", format!("release in waves: {}", super::waves_text(waves))),
            Event::Progress { .. } | Event::Fleet { .. } => continue,
        };
        let _ = writeln!(
            out,
            "<tr><td>+{:.1}s</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            on_clock(input, *t),
            esc(scope),
            esc(&text)
        );
    }
    out.push_str("</table>\n");
    out
}

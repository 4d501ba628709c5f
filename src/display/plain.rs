//! Plain output for CI logs: one timestamped line per event, no escape codes except GitLab's
//! collapsible-section markers (`section_start` / `section_end`) when running in CI.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{counts_text, Renderer, WaveLabels};
use crate::events::{Event, Sink};

pub struct Plain {
    out: Mutex<Box<dyn Write + Send>>,
    sections: bool,
    /// Open section per scope, and the last progress line per scope (repeats are not printed).
    state: Mutex<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    waves: WaveLabels,
}

impl Plain {
    pub fn stderr(sections: bool) -> Self {
        Self::new(Box::new(std::io::stderr()), sections)
    }

    pub fn new(out: Box<dyn Write + Send>, sections: bool) -> Self {
        Self { out: Mutex::new(out), sections, state: Mutex::new((BTreeMap::new(), BTreeMap::new())), waves: WaveLabels::default() }
    }

    fn line(&self, text: &str) {
        let ts = humantime::format_rfc3339_seconds(SystemTime::now());
        let mut out = self.out.lock().expect("display poisoned");
        let _ = writeln!(out, "{ts} {text}");
    }

    fn raw(&self, text: &str) {
        let mut out = self.out.lock().expect("display poisoned");
        let _ = write!(out, "{text}");
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// GitLab section names allow `[a-zA-Z0-9_.-]`.
fn section_name(scope: &str, phase: &str) -> String {
    format!("{scope}_{phase}").chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect()
}

impl Sink for Plain {
    fn emit(&self, event: Event) {
        if let Some(line) = self.waves.learn(&event) {
            self.line(&line);
        }
        let label = match &event {
            Event::Phase { scope, .. } | Event::Progress { scope, .. } | Event::Info { scope, .. } | Event::Warn { scope, .. } => self.waves.label(scope),
            _ => String::new(),
        };
        match event {
            Event::Release { .. } => {}
            Event::Phase { scope, phase, detail } => {
                if self.sections {
                    let previous = self.state.lock().expect("display poisoned").0.insert(scope.clone(), section_name(&scope, phase.as_str()));
                    if let Some(prev) = previous {
                        self.raw(&format!("\x1b[0Ksection_end:{}:{prev}\r\x1b[0K", unix_now()));
                    }
                    self.raw(&format!(
                        "\x1b[0Ksection_start:{}:{}[collapsed=false]\r\x1b[0K",
                        unix_now(),
                        section_name(&scope, phase.as_str())
                    ));
                }
                self.line(&format!("[{label}] {phase}: {detail}"));
            }
            Event::Progress { scope, status, percent, counts, waiting_on_hook, .. } => {
                let text = format!(
                    "[{label}] {status}{} {}",
                    percent.map(|p| format!(" {p}%")).unwrap_or_default(),
                    counts_text(&counts, waiting_on_hook)
                );
                let mut state = self.state.lock().expect("display poisoned");
                if state.1.get(&scope) != Some(&text) {
                    state.1.insert(scope, text.clone());
                    drop(state);
                    self.line(&text);
                }
            }
            Event::Info { message, .. } => self.line(&format!("[{label}] {message}")),
            Event::Warn { message, .. } => self.line(&format!("[{label}] WARNING: {message}")),
            Event::Detail { scope, title, body } => {
                self.line(&format!("[{scope}] {title}:"));
                for l in body.lines() {
                    self.raw(&format!("    {l}\n"));
                }
            }
            // Per-instance detail is for reports and the event stream; the progress line has the counts.
            Event::Fleet { .. } => {}
        }
    }
}

impl Renderer for Plain {
    fn finish(&self) {
        if !self.sections {
            return;
        }
        let open = std::mem::take(&mut self.state.lock().expect("display poisoned").0);
        for name in open.values() {
            self.raw(&format!("\x1b[0Ksection_end:{}:{name}\r\x1b[0K", unix_now()));
        }
    }
}

//! All terminal output: progress bars on a terminal (indicatif, the only module that touches it), plain
//! timestamped lines with GitLab collapsible sections in CI or when stderr is not a terminal. Human
//! text always goes to stderr; stdout is reserved for results (AMI id, JSON summary). Taps see every
//! event too: the NDJSON stream (`--events`) and the journal behind the HTML report (`--report`).

mod bars;
pub mod ndjson;
mod plain;
pub mod dry_run;
pub mod report;

use std::io::IsTerminal;
use std::sync::Arc;

use crate::events::{Event, Sink};

pub use plain::Plain;

/// The chosen renderer.
pub struct Display {
    sink: Arc<dyn Renderer>,
    taps: Vec<Arc<dyn Sink>>,
}

/// A sink that can also close itself (end sections, clear bars).
pub trait Renderer: Sink {
    fn finish(&self);
}

struct Shared(Arc<dyn Renderer>, Vec<Arc<dyn Sink>>);

impl Sink for Shared {
    fn emit(&self, event: Event) {
        for tap in &self.1 {
            tap.emit(event.clone());
        }
        self.0.emit(event)
    }
}

impl Display {
    /// Bars only on an interactive terminal outside CI and without `--no-progress`.
    pub fn new(no_progress: bool, _json: bool) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let sink: Arc<dyn Renderer> = if !no_progress && !ci && std::io::stderr().is_terminal() {
            Arc::new(bars::Bars::new())
        } else {
            Arc::new(Plain::stderr(ci))
        };
        Self { sink, taps: Vec::new() }
    }

    /// Also sends every event to `tap` (before the renderer sees it). Add taps before calling `sink`.
    pub fn tap(&mut self, tap: Arc<dyn Sink>) {
        self.taps.push(tap);
    }

    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(Shared(self.sink.clone(), self.taps.clone()))
    }

    pub fn finish(&self) {
        self.sink.finish()
    }

    /// Says one line now, whatever the engine's events go to (a dry run records those): what a command
    /// opens with, such as the release a rollback goes to and why.
    pub fn say(&self, scope: &str, line: String) {
        self.sink().emit(Event::Info { scope: scope.to_string(), message: line });
    }
}

/// Each group's wave, learnt from the release event, so a line or bar says `shop-web (wave 2)` when a
/// release has several waves.
#[derive(Default)]
pub(crate) struct WaveLabels(std::sync::Mutex<std::collections::BTreeMap<String, usize>>);

impl WaveLabels {
    /// Remembers the waves of a release event; the line to print about it, if it is one.
    pub(crate) fn learn(&self, event: &Event) -> Option<String> {
        let Event::Release { scope, waves } = event else { return None };
        let mut map = self.0.lock().expect("display poisoned");
        map.clear();
        if waves.len() > 1 {
            for (i, wave) in waves.iter().enumerate() {
                for g in wave {
                    map.insert(g.clone(), i + 1);
                }
            }
        }
        let groups: usize = waves.iter().map(Vec::len).sum();
        (groups > 1).then(|| format!("[{scope}] release in {} wave{}: {}", waves.len(), if waves.len() == 1 { "" } else { "s" }, waves_text(waves)))
    }

    /// `shop-web (wave 2)`, or the scope itself outside a release of several waves.
    pub(crate) fn label(&self, scope: &str) -> String {
        match self.0.lock().expect("display poisoned").get(scope) {
            Some(n) => format!("{scope} (wave {n})"),
            None => scope.to_string(),
        }
    }
}

/// `1) shop-canary 2) shop-web, shop-worker`
pub(crate) fn waves_text(waves: &[Vec<String>]) -> String {
    waves.iter().enumerate().map(|(i, w)| format!("{}) {}", i + 1, w.join(", "))).collect::<Vec<_>>().join(" ")
}

/// `web 2/3 healthy, admin 3/3 healthy, 1 waiting on a launch lifecycle hook`; `in no target group`
/// for a group in none.
pub(crate) fn counts_text(counts: &[crate::core::health::TgCount], waiting_on_hook: usize) -> String {
    let mut parts: Vec<String> = counts.iter().map(|c| format!("{} {}/{} healthy", c.target_group, c.healthy, c.total)).collect();
    if counts.is_empty() {
        // A group judged by EC2's checks (`health = "ec2"`): say so rather than end on nothing.
        parts.push("in no target group".into());
    }
    if waiting_on_hook > 0 {
        parts.push(format!("{waiting_on_hook} waiting on a launch lifecycle hook"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use crate::core::health::TgCount;

    #[test]
    fn counts_never_end_a_sentence_on_nothing() {
        let web = TgCount { target_group: "web".into(), healthy: 2, total: 3 };
        assert_eq!(super::counts_text(&[web], 1), "web 2/3 healthy, 1 waiting on a launch lifecycle hook");
        assert_eq!(super::counts_text(&[], 0), "in no target group");
    }
}

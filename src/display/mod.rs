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

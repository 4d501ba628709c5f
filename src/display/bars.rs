//! Progress bars for an interactive terminal: one line per scope (the bake, each Auto Scaling group)
//! with the current phase, refresh percentage, healthy/total per target group, and elapsed time.
//! Log lines go through `MultiProgress::println` so they never tear the bars.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{counts_text, Renderer, WaveLabels};
use crate::events::{Event, Sink};

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    waves: WaveLabels,
}

impl Bars {
    pub fn new() -> Self {
        Self { multi: MultiProgress::new(), bars: Mutex::new(BTreeMap::new()), waves: WaveLabels::default() }
    }

    fn bar(&self, scope: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("display poisoned");
        bars.entry(scope.to_string())
            .or_insert_with(|| {
                let style = ProgressStyle::with_template("{prefix:>14.bold} [{bar:30.cyan/blue}] {pos:>3}% {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let pb = self.multi.add(ProgressBar::new(100).with_style(style).with_prefix(self.waves.label(scope)));
                pb.enable_steady_tick(Duration::from_millis(200));
                pb
            })
            .clone()
    }
}

impl Sink for Bars {
    fn emit(&self, event: Event) {
        if let Some(line) = self.waves.learn(&event) {
            let _ = self.multi.println(line);
        }
        match event {
            Event::Release { .. } => {}
            Event::Phase { scope, phase, detail } => self.bar(&scope).set_message(format!("{phase}: {detail}")),
            Event::Progress { scope, status, percent, counts, waiting_on_hook, .. } => {
                let pb = self.bar(&scope);
                if let Some(p) = percent {
                    pb.set_position(p.clamp(0, 100) as u64);
                }
                pb.set_message(format!("{status} | {}", counts_text(&counts, waiting_on_hook)));
            }
            Event::Info { scope, message } => {
                let _ = self.multi.println(format!("[{}] {message}", self.waves.label(&scope)));
            }
            Event::Warn { scope, message } => {
                let _ = self.multi.println(format!("[{}] WARNING: {message}", self.waves.label(&scope)));
            }
            Event::Detail { scope, title, body } => {
                let _ = self.multi.println(format!("[{scope}] {title}:\n{body}"));
            }
            // Per-instance detail is for reports and the event stream; the bar shows the counts.
            Event::Fleet { .. } => {}
        }
    }
}

impl Renderer for Bars {
    fn finish(&self) {
        for pb in self.bars.lock().expect("display poisoned").values() {
            pb.finish();
        }
    }
}

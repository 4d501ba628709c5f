//! The NDJSON event stream (`--events PATH`): one JSON object per line per engine event, stamped with
//! wall-clock time, flushed as it happens so another process can follow the file (`tail -f`), and a
//! last `outcome` line saying how the command ended.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::events::{Event, Sink};
use crate::summary::Summary;

/// Schema tag carried by every line, so a consumer can tell versions apart; fields are only added.
pub const SCHEMA: &str = "bakeroll.event/v1";

/// `{"schema", "ts" (RFC 3339, ms), "unix_ms", "event", ...the event's own fields}`.
pub fn stamped(event: &Event, at: SystemTime) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or_else(|_| serde_json::json!({ "event": "unserialisable" }));
    if let Value::Object(m) = &mut v {
        m.insert("schema".into(), SCHEMA.into());
        m.insert("ts".into(), humantime::format_rfc3339_millis(at).to_string().into());
        m.insert("unix_ms".into(), unix_ms(at).into());
    }
    v
}

/// The group (or other scope) an event is about.
fn line_scope(event: &Event) -> Option<&str> {
    match event {
        Event::Phase { scope, .. }
        | Event::Progress { scope, .. }
        | Event::Info { scope, .. }
        | Event::Warn { scope, .. }
        | Event::Detail { scope, .. }
        | Event::Fleet { scope, .. } => Some(scope),
        Event::Release { .. } => None,
    }
}

pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub struct EventsFile {
    out: Mutex<BufWriter<File>>,
    /// Each group's wave (1-based), from the release event: every event about a group carries it.
    waves: Mutex<std::collections::BTreeMap<String, usize>>,
}

impl EventsFile {
    /// Creates (truncates) `path`. Fails before any work starts, so a bad path costs nothing.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self { out: Mutex::new(BufWriter::new(File::create(path)?)), waves: Mutex::default() })
    }
}

impl Sink for EventsFile {
    fn emit(&self, event: Event) {
        let mut line = stamped(&event, SystemTime::now());
        let mut waves = self.waves.lock().expect("events file poisoned");
        if let Event::Release { waves: w, .. } = &event {
            *waves = w.iter().enumerate().flat_map(|(i, g)| g.iter().map(move |g| (g.clone(), i + 1))).collect();
        }
        if let (Value::Object(m), Some(wave)) = (&mut line, line_scope(&event).and_then(|s| waves.get(s))) {
            m.insert("wave".into(), (*wave).into());
        }
        drop(waves);
        let mut out = self.out.lock().expect("events file poisoned");
        // A full disk must not stop a deploy: the stream is a convenience, the summary is the record.
        let _ = serde_json::to_writer(&mut *out, &line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// The stream's last line, written by `cli::finish` once the command is over (also when it ended before
/// anything else was written, e.g. a pipeline file that does not load): `{"event": "outcome", "command",
/// "outcome", "exit_code", "env", "error": { message, state, next } | null}`, stamped like the others.
pub fn append_outcome(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let error = summary.error.as_ref().map(|e| json!({ "message": e.message, "state": e.state, "next": e.next }));
    let mut line = json!({
        "event": "outcome",
        "command": summary.command,
        "outcome": summary.outcome.map(|o| o.as_str()),
        "exit_code": summary.exit_code,
        "env": summary.env,
        "error": error,
    });
    let at = SystemTime::now();
    if let Value::Object(m) = &mut line {
        m.insert("schema".into(), SCHEMA.into());
        m.insert("ts".into(), humantime::format_rfc3339_millis(at).to_string().into());
        m.insert("unix_ms".into(), unix_ms(at).into());
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_the_event_plus_a_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let file = EventsFile::create(&path).unwrap();
        file.emit(Event::Phase { scope: "web".into(), phase: crate::events::Stage::Refresh, detail: "starting".into() });
        file.emit(Event::Info { scope: "bake".into(), message: "two\nlines".into() });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "one line per event, newlines inside values escaped: {text}");
        assert_eq!(lines[0]["event"], "phase");
        assert_eq!(lines[0]["scope"], "web");
        assert_eq!(lines[0]["schema"], SCHEMA);
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
        assert!(lines[1]["unix_ms"].as_u64().unwrap() >= lines[0]["unix_ms"].as_u64().unwrap());
        assert_eq!(lines[1]["message"], "two\nlines");
    }

    #[test]
    fn the_outcome_line_ends_the_stream_even_when_nothing_else_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let file = EventsFile::create(&path).unwrap();
        file.emit(Event::Info { scope: "bake".into(), message: "x".into() });
        let mut summary = Summary::new("ship");
        summary.exit_code = 3;
        summary.outcome = Some(crate::summary::Outcome::RolledBack);
        summary.env = Some("local".into());
        summary.error = Some(crate::summary::ErrorSummary { message: "m".into(), causes: vec![], state: Some("s".into()), next: None });
        append_outcome(&path, &summary).unwrap();
        let lines: Vec<Value> = std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let last = lines.last().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((last["event"].as_str(), last["outcome"].as_str(), last["exit_code"].as_i64()), (Some("outcome"), Some("rolled-back"), Some(3)));
        assert_eq!((last["error"]["state"].as_str(), last["schema"].as_str()), (Some("s"), Some(SCHEMA)));
        // No stream yet (the command ended before its session): the outcome is the whole stream.
        let alone = dir.path().join("alone.ndjson");
        append_outcome(&alone, &Summary::new("deploy")).unwrap();
        assert_eq!(std::fs::read_to_string(&alone).unwrap().lines().count(), 1);
    }

    #[test]
    fn events_about_a_group_of_a_release_carry_its_wave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let file = EventsFile::create(&path).unwrap();
        let waves = vec![vec!["canary".to_string()], vec!["web".to_string(), "worker".to_string()]];
        file.emit(Event::Release { scope: "prod".into(), waves });
        file.emit(Event::Info { scope: "worker".into(), message: "x".into() });
        file.emit(Event::Info { scope: "canary".into(), message: "x".into() });
        file.emit(Event::Info { scope: "bakeroll".into(), message: "x".into() });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["event"], "release");
        assert_eq!(lines[0]["waves"][1][1], "worker");
        assert_eq!((lines[1]["wave"].as_u64(), lines[2]["wave"].as_u64(), lines[3].get("wave")), (Some(2), Some(1), None));
    }
}

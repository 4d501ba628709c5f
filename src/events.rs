//! Events the engine emits while it works: the bottom layer (it imports only the core). Only
//! `crate::display` renders them (bars, plain CI lines, NDJSON, the report); the engine never prints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::core::health::TgCount;
use crate::core::rollout::PhaseName;

/// A stage of a command's work, as events name it (`phase` in NDJSON, CI sections, plan labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    // bake
    Lookup,
    Launch,
    Provision,
    CreateImage,
    WaitImage,
    Tag,
    /// A copy of the release to another region, and its sharing with the deploy account.
    Copy,
    // deploy, per group
    Preflight,
    Pin,
    Template,
    Refresh,
    DefaultVersion,
    Rollback,
    Verify,
    Undo,
    /// adopt: UpdateAutoScalingGroup onto the adopted template.
    Switch,
    // release management
    Read,
    Deregister,
    Snapshot,
    Terminate,
    // promotion and revocation
    /// The promotion guard: may this image go to this environment?
    Promote,
    /// The release's mark on its image, and deregistration protection of what a rollback would need.
    Mark,
    /// `bakeroll revoke`: the revocation written or removed.
    Revoke,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Launch => "launch",
            Self::Provision => "provision",
            Self::CreateImage => "create-image",
            Self::WaitImage => "wait-image",
            Self::Tag => "tag",
            Self::Copy => "copy",
            Self::Preflight => "preflight",
            Self::Pin => "pin",
            Self::Template => "template",
            Self::Refresh => "refresh",
            Self::DefaultVersion => "default-version",
            Self::Rollback => "rollback",
            Self::Verify => "verify",
            Self::Undo => "undo",
            Self::Switch => "switch",
            Self::Read => "read",
            Self::Deregister => "deregister",
            Self::Snapshot => "snapshot",
            Self::Terminate => "terminate",
            Self::Promote => "promote",
            Self::Mark => "mark",
            Self::Revoke => "revoke",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A release begins: its groups in ordered waves (`scope` is the environment). Displays label each
    /// group with its wave from it.
    Release { scope: String, waves: Vec<Vec<String>> },
    /// A new phase of work began (`scope` is `bake` or an Auto Scaling group name).
    Phase { scope: String, phase: Stage, detail: String },
    /// A refresh poll: the watcher's phase, `status` (that phase and the refresh's AWS status, e.g.
    /// `refreshing InProgress`), percentage, healthy/total per target group, and how many instances
    /// wait in `Pending:Wait` on a launch lifecycle hook.
    Progress { scope: String, phase: PhaseName, status: String, percent: Option<i32>, counts: Vec<TgCount>, waiting_on_hook: usize },
    Info { scope: String, message: String },
    Warn { scope: String, message: String },
    /// Where an operator should look: e.g. the build instance's console output on failure.
    Detail { scope: String, title: String, body: String },
    /// Every member of a group as one refresh poll saw it (`t`: seconds since the watch began), for
    /// reports and tools that draw the fleet; bars and plain lines show `Progress` instead.
    Fleet { scope: String, t: f64, instances: Vec<FleetInstance> },
}

/// One instance in a `Fleet` observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetInstance {
    pub id: String,
    /// Image id from EC2 (None while EC2 does not report the instance yet).
    pub image: Option<String>,
    /// Auto Scaling lifecycle state: Pending, InService, Terminating, ...
    pub lifecycle: String,
    /// Target-group short name → target state (`healthy`, `initial`, ...); a missing entry means the
    /// instance is not registered in that target group.
    pub health: BTreeMap<String, String>,
}

pub trait Sink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Convenience wrapper so engine code reads `events.phase("bake", "launch", "...")`.
#[derive(Clone)]
pub struct Events(pub Arc<dyn Sink>);

impl Events {
    pub fn release(&self, env: &str, waves: Vec<Vec<String>>) {
        self.0.emit(Event::Release { scope: env.into(), waves });
    }
    pub fn phase(&self, scope: &str, phase: Stage, detail: impl Into<String>) {
        self.0.emit(Event::Phase { scope: scope.into(), phase, detail: detail.into() });
    }
    pub fn info(&self, scope: &str, message: impl Into<String>) {
        self.0.emit(Event::Info { scope: scope.into(), message: message.into() });
    }
    pub fn warn(&self, scope: &str, message: impl Into<String>) {
        self.0.emit(Event::Warn { scope: scope.into(), message: message.into() });
    }
    pub fn detail(&self, scope: &str, title: impl Into<String>, body: impl Into<String>) {
        self.0.emit(Event::Detail { scope: scope.into(), title: title.into(), body: body.into() });
    }
    /// `refresh_status`: the AWS status of the refresh being watched.
    pub fn progress(&self, scope: &str, phase: PhaseName, refresh_status: &str, percent: Option<i32>, counts: Vec<TgCount>, waiting_on_hook: usize) {
        let status = format!("{phase} {refresh_status}");
        self.0.emit(Event::Progress { scope: scope.into(), phase, status, percent, counts, waiting_on_hook });
    }
    pub fn fleet(&self, scope: &str, t: f64, instances: Vec<FleetInstance>) {
        self.0.emit(Event::Fleet { scope: scope.into(), t, instances });
    }
}

/// Scopes that are not a group's: never renamed by `Events::within`.
const OWN_SCOPES: [&str; 4] = ["bakeroll", "bake", "pipeline", "release"];

/// `Events::within`: every event about a group gets the suffix (`shop-web` → `shop-web@ap-south-1`).
struct Suffixed {
    inner: Arc<dyn Sink>,
    suffix: String,
}

impl Sink for Suffixed {
    fn emit(&self, mut event: Event) {
        let scope = match &mut event {
            Event::Phase { scope, .. }
            | Event::Progress { scope, .. }
            | Event::Info { scope, .. }
            | Event::Warn { scope, .. }
            | Event::Detail { scope, .. }
            | Event::Fleet { scope, .. } => Some(scope),
            Event::Release { .. } => None,
        };
        if let Some(scope) = scope.filter(|s| !OWN_SCOPES.contains(&s.as_str()) && !s.ends_with(&self.suffix)) {
            scope.push_str(&self.suffix);
        }
        self.inner.emit(event)
    }
}

impl Events {
    /// The same events, each about a group named with `suffix` appended: what a region's context emits in
    /// a release over several regions, whose groups go by `group@region`.
    pub fn within(&self, suffix: &str) -> Events {
        Events(Arc::new(Suffixed { inner: self.0.clone(), suffix: suffix.to_string() }))
    }
}

/// A sink that keeps every event: for tests and for the JSON summary.
#[derive(Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Sink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().expect("recorder poisoned").push(event);
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("recorder poisoned").clone()
    }
}

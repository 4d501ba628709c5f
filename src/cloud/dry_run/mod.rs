//! Dry runs as a layer of the cloud: a `DryRun` records, in order, every AWS call a command would make
//! — reads made for real, writes only described (with EC2's DryRun verdict on the permission) — the
//! waits it would sit through, and the resources that would be created, changed or deleted. `wrap`
//! puts the recording layer (`ec2::DryRunApi`) around a real `Cloud` and swaps in a clock that writes
//! each wait down instead of waiting, so engine code run over it is a dry run without knowing it.
//!
//! The layer keeps the world it pretends to have made consistent for later reads: placeholders stand
//! for what does not exist yet (`i-(planned)`, `ami-(planned)`, `snap-(planned)`, `refresh-(planned)`,
//! the next launch-template version number), and what it deleted or terminated reads as gone. The
//! word "plan" in the JSON summary (`plan` key) and `bakeroll plan` is this recording.

mod copies;
mod ec2;
mod groups;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use async_trait::async_trait;

use crate::cloud::{Clock, Cloud, CloudError, Wait};
use crate::core::model::{Image, Instance, LtVersion, TemplateData, TemplateInfo};
use crate::events::{Event, Sink};

/// `i-(planned)`, then `i-(planned-2)`, ...: ids of resources a dry run would create.
pub fn planned_id(prefix: &str, nth: usize) -> String {
    if nth <= 1 {
        format!("{prefix}-(planned)")
    } else {
        format!("{prefix}-(planned-{nth})")
    }
}

pub fn is_planned(id: &str) -> bool {
    id.contains("-(planned")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Made for real: reads change nothing.
    Read,
    /// Not made: described, and its permission checked where AWS allows it.
    Write,
    /// Where the engine would wait (for a build instance, an image, a refresh).
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Create,
    Change,
    Delete,
}

/// One resource a write would create, change or delete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    pub change: Change,
    /// `instance`, `image`, `snapshot`, `launch-template-version`, `launch-template`, `auto-scaling-group`,
    /// `instance-refresh`.
    pub resource: &'static str,
    pub id: String,
    pub detail: String,
}

/// What is known about a call's permission without making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// A read that succeeded, or an EC2 DryRun answered `DryRunOperation`.
    Allowed,
    /// EC2 DryRun answered `UnauthorizedOperation` (or a read was refused).
    Denied,
    /// AWS offers no way to check it without doing it (Auto Scaling has no DryRun), or the DryRun
    /// could not tell (see `why`).
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1-based position in the plan.
    pub n: usize,
    pub kind: StepKind,
    /// The engine phase the step belongs to (`bake: launch`, `shop-web: refresh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The IAM action of a read or write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Key arguments of the call, or a wait's `every_seconds` / `timeout_seconds`.
    pub args: Value,
    /// For a wait: what it waits for and what happens after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
    /// How the permission was established, or why it could not be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Something the engine said while planning (e.g. "reusing image ... baked earlier").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The number of the step it follows (0: before the first).
    pub after_step: usize,
    pub scope: String,
    pub message: String,
}

/// A permission the dry run proved missing: EC2's answer to the DryRun.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub action: String,
    pub code: Option<String>,
    pub message: String,
}

impl Denial {
    pub fn to_error(&self) -> CloudError {
        CloudError::with_kind(&self.action, crate::cloud::ErrorKind::Denied, self.code.as_deref(), self.message.clone())
    }
}

/// What a dry run pretends to have done, so later reads answer consistently.
#[derive(Default)]
pub(crate) struct Planned {
    pub instances: Vec<Instance>,
    pub images: Vec<Image>,
    pub versions: Vec<LtVersion>,
    /// Launch templates the plan would create, with their data.
    pub templates: Vec<(TemplateInfo, TemplateData)>,
    pub refreshes: Vec<(String, String)>,
    /// Real resources a planned write deleted: images deregistered, snapshots deleted, instances
    /// terminated. Reads leave them out (instances read as `shutting-down`).
    pub deregistered: Vec<String>,
    pub deleted_snapshots: Vec<String>,
    pub terminated: Vec<String>,
    /// The newest real version seen per template, so a planned version gets the next number without
    /// a read the real run would not make.
    pub latest_seen: std::collections::BTreeMap<String, LtVersion>,
}

#[derive(Default)]
struct Inner {
    steps: Vec<Step>,
    notes: Vec<Note>,
    phase: Option<String>,
    /// Each group's wave, when the release has several: phases say `shop-web (wave 2): refresh`.
    waves: std::collections::BTreeMap<String, usize>,
    denials: Vec<Denial>,
    world: Planned,
    /// The wrapped cloud's clock: a dry run does not wait, but still tells the time as it does.
    real_clock: Option<Arc<dyn Clock>>,
}

/// A cheaply clonable handle on one dry run's recording.
#[derive(Clone, Default)]
pub struct DryRun(Arc<Mutex<Inner>>);

impl DryRun {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("dry run poisoned")
    }

    /// The cloud a dry run uses: reads go to `real`, writes only into this recording, and its clock
    /// records waits instead of waiting. Shares `real`'s ledger, so `api_calls` counts the reads and
    /// DryRun requests actually sent.
    pub fn wrap(&self, real: Cloud) -> Cloud {
        let api = Arc::new(ec2::DryRunApi { real: real.clone(), dry: self.clone() });
        self.lock().real_clock = Some(real.clock.clone());
        Cloud {
            ec2: api.clone(),
            autoscaling: api.clone(),
            elbv2: api.clone(),
            cloudwatch: api.clone(),
            copies: api,
            calls: real.calls,
            clock: Arc::new(self.clone()),
        }
    }

    fn push(&self, kind: StepKind, action: Option<&str>, args: Value) -> usize {
        let mut inner = self.lock();
        let n = inner.steps.len() + 1;
        let phase = inner.phase.clone();
        inner.steps.push(Step {
            n,
            kind,
            phase,
            action: action.map(str::to_string),
            args,
            what: None,
            effects: vec![],
            permission: None,
            why: None,
        });
        n
    }

    pub(crate) fn read(&self, action: &str, args: Value) {
        let n = self.push(StepKind::Read, Some(action), args);
        self.edit(n, |s| s.permission = Some(Permission::Allowed));
    }

    pub(crate) fn write(&self, action: &str, args: Value, effects: Vec<Effect>, permission: Permission, why: String) {
        let n = self.push(StepKind::Write, Some(action), args);
        self.edit(n, |s| {
            s.effects = effects;
            s.permission = Some(permission);
            s.why = Some(why);
        });
    }

    /// A read that failed: recorded too, since the real run would stop there just the same.
    pub(crate) fn failed_read(&self, action: &str, args: Value, permission: Permission, why: String) {
        let n = self.push(StepKind::Read, Some(action), args);
        self.edit(n, |s| {
            s.permission = Some(permission);
            s.why = Some(why);
        });
    }

    pub(crate) fn deny(&self, error: &CloudError) {
        let denial = Denial { action: error.action.clone(), code: error.code.clone(), message: error.message.clone() };
        self.lock().denials.push(denial);
    }

    /// Where the engine would wait: `what` says for what and what follows.
    fn wait(&self, what: &str, every: Duration, timeout: Duration) {
        let args = serde_json::json!({ "every_seconds": every.as_secs_f64(), "timeout_seconds": timeout.as_secs_f64() });
        let n = self.push(StepKind::Wait, None, args);
        self.edit(n, |s| s.what = Some(what.to_string()));
    }

    fn edit(&self, n: usize, f: impl FnOnce(&mut Step)) {
        if let Some(step) = self.lock().steps.get_mut(n - 1) {
            f(step);
        }
    }

    pub(crate) fn with_world<R>(&self, f: impl FnOnce(&mut Planned) -> R) -> R {
        f(&mut self.lock().world)
    }

    pub fn steps(&self) -> Vec<Step> {
        self.lock().steps.clone()
    }

    pub fn notes(&self) -> Vec<Note> {
        self.lock().notes.clone()
    }

    /// Every permission a DryRun proved missing, in plan order.
    pub fn denials(&self) -> Vec<Denial> {
        self.lock().denials.clone()
    }

    /// Every effect of every write, in plan order.
    pub fn resources(&self) -> Vec<(usize, Effect)> {
        self.lock().steps.iter().flat_map(|s| s.effects.iter().map(move |e| (s.n, e.clone()))).collect()
    }

    /// The plan as data: the `plan` key of the JSON summary (schema in README, "Dry runs").
    pub fn report(&self) -> DryRunRecord {
        let steps = self.steps();
        let actions = |p: Permission| {
            let mut v: Vec<String> = steps
                .iter()
                .filter(|s| s.kind == StepKind::Write && s.permission == Some(p))
                .filter_map(|s| s.action.clone())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let permissions = Permissions {
            allowed: actions(Permission::Allowed),
            denied: actions(Permission::Denied),
            unverified: actions(Permission::Unverified),
        };
        let resources = self.resources().into_iter().map(|(step, effect)| Resource { step, effect }).collect();
        DryRunRecord { steps, resources, permissions, notes: self.notes() }
    }
}

/// A dry run's recording as the JSON summary gives it (`plan`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunRecord {
    pub steps: Vec<Step>,
    pub resources: Vec<Resource>,
    pub permissions: Permissions,
    pub notes: Vec<Note>,
}

/// One resource of the plan: what a write would do to it, and at which step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub step: usize,
    #[serde(flatten)]
    pub effect: Effect,
}

/// The writes' IAM actions by what is known of their permission, sorted, each once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permissions {
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
    pub unverified: Vec<String>,
}

/// A dry run's clock: each wait becomes a step of the plan, and no time passes (the wait ends after
/// its first check).
#[async_trait]
impl Clock for DryRun {
    fn waiting(&self, wait: &Wait) {
        self.wait(&wait.what, wait.every, wait.timeout);
    }

    async fn sleep(&self, _d: Duration) -> bool {
        false
    }

    fn wall_ms(&self) -> i64 {
        let real = self.lock().real_clock.clone();
        real.map_or_else(|| crate::cloud::TokioClock.wall_ms(), |c| c.wall_ms())
    }
}

/// While planning, the engine's events describe the plan: phases label the steps, info and warnings
/// become notes. Nothing is shown as progress (nothing is happening).
impl Sink for DryRun {
    fn emit(&self, event: Event) {
        let mut inner = self.lock();
        let after_step = inner.steps.len();
        match event {
            Event::Phase { scope, phase, .. } => {
                let label = match inner.waves.get(&scope) {
                    Some(n) => format!("{scope} (wave {n})"),
                    None => scope,
                };
                inner.phase = Some(format!("{label}: {phase}"));
            }
            Event::Release { scope, waves } => {
                if waves.len() > 1 {
                    inner.waves = waves.iter().enumerate().flat_map(|(i, w)| w.iter().map(move |g| (g.clone(), i + 1))).collect();
                }
                let listed: Vec<String> = waves.iter().enumerate().map(|(i, w)| format!("wave {}: {}", i + 1, w.join(", "))).collect();
                let message = format!("the release goes out in {} wave{} ({}); each wave starts once the one before is verified", waves.len(), if waves.len() == 1 { "" } else { "s" }, listed.join("; "));
                inner.notes.push(Note { after_step, scope, message });
            }
            Event::Info { scope, message } | Event::Warn { scope, message } => {
                inner.notes.push(Note { after_step, scope, message })
            }
            Event::Progress { .. } | Event::Detail { .. } | Event::Fleet { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests;

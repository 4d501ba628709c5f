//! The health gate: the verdict on a release from everything seen about the instances its refresh
//! launched. Evidence, not streaks — each poll that sees a new instance `unhealthy`, a new instance
//! that was seen unhealthy and then replaced by the group, and a new instance a launch lifecycle hook
//! abandoned each count once; `unhealthy_threshold` pieces of evidence convict the release. A target
//! still `initial` (or not registered) after `health_grace`, counted from the moment its instance is
//! InService and registered, convicts at once. Pure: time is passed in as elapsed time.
//!
//! Why evidence across instances (README "The health gate"): with ELB health checks Auto Scaling
//! replaces an InService instance the load balancer calls unhealthy once its grace period is over, so
//! a poller slower than that sees each bad instance unhealthy once, then never again. Counting only
//! consecutive polls of one instance then never convicts, and AWS's AutoRollback decides first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::metric_verdict::MetricEvidence;
use super::targets::{by_instance, tg_name, HealthByGroup};
use super::model::{Group, GroupInstance, TargetState};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    /// Pieces of evidence against the release (see `EvidenceKind`) that convict it.
    pub unhealthy_threshold: u32,
    /// Longest a new instance may stay `initial` (or unregistered) once it is InService.
    pub grace: Duration,
}

/// What one piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// A poll saw the new instance `unhealthy` in a target group (once per instance per poll).
    Unhealthy,
    /// The new instance was last seen unhealthy, then the group removed it: a failed replacement.
    Replaced,
    /// A launch lifecycle hook abandoned the new instance (it left the group without entering service).
    Abandoned,
    /// No target groups: Auto Scaling's own health check called the new instance Unhealthy.
    AsgUnhealthy,
    /// A newly published minute of the load balancer's metrics left the new release's 5XX rate
    /// convicted (`super::metric_gate`; its latency may be too).
    ErrorRate,
    /// A newly published minute left the new release's latency convicted.
    Latency,
}

impl EvidenceKind {
    /// Evidence from the load balancer's metrics rather than from health checks.
    pub fn is_metric(self) -> bool {
        matches!(self, Self::ErrorRate | Self::Latency)
    }
}

/// One observation against the release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub instance: String,
    /// The target group's ARN (empty for `Abandoned` and `AsgUnhealthy`).
    pub target_group: String,
    /// ELB's reason code (`Target.ResponseCodeMismatch`, ...), when it gave one.
    pub reason: Option<String>,
    /// Seconds since the watch began, at the poll that saw it.
    pub at_secs: f64,
    /// For metric evidence: what was measured against what (`reason` says it in words).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricEvidence>,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tg = tg_name(&self.target_group);
        match self.kind {
            // The reason is the whole finding ("shop-web: 5xx rate 4.1 % on the new release vs ...").
            EvidenceKind::ErrorRate | EvidenceKind::Latency => return f.write_str(self.reason.as_deref().unwrap_or(tg)),
            EvidenceKind::Unhealthy => write!(f, "{} unhealthy in {tg}", self.instance)?,
            EvidenceKind::Replaced => write!(f, "{} replaced by the group after failing in {tg}", self.instance)?,
            EvidenceKind::Abandoned => write!(f, "{} abandoned by its launch lifecycle hook", self.instance)?,
            EvidenceKind::AsgUnhealthy => write!(f, "{} Unhealthy in the Auto Scaling health check", self.instance)?,
        }
        match &self.reason {
            Some(r) => write!(f, " ({r})"),
            // No time here: this text lands in CI lines and the report, each with a clock of its own;
            // `at_secs` (seconds since the watch began) is in the JSON and the report's evidence table.
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HealthFailure {
    /// `observations` pieces of evidence reached `unhealthy_threshold`. `instance`, `target_group` and
    /// `reason` name the latest unhealthy observation; `polls` counts the polls that saw that instance
    /// unhealthy; `evidence` lists every piece, oldest first.
    Unhealthy {
        instance: String,
        target_group: String,
        polls: u32,
        reason: Option<String>,
        observations: u32,
        evidence: Vec<Evidence>,
        /// Seconds since the watch began: the first evidence, and the verdict (when the rollback is sent).
        first_evidence_secs: f64,
        convicted_secs: f64,
    },
    StuckInitial { instance: String, target_group: String, waited_secs: u64 },
    NotRegistered { instance: String, target_group: String, waited_secs: u64 },
}

impl HealthFailure {
    /// Seconds from the first evidence to the verdict (zero for a target stuck past its grace).
    pub fn verdict_after_secs(&self) -> f64 {
        match self {
            Self::Unhealthy { first_evidence_secs, convicted_secs, .. } => convicted_secs - first_evidence_secs,
            _ => 0.0,
        }
    }
}

impl fmt::Display for HealthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unhealthy { observations, evidence, .. } => {
                let list: Vec<String> = evidence.iter().map(Evidence::to_string).collect();
                let metric = evidence.iter().filter(|e| e.kind.is_metric()).count();
                let what = match metric {
                    0 => "new instances failed their health checks",
                    m if m == evidence.len() => "the new release failed its users (the load balancer's metrics)",
                    _ => "the new release failed its health checks and its users",
                };
                write!(
                    f,
                    "{what}: {observations} observations against the release ({}); rollback sent {:.1}s after the first evidence",
                    list.join("; "),
                    self.verdict_after_secs()
                )
            }
            Self::StuckInitial { instance, target_group, waited_secs } => write!(
                f,
                "new instance {instance} still `initial` in target group {} {waited_secs}s after entering service (health_grace)",
                tg_name(target_group)
            ),
            Self::NotRegistered { instance, target_group, waited_secs } => write!(
                f,
                "new instance {instance} not registered in target group {} {waited_secs}s after entering service (health_grace)",
                tg_name(target_group)
            ),
        }
    }
}

/// What the gate remembers about one new instance.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// When it was first seen InService.
    in_service: Option<Duration>,
    /// Per target group: when it was first seen registered there while InService.
    registered: BTreeMap<String, Duration>,
    /// Polls that saw it unhealthy.
    unhealthy_polls: u32,
    /// The last poll that judged it saw it unhealthy (target group, reason code).
    last_unhealthy: Option<(String, Option<String>)>,
    waited_on_hook: bool,
    /// It left the group (or stopped being a member); judged once, then ignored.
    left: bool,
}

/// Watches the instances launched after the gate was created (not in `baseline`).
#[derive(Debug, Clone)]
pub struct HealthGate {
    params: GateParams,
    baseline: BTreeSet<String>,
    seen: BTreeMap<String, Seen>,
    evidence: Vec<Evidence>,
}

impl HealthGate {
    pub fn new(params: GateParams, baseline: impl IntoIterator<Item = String>) -> Self {
        Self { params, baseline: baseline.into_iter().collect(), seen: BTreeMap::new(), evidence: Vec::new() }
    }

    /// Ids of the instances this gate considers new.
    pub fn new_instances(&self) -> impl Iterator<Item = &String> {
        self.seen.keys()
    }

    /// Everything held against the release so far, oldest first.
    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    /// Feeds one poll; returns the verdict when this poll convicts the release.
    pub fn observe(&mut self, group: &Group, health: &HealthByGroup, now: Duration) -> Option<HealthFailure> {
        let at_secs = now.as_secs_f64();
        let listed: BTreeMap<&str, &GroupInstance> = group.instances.iter().map(|i| (i.id.as_str(), i)).collect();
        // Instances seen before that left the group since: replaced, or abandoned by their hook.
        for (id, seen) in self.seen.iter_mut().filter(|(_, s)| !s.left) {
            if listed.get(id.as_str()).is_some_and(|i| i.is_member()) {
                continue;
            }
            seen.left = true;
            if let Some((tg, reason)) = seen.last_unhealthy.clone() {
                let kind = EvidenceKind::Replaced;
                self.evidence.push(Evidence { kind, instance: id.clone(), target_group: tg, reason, at_secs, metric: None });
            } else if seen.waited_on_hook && seen.in_service.is_none() {
                let kind = EvidenceKind::Abandoned;
                self.evidence.push(Evidence { kind, instance: id.clone(), target_group: String::new(), reason: None, at_secs, metric: None });
            }
        }
        let mut stuck = None;
        let index = by_instance(health);
        for inst in group.instances.iter().filter(|i| i.is_member() && !self.baseline.contains(&i.id)) {
            let seen = self.seen.entry(inst.id.clone()).or_default();
            if seen.left {
                continue; // back after leaving (not something AWS does): its record stands
            }
            seen.waited_on_hook |= inst.waiting_on_hook();
            if !inst.in_service() {
                continue; // Pending, or waiting on a hook: not yet the load balancer's to judge
            }
            let since = *seen.in_service.get_or_insert(now);
            let mut unhealthy = None;
            let mut all_healthy = true;
            for arn in &group.target_group_arns {
                let target = index.worst(arn, &inst.id);
                if target.is_some() {
                    seen.registered.entry(arn.clone()).or_insert(now);
                }
                all_healthy &= target.is_some_and(|t| t.state == TargetState::Healthy);
                match target.map(|t| &t.state) {
                    Some(TargetState::Unhealthy) => {
                        let reason = target.and_then(|t| t.reason.clone().or_else(|| t.description.clone()));
                        unhealthy.get_or_insert((arn.clone(), reason));
                    }
                    Some(TargetState::Healthy | TargetState::Draining | TargetState::Unused) => {}
                    // `initial`, `unavailable`: never evidence; only past the grace, counted from registration.
                    Some(_) => {
                        let waited = now.saturating_sub(seen.registered[arn].max(since));
                        if waited > self.params.grace && stuck.is_none() {
                            let (instance, target_group, waited_secs) = (inst.id.clone(), arn.clone(), waited.as_secs());
                            stuck = Some(HealthFailure::StuckInitial { instance, target_group, waited_secs });
                        }
                    }
                    None => {
                        let waited = now.saturating_sub(since);
                        if waited > self.params.grace && stuck.is_none() {
                            let (instance, target_group, waited_secs) = (inst.id.clone(), arn.clone(), waited.as_secs());
                            stuck = Some(HealthFailure::NotRegistered { instance, target_group, waited_secs });
                        }
                    }
                }
            }
            // Without target groups, the Auto Scaling health status (EC2 checks) is the only signal.
            if group.target_group_arns.is_empty() && inst.health_status.eq_ignore_ascii_case("Unhealthy") {
                let kind = EvidenceKind::AsgUnhealthy;
                self.evidence.push(Evidence { kind, instance: inst.id.clone(), target_group: String::new(), reason: None, at_secs, metric: None });
                seen.unhealthy_polls += 1;
            }
            if let Some((tg, reason)) = unhealthy {
                seen.unhealthy_polls += 1;
                seen.last_unhealthy = Some((tg.clone(), reason.clone()));
                let kind = EvidenceKind::Unhealthy;
                self.evidence.push(Evidence { kind, instance: inst.id.clone(), target_group: tg, reason, at_secs, metric: None });
            } else if all_healthy {
                seen.last_unhealthy = None;
            }
        }
        self.verdict(at_secs).or(stuck)
    }

    /// Adds evidence found elsewhere (the load balancer's metrics); `conviction` says whether it convicts.
    pub fn add(&mut self, evidence: impl IntoIterator<Item = Evidence>) {
        self.evidence.extend(evidence);
    }

    /// The verdict on everything held so far, at `now` seconds since the watch began.
    pub fn conviction(&self, now: f64) -> Option<HealthFailure> {
        self.verdict(now)
    }

    fn verdict(&self, now: f64) -> Option<HealthFailure> {
        let observations = self.evidence.len() as u32;
        if observations < self.params.unhealthy_threshold.max(1) {
            return None;
        }
        let latest = self.evidence.iter().rev().find(|e| !e.target_group.is_empty()).unwrap_or(self.evidence.last()?);
        let polls = self.seen.get(&latest.instance).map_or(0, |s| s.unhealthy_polls);
        let target_group = if latest.target_group.is_empty() { "(Auto Scaling health check)".into() } else { latest.target_group.clone() };
        Some(HealthFailure::Unhealthy {
            instance: latest.instance.clone(),
            target_group,
            polls,
            reason: latest.reason.clone(),
            observations,
            evidence: self.evidence.clone(),
            first_evidence_secs: self.evidence[0].at_secs,
            convicted_secs: now,
        })
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;

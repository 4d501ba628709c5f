//! Target groups and target health: registration (`initial` for healthy-threshold × interval), the
//! application-health rule that decides `healthy`/`unhealthy`, later flips, and `draining` on deregistration.

use crate::cloud::actions;
use std::collections::BTreeMap;

use tokio::time::{Duration, Instant};

use super::conventions::{err, ACCOUNT, REGION};
use super::resource_records::{Health, TargetGroupRec, TargetRec};
use super::state::{State, Wake};
use super::FakeCloud;
use crate::cloud::CloudResult;
use crate::core::model::*;

/// The tag the local AWS emulator reads on an image or instance: `unhealthy`, `initial` (stuck) or `healthy`.
pub const HEALTH_TAG: &str = "local-aws:health";

enum Change {
    Keep,
    Set(TargetRec),
    Remove,
}

impl State {
    pub fn insert_target_group(
        &mut self,
        name: &str,
        interval: Duration,
        healthy_threshold: u32,
        dereg: Duration,
    ) -> String {
        let arn = format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{name}/{}",
            REGION,
            ACCOUNT,
            &self.next_id("tg")[4..]
        );
        let rec = TargetGroupRec {
            name: name.to_string(),
            port: 80,
            interval,
            healthy_threshold,
            unhealthy_threshold: self.timings.unhealthy_threshold,
            deregistration_delay: dereg,
            targets: BTreeMap::new(),
            load_balancer: None,
            requests_per_minute: 600.0,
            serving: Vec::new(),
        };
        self.target_groups.insert(arn.clone(), rec);
        arn
    }

    /// Registers (or re-registers) a target: `initial` for healthy-threshold × interval.
    pub fn register_target(&mut self, arn: &str, id: &str, at: Instant) {
        if let Some(tg) = self.target_groups.get_mut(arn) {
            let initial_until = at + tg.interval * tg.healthy_threshold;
            let rec = TargetRec {
                state: TargetState::Initial,
                initial_until,
                flip_at: None,
                drain_until: None,
            };
            tg.targets.insert(id.to_string(), rec);
        }
    }

    /// Starts draining; returns the deregistration delay (zero when the target was not registered).
    pub fn deregister_target(&mut self, arn: &str, id: &str, at: Instant) -> Duration {
        let Some(tg) = self.target_groups.get_mut(arn) else {
            return Duration::ZERO;
        };
        let delay = tg.deregistration_delay;
        match tg.targets.get_mut(id) {
            Some(t) if t.drain_until.is_none() => {
                t.state = TargetState::Draining;
                t.drain_until = Some(at + delay);
                t.flip_at = None;
                delay
            }
            Some(t) => t
                .drain_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(at)),
            None => Duration::ZERO,
        }
    }

    pub fn target_state(&self, arn: &str, id: &str) -> Option<&TargetState> {
        self.target_groups.get(arn)?.targets.get(id).map(|t| &t.state)
    }

    /// The application's health on `id` as seen from target group `arn`, most specific rule first:
    /// instance-in-TG, image-in-TG, the image's per-target-group tag, instance override, instance tag, image
    /// override, image tag, inherited.
    pub fn app_health(&self, id: &str, arn: &str) -> Health {
        let in_tg = |rules: &BTreeMap<String, BTreeMap<String, Health>>, key: &str| rules.get(arn)?.get(key).copied();
        in_tg(&self.rules.instance_in_tg, id)
            .or_else(|| {
                self.instances
                    .get(id)
                    .and_then(|i| in_tg(&self.rules.image_in_tg, &i.image_id))
            })
            .or_else(|| {
                // `local-aws:health:<target group name>` on the image: that target group only (as the local AWS).
                let tg = self.target_groups.get(arn)?;
                let image = self.images.get(&self.instances.get(id)?.image_id)?;
                let tags = Tags::from([(HEALTH_TAG.to_string(), image.tags.get(&format!("{HEALTH_TAG}:{}", tg.name))?.clone())]);
                tag_health(&tags)
            })
            .unwrap_or_else(|| self.instance_health(id))
    }

    /// Health ignoring per-target-group rules; also what CreateImage bakes into an image.
    pub fn instance_health(&self, id: &str) -> Health {
        let Some(inst) = self.instances.get(id) else {
            return Health::Healthy;
        };
        let img = self.images.get(&inst.image_id);
        self.rules
            .instance
            .get(id)
            .copied()
            .or_else(|| tag_health(&inst.tags))
            .or_else(|| self.rules.image.get(&inst.image_id).copied())
            .or_else(|| img.and_then(|i| tag_health(&i.tags)))
            .or_else(|| img.and_then(|i| i.inherited))
            .unwrap_or(Health::Healthy)
    }

    pub fn step_targets(&mut self, t: Instant) {
        let mut changes = Vec::new();
        for (arn, tg) in &self.target_groups {
            for (id, rec) in &tg.targets {
                let running = self
                    .instances
                    .get(id)
                    .is_some_and(|i| i.state == InstanceState::Running);
                match evolve(rec, tg, running, self.app_health(id, arn), t, &self.wake) {
                    Change::Keep => {}
                    change => changes.push((arn.clone(), id.clone(), change)),
                }
            }
        }
        for (arn, id, change) in changes {
            let targets = &mut self.target_groups.get_mut(&arn).expect("listed above").targets;
            match change {
                Change::Set(rec) => {
                    targets.insert(id, rec);
                }
                Change::Remove => {
                    targets.remove(&id);
                }
                Change::Keep => {}
            }
        }
    }

    pub fn target_health(&self, arn: &str) -> CloudResult<Vec<TargetHealth>> {
        let tg = self.target_groups.get(arn).ok_or_else(|| {
            err(
                actions::DESCRIBE_TARGET_HEALTH.name,
                "TargetGroupNotFound",
                format!("Target groups '{arn}' not found"),
            )
        })?;
        Ok(tg
            .targets
            .iter()
            .map(|(id, t)| {
                let (reason, description) = match t.state {
                    TargetState::Initial => (
                        Some("Elb.InitialHealthChecking"),
                        Some("Initial health checks in progress"),
                    ),
                    TargetState::Unhealthy => (
                        Some("Target.ResponseCodeMismatch"),
                        Some("Health checks failed with these codes: [503]"),
                    ),
                    TargetState::Draining => (
                        Some("Target.DeregistrationInProgress"),
                        Some("Target deregistration is in progress"),
                    ),
                    TargetState::Unused => (Some("Target.InvalidState"), Some("Target is in the stopped state")),
                    _ => (None, None),
                };
                TargetHealth {
                    target_id: id.clone(),
                    port: Some(tg.port),
                    state: t.state.clone(),
                    reason: reason.map(str::to_string),
                    description: description.map(str::to_string),
                }
            })
            .collect())
    }
}

/// One tick of one target's health-check state machine.
fn evolve(rec: &TargetRec, tg: &TargetGroupRec, running: bool, want: Health, t: Instant, wake: &Wake) -> Change {
    let with = |state: TargetState, flip_at: Option<Instant>| {
        Change::Set(TargetRec {
            state,
            flip_at,
            ..rec.clone()
        })
    };
    match rec.state {
        TargetState::Draining => match rec.drain_until {
            Some(until) if wake.due(until, t) => Change::Remove,
            _ => Change::Keep,
        },
        _ if !running => match rec.state {
            TargetState::Unused => Change::Keep,
            _ => with(TargetState::Unused, None),
        },
        TargetState::Unused => Change::Set(TargetRec {
            state: TargetState::Initial,
            initial_until: t + tg.interval * tg.healthy_threshold,
            flip_at: None,
            drain_until: None,
        }),
        TargetState::Initial if wake.due(rec.initial_until, t) => match want {
            Health::Healthy => with(TargetState::Healthy, None),
            Health::Unhealthy => with(TargetState::Unhealthy, None),
            Health::StuckInitial => Change::Keep,
        },
        TargetState::Healthy | TargetState::Unhealthy => {
            let is_healthy = rec.state == TargetState::Healthy;
            // A target out of `initial` that stops answering is unhealthy; `StuckInitial` cannot go back.
            if (want == Health::Healthy) == is_healthy {
                return if rec.flip_at.is_some() {
                    with(rec.state.clone(), None)
                } else {
                    Change::Keep
                };
            }
            let threshold = if is_healthy {
                tg.unhealthy_threshold
            } else {
                tg.healthy_threshold
            };
            match rec.flip_at {
                None => with(rec.state.clone(), Some(t + tg.interval * threshold)),
                Some(at) if wake.due(at, t) => with(
                    if is_healthy {
                        TargetState::Unhealthy
                    } else {
                        TargetState::Healthy
                    },
                    None,
                ),
                Some(_) => Change::Keep,
            }
        }
        _ => Change::Keep,
    }
}

pub(crate) fn tag_health(tags: &Tags) -> Option<Health> {
    match tags.get(HEALTH_TAG)?.as_str() {
        "unhealthy" => Some(Health::Unhealthy),
        "initial" | "stuck" | "stuck-initial" => Some(Health::StuckInitial),
        "healthy" => Some(Health::Healthy),
        _ => None,
    }
}

/// Application-health controls for tests.
impl FakeCloud {
    /// Every instance launched from `ami` (and every image baked from such an instance) answers this way.
    pub fn set_image_health(&self, ami: &str, health: Health) {
        self.with(|s| s.rules.image.insert(ami.to_string(), health));
    }

    /// Breaks (or mends) one instance; a healthy target turns unhealthy after unhealthy-threshold × interval.
    pub fn set_instance_health(&self, id: &str, health: Health) {
        self.with(|s| s.rules.instance.insert(id.to_string(), health));
    }

    /// Health of instances from `ami` as seen by one target group only (mixed health across target groups).
    pub fn set_image_health_in(&self, ami: &str, target_group_arn: &str, health: Health) {
        self.with(|s| {
            s.rules
                .image_in_tg
                .entry(target_group_arn.to_string())
                .or_default()
                .insert(ami.to_string(), health)
        });
    }

    pub fn set_instance_health_in(&self, id: &str, target_group_arn: &str, health: Health) {
        self.with(|s| {
            s.rules
                .instance_in_tg
                .entry(target_group_arn.to_string())
                .or_default()
                .insert(id.to_string(), health)
        });
    }
}

//! Auto Scaling groups: members and their lifecycle (Pending → [Pending:Wait → Pending:Proceed, with a
//! launch hook] → InService with target registration; Terminating = draining, then EC2 termination;
//! Standby, out of the capacity), health replacement, and desired-capacity repair. What a group
//! launches from is in `launch.rs`, its warm pool in `warm.rs`.

use crate::cloud::actions;
use std::collections::BTreeSet;

use tokio::time::Instant;

use super::conventions::err;
use super::group_records::{GroupRec, HookResult, Launch, Lifecycle, MemberRec, Origin, Source};
use super::state::State;
use crate::cloud::CloudResult;
use crate::core::model::*;

impl GroupRec {
    /// Members that count towards the desired capacity (not leaving, not in Standby).
    pub fn live(&self) -> impl Iterator<Item = &MemberRec> {
        self.members.iter().filter(|m| !matches!(m.lifecycle, Lifecycle::Terminating | Lifecycle::Standby))
    }
}

impl Lifecycle {
    /// The state as DescribeAutoScalingGroups names it.
    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::Pending => "Pending",
            Lifecycle::PendingWait => "Pending:Wait",
            Lifecycle::PendingProceed => "Pending:Proceed",
            Lifecycle::InService => "InService",
            Lifecycle::Terminating => "Terminating",
            Lifecycle::Standby => "Standby",
        }
    }
}

impl State {
    pub fn group_or_err(&self, action: &str, name: &str) -> CloudResult<&GroupRec> {
        self.groups.get(name).ok_or_else(|| {
            err(
                action,
                "ValidationError",
                format!("AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"),
            )
        })
    }

    /// What the group launches from now, numbered (empty when a version it names is gone).
    pub fn group_launches(&self, g: &GroupRec) -> Vec<Launch> {
        self.resolve_source(&g.source).unwrap_or_default()
    }

    /// Is process `p` (Launch, Terminate, InstanceRefresh, ...) suspended on the group?
    pub fn suspended(&self, group: &str, p: &str) -> bool {
        self.groups.get(group).is_some_and(|g| g.suspended.contains(p))
    }

    pub fn member_view(&self, m: &MemberRec) -> GroupInstance {
        let (launch_template, launch_configuration) = self.origin_view(&m.origin);
        GroupInstance {
            id: m.id.clone(),
            lifecycle_state: m.lifecycle.name().to_string(),
            health_status: if m.healthy { "Healthy" } else { "Unhealthy" }.to_string(),
            // Each instance's own template version, as AWS reports it (moto alone did not).
            launch_template,
            launch_configuration,
            protected_from_scale_in: m.protected,
            instance_type: self.instance_type_of(&m.id),
        }
    }

    pub fn group_view(&self, g: &GroupRec) -> Group {
        let (launch_template, mixed_instances, launch_configuration) = self.source_view(&g.source);
        Group {
            name: g.name.clone(),
            launch_template,
            mixed_instances,
            launch_configuration,
            min_size: g.min,
            max_size: g.max,
            desired_capacity: g.desired,
            target_group_arns: g.target_groups.clone(),
            instances: g.members.iter().map(|m| self.member_view(m)).collect(),
            tags: g.tags.clone(),
            suspended_processes: g.suspended.iter().cloned().collect(),
            warm_pool: g.warm.as_ref().map(|w| w.config_view()),
        }
    }

    pub fn set_group_tag(&mut self, group: &str, key: &str, value: Option<&str>) -> CloudResult<()> {
        let action = if value.is_some() { actions::TAG_GROUP.name } else { actions::UNTAG_GROUP.name };
        self.group_or_err(action, group)?;
        let g = self.groups.get_mut(group).expect("checked above");
        match value {
            Some(v) => g.tags.insert(key.to_string(), v.to_string()),
            None => g.tags.remove(key),
        };
        Ok(())
    }

    /// UpdateAutoScalingGroup with a launch template or a mixed instances policy: instances stay as
    /// they are (a launch-configuration group's keep reporting their configuration until replaced).
    pub fn set_group_configuration(&mut self, group: &str, config: &Configuration) -> CloudResult<()> {
        const A: &str = actions::UPDATE_GROUP.name;
        self.group_or_err(A, group)?;
        let invalid = |what: String| err(A, "ValidationError", format!("You must use a valid fully-formed launch template. {what}"));
        for (id, version) in config.launches() {
            let t = self
                .templates
                .get(id)
                .ok_or_else(|| invalid(format!("The specified launch template, with template ID {id}, does not exist.")))?;
            t.resolve(version).ok_or_else(|| invalid(format!("Could not find launch template version {version}.")))?;
        }
        if config.policy().is_some() && self.groups[group].warm.is_some() {
            return Err(err(A, "ValidationError", "You cannot use a mixed instances policy with a warm pool."));
        }
        self.groups.get_mut(group).expect("checked above").source = Source::of(config);
        Ok(())
    }

    /// Launches a member (`launch`, from `State::pick_launch`); the error is Auto Scaling's activity message.
    pub fn launch_member(&mut self, group: &str, launch: &Launch, at: Instant) -> Result<String, String> {
        let id = self.launch_for_group(group, launch, at)?;
        let member = MemberRec {
            id: id.clone(),
            lifecycle: Lifecycle::Pending,
            healthy: true,
            origin: launch.origin.clone(),
            protected: false,
            in_service_at: None,
            grace_until: None,
            terminate_at: None,
            hook: None,
        };
        self.groups.get_mut(group).expect("caller checked the group").members.push(member);
        Ok(id)
    }

    /// Launches the group's next member from what it launches from now.
    pub fn launch_next(&mut self, group: &str, at: Instant) -> Result<String, String> {
        let launches = self.groups.get(group).map(|g| self.group_launches(g)).unwrap_or_default();
        let launch = self.pick_launch(group, &launches).ok_or("The group's launch template version does not exist.")?;
        self.launch_member(group, &launch, at)
    }

    /// Deregisters the member from every target group of the group and terminates it once draining is over.
    pub fn begin_terminate(&mut self, group: &str, id: &str, at: Instant) {
        let tgs = self
            .groups
            .get(group)
            .map(|g| g.target_groups.clone())
            .unwrap_or_default();
        let delay = tgs
            .iter()
            .map(|arn| self.deregister_target(arn, id, at))
            .max()
            .unwrap_or_default();
        if let Some(m) = self
            .groups
            .get_mut(group)
            .and_then(|g| g.members.iter_mut().find(|m| m.id == id))
        {
            if m.lifecycle != Lifecycle::Terminating {
                m.lifecycle = Lifecycle::Terminating;
                m.terminate_at = Some(at + delay);
            }
        }
    }

    pub fn healthy_in_all_tgs(&self, g: &GroupRec, id: &str) -> bool {
        self.instances
            .get(id)
            .is_some_and(|i| i.state == InstanceState::Running)
            && g.target_groups
                .iter()
                .all(|arn| self.target_state(arn, id) == Some(&TargetState::Healthy))
    }

    /// Healthy as Auto Scaling judges it: in service, running, and (ELB health checks) healthy in every target group.
    pub fn member_healthy(&self, g: &GroupRec, m: &MemberRec) -> bool {
        let running = self
            .instances
            .get(&m.id)
            .is_some_and(|i| i.state == InstanceState::Running);
        m.lifecycle == Lifecycle::InService && running && (!g.elb_health || self.healthy_in_all_tgs(g, &m.id))
    }

    /// The name of the first of the group's target groups reporting the member `unhealthy`.
    pub fn unhealthy_in(&self, g: &GroupRec, id: &str) -> Option<String> {
        let arn = g
            .target_groups
            .iter()
            .find(|arn| self.target_state(arn, id) == Some(&TargetState::Unhealthy))?;
        Some(self.target_groups[arn].name.clone())
    }

    pub fn step_group_lifecycle(&mut self, t: Instant) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            let managed = self.refresh_managed(&name);
            let g = &self.groups[&name];
            let (mut to_service, mut to_replace, mut to_kill, mut gone) = (vec![], vec![], vec![], BTreeSet::new());
            let (mut to_wait, mut to_proceed, mut abandoned) = (vec![], vec![], vec![]);
            for m in &g.members {
                let state = self.instances.get(&m.id).map(|i| i.state.clone());
                let running = state == Some(InstanceState::Running);
                match m.lifecycle {
                    Lifecycle::Pending if running && g.launch_hook.is_some() => to_wait.push(m.id.clone()),
                    Lifecycle::Pending | Lifecycle::PendingProceed if running => to_service.push(m.id.clone()),
                    Lifecycle::Pending | Lifecycle::PendingWait | Lifecycle::PendingProceed
                        if !matches!(state, Some(InstanceState::Pending | InstanceState::Running)) =>
                    {
                        to_replace.push(m.id.clone())
                    }
                    Lifecycle::PendingWait => match m.hook {
                        Some((at, HookResult::Continue)) if self.wake.due(at, t) => to_proceed.push(m.id.clone()),
                        Some((at, HookResult::Abandon)) if self.wake.due(at, t) => abandoned.push(m.id.clone()),
                        _ => {}
                    },
                    // Standby instances are not health checked and never replaced.
                    Lifecycle::Pending | Lifecycle::PendingProceed | Lifecycle::Standby => {}
                    Lifecycle::InService => {
                        let past_grace = m.grace_until.is_some_and(|until| self.wake.due(until, t));
                        let elb_bad = g.elb_health
                            && past_grace
                            && !managed.contains(&m.id)
                            && self.unhealthy_in(g, &m.id).is_some();
                        if !running || elb_bad {
                            to_replace.push(m.id.clone());
                        }
                    }
                    Lifecycle::Terminating => {
                        if state.is_none() || state == Some(InstanceState::Terminated) {
                            gone.insert(m.id.clone());
                        } else if m.terminate_at.is_some_and(|at| self.wake.due(at, t)) {
                            to_kill.push(m.id.clone());
                        }
                    }
                }
            }
            let (tgs, grace, hook) = (g.target_groups.clone(), g.grace, g.launch_hook);
            let waits: Vec<_> = to_wait.iter().map(|id| (id.clone(), hook.map(|h| self.begin_wait(h, id, t)))).collect();
            let proceeds = to_proceed.iter().map(|id| (id.clone(), None));
            for (id, decision) in waits.into_iter().chain(proceeds) {
                if let Some(m) = self.groups.get_mut(&name).and_then(|g| g.members.iter_mut().find(|m| m.id == id)) {
                    // CONTINUE: Pending:Proceed now, InService (and registered) at the next tick.
                    m.lifecycle = if decision.is_some() { Lifecycle::PendingWait } else { Lifecycle::PendingProceed };
                    m.hook = decision;
                }
            }
            for id in &abandoned {
                self.note_abandoned(&name, id);
                self.begin_terminate(&name, id, t);
            }
            for id in &to_service {
                tgs.iter().for_each(|arn| self.register_target(arn, id, t));
                if let Some(m) = self
                    .groups
                    .get_mut(&name)
                    .and_then(|g| g.members.iter_mut().find(|m| &m.id == id))
                {
                    m.lifecycle = Lifecycle::InService;
                    m.in_service_at = Some(t);
                    m.grace_until = Some(t + grace);
                }
            }
            for id in &to_replace {
                if let Some(m) = self
                    .groups
                    .get_mut(&name)
                    .and_then(|g| g.members.iter_mut().find(|m| &m.id == id))
                {
                    m.healthy = false;
                }
                self.begin_terminate(&name, id, t);
            }
            to_kill.iter().for_each(|id| self.terminate_instance(id, t));
            self.groups
                .get_mut(&name)
                .expect("listed above")
                .members
                .retain(|m| !gone.contains(&m.id));
        }
    }

    /// Keeps the group at its desired capacity, except while a refresh owns the group's launches (and
    /// not while Launch or Terminate is suspended).
    pub fn step_group_capacity(&mut self, t: Instant) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            if self.active_refresh(&name).is_some() {
                continue;
            }
            let g = &self.groups[&name];
            let (live, desired) = (g.live().count(), g.desired.max(0) as usize);
            if live < desired && !g.suspended.contains("Launch") && g.launch_retry_at.is_none_or(|at| self.wake.due(at, t)) {
                for _ in live..desired {
                    if self.launch_next(&name, t).is_err() {
                        self.groups.get_mut(&name).expect("listed above").launch_retry_at = Some(t + self.timings.launch_retry);
                        break;
                    }
                }
            } else if live > desired && !g.suspended.contains("Terminate") {
                // Scale-in order: instances not on the group's configuration first (as the default policy
                // does: launch configurations, then other templates or versions), then the oldest; never a
                // protected one. After a cancelled Max>100 refresh this removes the surplus new instances.
                let current: Vec<Origin> = self.group_launches(g).into_iter().map(|l| l.origin).collect();
                let mut extra: Vec<(bool, Instant, String)> = g
                    .live()
                    .filter(|m| !m.protected)
                    .map(|m| {
                        let launched = self.instances.get(&m.id).map_or(t, |i| i.launched);
                        (current.contains(&m.origin), launched, m.id.clone())
                    })
                    .collect();
                extra.sort();
                for (_, _, id) in extra.into_iter().take(live - desired) {
                    self.begin_terminate(&name, &id, t);
                }
            }
        }
    }

    /// Records, per group, the lowest number of in-service members healthy in all their target groups.
    pub fn record_capacity(&mut self) {
        for g in self.groups.values() {
            let healthy = g
                .members
                .iter()
                .filter(|m| m.lifecycle == Lifecycle::InService && self.healthy_in_all_tgs(g, &m.id))
                .count();
            match self.min_healthy_seen.get_mut(&g.name) {
                Some(seen) => *seen = (*seen).min(healthy),
                None => {
                    self.min_healthy_seen.insert(g.name.clone(), healthy);
                }
            }
        }
    }
}

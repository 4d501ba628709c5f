//! Warm pools: pre-initialised instances outside the group (`Warmed:Pending` → stopped or kept running
//! → `Warmed:Stopped` / `Warmed:Running`, `Warmed:Terminating` on the way out), kept at the pool's size
//! (MaxGroupPreparedCapacity, else the group's MaxSize, minus the desired capacity; at least MinSize)
//! from what the group launches from — or, while a refresh runs, from its desired configuration. A
//! refresh replaces them after the InService instances (`rollout.rs`). Simpler than AWS: scale-out does
//! not draw on the pool, and a refresh replaces the whole pool at once.

use tokio::time::Instant;

use super::group_records::{GroupRec, Launch, PoolState, WarmMember, WarmRec, WarmState};
use super::state::State;
use super::FakeCloud;
use crate::core::model::*;

impl WarmRec {
    pub fn config_view(&self) -> WarmPool {
        WarmPool {
            min_size: Some(self.min_size),
            max_group_prepared_capacity: self.max_prepared,
            pool_state: Some(match self.pool_state {
                PoolState::Stopped => "Stopped".into(),
                PoolState::Running => "Running".into(),
            }),
            status: None,
            instances: None,
        }
    }

    /// How many instances the pool keeps for a group of `max` and `desired`.
    pub fn size(&self, max: i32, desired: i32) -> usize {
        (self.max_prepared.filter(|m| *m >= 0).unwrap_or(max) - desired).max(self.min_size).max(0) as usize
    }

    pub fn live(&self) -> impl Iterator<Item = &WarmMember> {
        self.members.iter().filter(|m| m.state != WarmState::Terminating)
    }
}

impl State {
    /// What new warm instances launch from: the active refresh's target, else the group's configuration.
    fn warm_launches(&self, g: &GroupRec) -> Vec<Launch> {
        let refreshing = self.active_refresh(&g.name).and_then(|i| self.refreshes[i].phase.as_ref()).map(|p| p.target.clone());
        refreshing.unwrap_or_else(|| self.group_launches(g))
    }

    pub fn step_warm_pools(&mut self, t: Instant) {
        let names: Vec<String> = self.groups.iter().filter(|(_, g)| g.warm.is_some()).map(|(n, _)| n.clone()).collect();
        for name in names {
            let g = &self.groups[&name];
            let w = g.warm.as_ref().expect("filtered");
            let (mut to_stop, mut warmed, mut gone) = (vec![], vec![], vec![]);
            for m in &w.members {
                let state = self.instances.get(&m.id).map(|i| i.state.clone());
                match (m.state, state, w.pool_state) {
                    (WarmState::Terminating, None | Some(InstanceState::Terminated), _) => gone.push(m.id.clone()),
                    (WarmState::Pending, Some(InstanceState::Running), PoolState::Stopped) => to_stop.push(m.id.clone()),
                    (WarmState::Pending, Some(InstanceState::Running), PoolState::Running)
                    | (WarmState::Pending, Some(InstanceState::Stopped), PoolState::Stopped) => warmed.push(m.id.clone()),
                    _ => {}
                }
            }
            let missing = w.size(g.max, g.desired).saturating_sub(w.live().count());
            let launches = self.warm_launches(g);
            to_stop.iter().for_each(|id| self.stop_instance(id, t));
            let w = self.groups.get_mut(&name).and_then(|g| g.warm.as_mut()).expect("listed above");
            for m in w.members.iter_mut().filter(|m| warmed.contains(&m.id)) {
                m.state = WarmState::Warmed;
            }
            w.members.retain(|m| !gone.contains(&m.id));
            for _ in 0..missing {
                let Some(launch) = self.pick_warm(&name, &launches) else { break };
                let Ok(id) = self.launch_for_group(&name, &launch, t) else { break };
                let w = self.groups.get_mut(&name).and_then(|g| g.warm.as_mut()).expect("listed above");
                w.members.push(WarmMember { id, origin: launch.origin, state: WarmState::Pending });
            }
        }
    }

    fn pick_warm(&self, group: &str, launches: &[Launch]) -> Option<Launch> {
        let w = self.groups.get(group)?.warm.as_ref()?;
        launches.iter().enumerate().min_by_key(|(i, l)| (w.live().filter(|m| m.origin == l.origin).count(), *i)).map(|(_, l)| l.clone())
    }

    /// Terminates a warm instance (the pool refills).
    pub fn terminate_warm(&mut self, group: &str, id: &str, t: Instant) {
        self.terminate_instance(id, t);
        if let Some(m) = self.groups.get_mut(group).and_then(|g| g.warm.as_mut()).and_then(|w| w.members.iter_mut().find(|m| m.id == id)) {
            m.state = WarmState::Terminating;
        }
    }

    /// DescribeWarmPool's instances.
    pub fn warm_view(&self, group: &str) -> Vec<GroupInstance> {
        let Some(w) = self.groups.get(group).and_then(|g| g.warm.as_ref()) else { return Vec::new() };
        w.members
            .iter()
            .map(|m| {
                let (launch_template, launch_configuration) = self.origin_view(&m.origin);
                let lifecycle = match (m.state, w.pool_state) {
                    (WarmState::Pending, _) => "Warmed:Pending",
                    (WarmState::Warmed, PoolState::Stopped) => "Warmed:Stopped",
                    (WarmState::Warmed, PoolState::Running) => "Warmed:Running",
                    (WarmState::Terminating, _) => "Warmed:Terminating",
                };
                GroupInstance {
                    id: m.id.clone(),
                    lifecycle_state: lifecycle.into(),
                    health_status: "Healthy".into(),
                    launch_template,
                    launch_configuration,
                    protected_from_scale_in: false,
                    instance_type: self.instance_type_of(&m.id),
                }
            })
            .collect()
    }
}

impl FakeCloud {
    /// PutWarmPool on `group`; its instances launch (and warm up) from the next tick on.
    pub fn add_warm_pool(&self, group: &str, min_size: i32, max_prepared: Option<i32>, pool_state: PoolState) {
        self.with(|s| {
            let g = s.groups.get_mut(group).unwrap_or_else(|| panic!("no group {group}"));
            g.warm = Some(WarmRec { min_size, max_prepared, pool_state, members: Vec::new() });
        });
    }

    /// The warm pool's instances as (id, image, lifecycle state).
    pub fn warm_instances(&self, group: &str) -> Vec<(String, String, String)> {
        self.with(|s| {
            s.warm_view(group)
                .into_iter()
                .map(|i| {
                    let image = s.instances.get(&i.id).map(|r| r.image_id.clone()).unwrap_or_default();
                    (i.id, image, i.lifecycle_state)
                })
                .collect()
        })
    }
}

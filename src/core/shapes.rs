//! The parts a group is made of, below `Group` itself (`super::model`, which re-exports them): the
//! launch template it points at (`TemplateRef`), its members (`GroupInstance`), and the shapes teams run
//! besides a plain launch template: a mixed instances policy (its template, overrides — each maybe with
//! a template of its own — and distribution), a warm pool, and what an instance refresh does with
//! Standby and scale-in-protected instances. Domain types only; the SDK adapter fills them in
//! (`crate::aws::autoscaling`), the engine passes them on.

use std::collections::BTreeMap;

use serde::Serialize;

/// The launch template an Auto Scaling group points at, as the group stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    pub id: String,
    pub name: String,
    /// A number, `$Latest` or `$Default`.
    pub version: String,
}

impl TemplateRef {
    /// AWS can only roll back to a numbered version; `$Latest` / `$Default` make a refresh irreversible.
    pub fn numbered_version(&self) -> Option<i64> {
        self.version.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInstance {
    pub id: String,
    /// Pending, Pending:Wait, InService, Terminating, ... (as Auto Scaling reports it).
    pub lifecycle_state: String,
    /// Healthy / Unhealthy.
    pub health_status: String,
    /// The launch template and version the instance was launched from, as DescribeAutoScalingGroups
    /// reports it per instance (None for launch configurations). With the release's versions known,
    /// this names the instance's image without asking EC2.
    pub launch_template: Option<TemplateRef>,
    /// The launch configuration it was launched from (kept after the group moved to a template, until
    /// the instance is replaced).
    pub launch_configuration: Option<String>,
    /// ProtectedFromScaleIn: a refresh replaces it only as `scale_in_protected_instances` says.
    pub protected_from_scale_in: bool,
    pub instance_type: Option<String>,
}

impl GroupInstance {
    /// A member as fixtures and tests write it: in service, healthy, template unknown.
    pub fn in_service_healthy(id: &str) -> Self {
        Self {
            id: id.into(),
            lifecycle_state: "InService".into(),
            health_status: "Healthy".into(),
            launch_template: None,
            launch_configuration: None,
            protected_from_scale_in: false,
            instance_type: None,
        }
    }

    /// In Standby (or entering it): out of the group's capacity, still running its image.
    pub fn in_standby(&self) -> bool {
        self.lifecycle_state.ends_with("Standby")
    }

    pub fn in_service(&self) -> bool {
        self.lifecycle_state == "InService"
    }
    /// Held by a launch lifecycle hook (`Pending:Wait`, or `Warmed:Pending:Wait` leaving a warm pool)
    /// until the application completes the action or the heartbeat times out.
    pub fn waiting_on_hook(&self) -> bool {
        self.lifecycle_state.ends_with("Pending:Wait")
    }
    /// Still part of the fleet (not being terminated or detached).
    pub fn is_member(&self) -> bool {
        !(self.lifecycle_state.starts_with("Terminat") || self.lifecycle_state.starts_with("Detach") || self.in_standby())
    }
}

/// A group's MixedInstancesPolicy, as much of it as a refresh's DesiredConfiguration must carry
/// unchanged (only the launch templates' versions change in a deploy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MixedPolicy {
    /// `MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification` (the group's top-level
    /// `LaunchTemplate` is empty: deitch/aws-asg-roller PR #33 crashed on that).
    pub template: TemplateRef,
    pub overrides: Vec<Override>,
    pub distribution: Option<Distribution>,
    /// Parts of the policy bakeroll does not model and so could not pass on unchanged (attribute-based
    /// InstanceRequirements, an override's own ImageId, DistributionSegments): a deploy refuses them.
    pub unsupported: Vec<String>,
}

/// One of the policy's `Overrides`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Override {
    pub instance_type: Option<String>,
    pub weighted_capacity: Option<String>,
    /// The override's own launch template (instances of this type launch from it, not the policy's).
    pub template: Option<TemplateRef>,
}

/// `InstancesDistribution`, passed on as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    pub on_demand_allocation_strategy: Option<String>,
    pub on_demand_base_capacity: Option<i32>,
    pub on_demand_percentage_above_base_capacity: Option<i32>,
    pub spot_allocation_strategy: Option<String>,
    pub spot_instance_pools: Option<i32>,
    pub spot_max_price: Option<String>,
}

impl MixedPolicy {
    /// Launch templates of overrides other than the policy's own, each once, in policy order.
    pub fn override_templates(&self) -> Vec<&TemplateRef> {
        let mut out: Vec<&TemplateRef> = Vec::new();
        for t in self.overrides.iter().filter_map(|o| o.template.as_ref()) {
            if t.id != self.template.id && !out.iter().any(|o| o.id == t.id) {
                out.push(t);
            }
        }
        out
    }

    /// The same policy launching `primary` of its template and, for override templates, the versions
    /// in `overrides` (template id → version); everything else unchanged.
    pub fn with_versions(&self, primary: i64, overrides: &BTreeMap<String, i64>) -> Self {
        let set = |t: &TemplateRef, v: i64| TemplateRef { version: v.to_string(), ..t.clone() };
        let mut p = self.clone();
        p.template = set(&self.template, primary);
        for o in &mut p.overrides {
            if let Some(t) = o.template.as_mut() {
                let v = if t.id == self.template.id { Some(primary) } else { overrides.get(&t.id).copied() };
                if let Some(v) = v {
                    *t = set(t, v);
                }
            }
        }
        p
    }

    /// Every (template id, version) an instance of this policy may launch from.
    pub fn launches(&self) -> Vec<(&str, &str)> {
        let mut out = vec![(self.template.id.as_str(), self.template.version.as_str())];
        out.extend(self.override_templates().into_iter().map(|t| (t.id.as_str(), t.version.as_str())));
        out
    }
}

/// What instances launch from: a group's configuration, or a refresh's desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Configuration {
    Template(TemplateRef),
    Mixed(MixedPolicy),
}

impl Configuration {
    /// The launch template the configuration is built on (a policy's own template).
    pub fn template(&self) -> &TemplateRef {
        match self {
            Self::Template(t) => t,
            Self::Mixed(p) => &p.template,
        }
    }

    pub fn policy(&self) -> Option<&MixedPolicy> {
        match self {
            Self::Template(_) => None,
            Self::Mixed(p) => Some(p),
        }
    }

    /// Every (template id, version) an instance may launch from.
    pub fn launches(&self) -> Vec<(&str, &str)> {
        match self {
            Self::Template(t) => vec![(t.id.as_str(), t.version.as_str())],
            Self::Mixed(p) => p.launches(),
        }
    }

    /// AWS rolls back only to numbered versions (of every template a policy names).
    pub fn numbered(&self) -> bool {
        self.launches().iter().all(|(_, v)| v.parse::<i64>().is_ok())
    }
}

/// A group's warm pool (WarmPoolConfiguration) and, once DescribeWarmPool was asked, its instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarmPool {
    pub min_size: Option<i32>,
    pub max_group_prepared_capacity: Option<i32>,
    /// Stopped, Running or Hibernated.
    pub pool_state: Option<String>,
    /// PendingDelete while the pool is being deleted.
    pub status: Option<String>,
    /// None until DescribeWarmPool was asked (`engine::observe::describe_group`): a check that needs
    /// them says the pool is unknown rather than passing.
    pub instances: Option<Vec<GroupInstance>>,
}

/// RefreshPreferences.StandbyInstances: what the refresh does with instances in Standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StandbyInstances {
    Terminate,
    Ignore,
    /// AWS's default: wait one hour for them to return to service, then fail.
    Wait,
}

/// RefreshPreferences.ScaleInProtectedInstances: what the refresh does with protected instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProtectedInstances {
    Refresh,
    Ignore,
    /// AWS's default: wait one hour for the protection to be removed, then fail.
    Wait,
}

impl StandbyInstances {
    pub const VALUES: &'static [&'static str] = &["Terminate", "Ignore", "Wait"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Terminate" => Self::Terminate,
            "Ignore" => Self::Ignore,
            "Wait" => Self::Wait,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "Terminate",
            Self::Ignore => "Ignore",
            Self::Wait => "Wait",
        }
    }
}

impl ProtectedInstances {
    pub const VALUES: &'static [&'static str] = &["Refresh", "Ignore", "Wait"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Refresh" => Self::Refresh,
            "Ignore" => Self::Ignore,
            "Wait" => Self::Wait,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refresh => "Refresh",
            Self::Ignore => "Ignore",
            Self::Wait => "Wait",
        }
    }
}

/// Which instances a refresh leaves on their old image because the preferences asked it to: they are
/// reported, never counted as verified, and do not fail the verification (`core::health`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LeftAlone {
    /// `standby_instances = "Ignore"`.
    pub standby: bool,
    /// `scale_in_protected_instances = "Ignore"`.
    pub protected: bool,
}

impl LeftAlone {
    pub fn of(standby: Option<StandbyInstances>, protected: Option<ProtectedInstances>) -> Self {
        Self { standby: standby == Some(StandbyInstances::Ignore), protected: protected == Some(ProtectedInstances::Ignore) }
    }
}

/// An instance left on another image than the release's, and the setting that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftBehind {
    pub id: String,
    pub image: String,
    /// `standby_instances = "Ignore"` or `scale_in_protected_instances = "Ignore"`.
    pub because: String,
}

/// A warm-pool instance as a verification last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolInstance {
    pub id: String,
    pub image: Option<String>,
    pub lifecycle: String,
}

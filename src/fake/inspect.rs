//! Read-only views of the fake world for test assertions; each one first steps the world to now, like a call.
//! None of them is recorded in the call ledger.

use std::time::Duration;

use super::resource_records::TemplateVersion;
use super::FakeCloud;
use crate::core::model::*;

impl FakeCloud {
    /// The group's members as (instance id, image id, lifecycle state), terminating ones included.
    pub fn group_instances(&self, group: &str) -> Vec<(String, String, String)> {
        self.with(|s| {
            let Some(g) = s.groups.get(group) else {
                return Vec::new();
            };
            g.members
                .iter()
                .map(|m| {
                    let image = s.instances.get(&m.id).map(|i| i.image_id.clone()).unwrap_or_default();
                    (m.id.clone(), image, format!("{:?}", m.lifecycle))
                })
                .collect()
        })
    }

    /// Image ids of the members in service, sorted: `["ami-new"; 4]` says the whole fleet is on the new image.
    pub fn in_service_images(&self, group: &str) -> Vec<String> {
        let mut images: Vec<String> = self
            .group_instances(group)
            .into_iter()
            .filter(|(.., l)| l == "InService")
            .map(|(_, image, _)| image)
            .collect();
        images.sort();
        images
    }

    pub fn group(&self, name: &str) -> Option<Group> {
        self.with(|s| s.groups.get(name).map(|g| s.group_view(g)))
    }

    pub fn instance(&self, id: &str) -> Option<Instance> {
        self.with(|s| s.instances.get(id).map(|i| s.instance_view(i)))
    }

    /// The instance type it was launched with (to check that a launch-template copy kept it).
    pub fn instance_type(&self, id: &str) -> Option<String> {
        self.with(|s| s.instances.get(id).map(|i| i.instance_type.clone()))
    }

    /// Any image the fake ever had, deregistered ones included (DescribeImages hides those).
    pub fn image(&self, id: &str) -> Option<Image> {
        self.with(|s| s.images.get(id).map(|i| s.image_view(i)))
    }

    /// Images not deregistered, this account's and others'.
    pub fn images(&self) -> Vec<Image> {
        self.with(|s| {
            s.images
                .values()
                .filter(|i| i.state != ImageState::Deregistered)
                .map(|i| s.image_view(i))
                .collect()
        })
    }

    /// Tags of a snapshot that still exists.
    pub fn snapshot_tags(&self, id: &str) -> Option<Tags> {
        self.with(|s| s.snapshots.get(id).map(|snap| snap.tags.clone()))
    }

    pub fn snapshot_ids(&self) -> Vec<String> {
        self.with(|s| s.snapshots.keys().cloned().collect())
    }

    /// The group's refreshes, newest first, as DescribeInstanceRefreshes returns them.
    pub fn refreshes(&self, group: &str) -> Vec<Refresh> {
        self.with(|s| s.describe_refreshes(group, &[]))
    }

    /// Instances (not shutting down or terminated) tagged `key=value`: what a leak check looks for.
    pub fn live_instances_with_tag(&self, key: &str, value: &str) -> Vec<String> {
        self.with(|s| {
            s.instances
                .values()
                .filter(|i| !i.state.is_gone() && i.tags.get(key).is_some_and(|v| v == value))
                .map(|i| i.id.clone())
                .collect()
        })
    }

    /// The lowest number of in-service instances healthy in all the group's target groups seen at any tick
    /// since the group was created: equal to the desired capacity means the deploy lost no capacity.
    pub fn min_in_service_healthy_seen(&self, group: &str) -> Option<usize> {
        self.with(|s| s.min_healthy_seen.get(group).copied())
    }

    /// Forgets the lowest healthy count seen so far (e.g. after a test broke instances on purpose).
    pub fn reset_min_in_service_healthy_seen(&self, group: &str) {
        self.with(|s| s.min_healthy_seen.remove(group));
    }

    /// Target states of a target group, draining ones included.
    pub fn target_states(&self, target_group_arn: &str) -> Vec<(String, TargetState)> {
        self.with(|s| {
            s.target_groups
                .get(target_group_arn)
                .map(|tg| tg.targets.iter().map(|(id, t)| (id.clone(), t.state.clone())).collect())
                .unwrap_or_default()
        })
    }

    pub fn template_version(&self, template_id: &str, version: i64) -> Option<TemplateVersion> {
        self.with(|s| s.templates.get(template_id)?.versions.get(&version).cloned())
    }

    /// The template's default version number.
    pub fn default_version(&self, template_id: &str) -> Option<i64> {
        self.with(|s| s.templates.get(template_id).map(|t| t.default_version))
    }

    /// Virtual time since `FakeCloud::new`.
    pub fn now_offset(&self) -> Duration {
        self.with(|s| s.now.saturating_duration_since(s.start))
    }
}

//! Launch lifecycle hooks (`autoscaling:EC2_INSTANCE_LAUNCHING`): a new member of a group with a hook
//! waits in `Pending:Wait` until its action is completed — CONTINUE lets it go `Pending:Proceed` →
//! `InService` (registered in the target groups only then, its grace period starting then), ABANDON
//! terminates it — or until the hook's heartbeat timeout passes and its DefaultResult applies (Auto
//! Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks"; PutLifecycleHook: HeartbeatTimeout
//! default 3600 s, DefaultResult default ABANDON). An abandoned replacement counts as a failed one for
//! the refresh that launched it.
//!
//! What completes an action is the application, as the local AWS emulator models it: the tag
//! `local-aws:lifecycle` = `continue-after:<s>` / `abandon-after:<s>` on the instance or its image,
//! or `FakeCloud::set_image_lifecycle`. Without either, nobody completes it and the timeout decides.

use tokio::time::{Duration, Instant};

use super::group_records::{HookResult, LaunchHook};
use super::state::State;
use super::FakeCloud;
use crate::core::model::Tags;

/// The tag the local AWS emulator reads on an image or instance.
pub const LIFECYCLE_TAG: &str = "local-aws:lifecycle";

/// When the application completes the action, counted from entering `Pending:Wait`.
pub(crate) fn tag_rule(tags: &Tags) -> Option<(Duration, HookResult)> {
    let (what, secs) = tags.get(LIFECYCLE_TAG)?.split_once("-after:")?;
    let result = match what {
        "continue" => HookResult::Continue,
        "abandon" => HookResult::Abandon,
        _ => return None,
    };
    Some((Duration::from_secs_f64(secs.parse().ok()?), result))
}

impl State {
    /// What the application on `id` will do with its launch action: tag on the instance, rule for its
    /// image, tag on the image.
    fn hook_rule(&self, id: &str) -> Option<(Duration, HookResult)> {
        let inst = self.instances.get(id)?;
        tag_rule(&inst.tags)
            .or_else(|| self.rules.image_lifecycle.get(&inst.image_id).copied())
            .or_else(|| self.images.get(&inst.image_id).and_then(|i| tag_rule(&i.tags)))
    }

    /// A running member of a group with a launch hook: starts waiting. Returns the decision's deadline.
    pub fn begin_wait(&self, hook: LaunchHook, id: &str, t: Instant) -> (Instant, HookResult) {
        match self.hook_rule(id) {
            Some((after, result)) if after < hook.heartbeat_timeout => (t + after, result),
            _ => (t + hook.heartbeat_timeout, hook.default_result),
        }
    }

    /// The ABANDON of a replacement the group's active refresh launched is one of its failed replacements.
    pub fn note_abandoned(&mut self, group: &str, id: &str) {
        let Some(idx) = self.active_refresh(group) else { return };
        if let Some(p) = self.refreshes[idx].phase.as_mut().filter(|p| p.launched.contains(id)) {
            p.failures += 1;
            p.last_failure = Some(format!("the launch of instance {id} was abandoned by a lifecycle hook"));
        }
    }
}

impl FakeCloud {
    /// PutLifecycleHook for `autoscaling:EC2_INSTANCE_LAUNCHING` on `group`: instances launched from now on wait.
    pub fn add_launch_hook(&self, group: &str, heartbeat_timeout: Duration, default_result: HookResult) {
        self.with(|s| {
            let g = s.groups.get_mut(group).unwrap_or_else(|| panic!("no group {group}"));
            g.launch_hook = Some(LaunchHook { heartbeat_timeout, default_result });
        });
    }

    /// Instances launched from `ami` complete their launch action with `result`, `after` entering `Pending:Wait`.
    pub fn set_image_lifecycle(&self, ami: &str, after: Duration, result: HookResult) {
        self.with(|s| s.rules.image_lifecycle.insert(ami.to_string(), (after, result)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulators_tag_grammar() {
        let tags = |v: &str| Tags::from([(LIFECYCLE_TAG.to_string(), v.to_string())]);
        assert_eq!(tag_rule(&tags("continue-after:90")), Some((Duration::from_secs(90), HookResult::Continue)));
        assert_eq!(tag_rule(&tags("abandon-after:2.5")), Some((Duration::from_millis(2500), HookResult::Abandon)));
        assert_eq!(tag_rule(&tags("explode-after:1")), None);
        assert_eq!(tag_rule(&Tags::new()), None);
    }
}

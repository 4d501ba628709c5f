//! Fault injection: per-action errors (one-shot or always), denied permissions, latency and AWS-style
//! throttling (token buckets), plus scenario controls that make the world misbehave (external
//! cancel/failure of a refresh, failed images, hung builds).

use std::time::Duration;

use tokio::time::Instant;

use super::conventions::{glob, ACCOUNT};
use super::FakeCloud;
use crate::cloud::{CloudError, CloudResult, ErrorKind};

#[derive(Default)]
pub(crate) struct Faults {
    /// (action pattern, kind, code), consumed by the first matching call.
    next: Vec<(String, ErrorKind, String)>,
    always: Vec<(String, ErrorKind, String)>,
    denied: Vec<String>,
    latency: Vec<(String, Duration)>,
    /// Action patterns whose next call is carried out but answered with a dropped connection.
    lost: Vec<String>,
    buckets: Vec<Bucket>,
    /// Every image CreateImage makes from now on ends `failed` instead of `available`.
    pub fail_new_images: bool,
    /// The next CreateLaunchTemplate drops the KeyName it was sent (`drop_key_name_on_next_template`).
    pub template_drops_key_name: bool,
    /// Every build instance launched from now on never finishes provisioning.
    pub hang_all_provisioning: bool,
}

/// AWS's throttling: a token bucket per account and region that every matching call drains by one and
/// that refills at a steady rate (EC2 and ELB API-throttling pages); an empty bucket answers
/// `Throttling` (`RequestLimitExceeded` for EC2).
#[derive(Debug, Clone)]
struct Bucket {
    pattern: String,
    size: f64,
    refill_per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() * self.refill_per_sec;
        self.tokens = (self.tokens + refilled).min(self.size);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Faults {
    /// The injected error for this call, if any. Denials first (they are about who calls), then one-shots,
    /// then throttling.
    pub fn check(&mut self, action: &str) -> CloudResult<()> {
        if self.denied.iter().any(|p| glob(p, action)) {
            let code = if action.starts_with("ec2:") {
                "UnauthorizedOperation"
            } else {
                "AccessDenied"
            };
            let msg = format!(
                "User: arn:aws:sts::{}:assumed-role/bakeroll-ci/fake is not authorized to perform: {action}",
                ACCOUNT
            );
            return Err(CloudError::with_kind(action, ErrorKind::Denied, Some(code), msg));
        }
        if let Some(i) = self.next.iter().position(|(p, ..)| glob(p, action)) {
            let (_, kind, code) = self.next.remove(i);
            return Err(CloudError::with_kind(
                action,
                kind,
                Some(&code),
                "injected fault (fail_next)",
            ));
        }
        if let Some((_, kind, code)) = self.always.iter().find(|(p, ..)| glob(p, action)) {
            return Err(CloudError::with_kind(
                action,
                *kind,
                Some(code),
                "injected fault (fail_always)",
            ));
        }
        let now = Instant::now();
        // Every matching bucket is drained (a call may count against several), and any empty one refuses.
        let throttled = self.buckets.iter_mut().filter(|b| glob(&b.pattern, action)).fold(false, |t, b| !b.take(now) | t);
        if throttled {
            let code = if action.starts_with("ec2:") { "RequestLimitExceeded" } else { "Throttling" };
            return Err(CloudError::service(action, Some(code), "Rate exceeded"));
        }
        Ok(())
    }

    /// After a call was served: whether its answer is to be lost (consumes the fault).
    pub fn lose_answer(&mut self, action: &str) -> bool {
        match self.lost.iter().position(|p| glob(p, action)) {
            Some(i) => {
                self.lost.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn latency(&self, action: &str) -> Option<Duration> {
        self.latency
            .iter()
            .rev()
            .find(|(p, _)| glob(p, action))
            .map(|(_, d)| *d)
    }
}

/// Call-level faults. `action` is an IAM action name and may use `*` (`ec2:*`, `*`).
impl FakeCloud {
    /// The next matching call fails with `kind`/`code`; later calls succeed again.
    pub fn fail_next(&self, action: &str, kind: ErrorKind, code: &str) {
        self.with(|s| s.faults.next.push((action.to_string(), kind, code.to_string())));
    }

    /// Every matching call fails until `clear_faults`.
    pub fn fail_always(&self, action: &str, kind: ErrorKind, code: &str) {
        self.with(|s| s.faults.always.push((action.to_string(), kind, code.to_string())));
    }

    /// The next matching call reaches AWS and takes effect, but its answer is lost: the caller sees a
    /// dropped connection (a transient error), as when a proxy or the network fails mid-answer.
    pub fn lose_next_answer(&self, action: &str) {
        self.with(|s| s.faults.lost.push(action.to_string()));
    }

    /// The caller lacks this permission: `UnauthorizedOperation` (EC2) or `AccessDenied` (others).
    pub fn deny(&self, action: &str) {
        self.with(|s| s.faults.denied.push(action.to_string()));
    }

    /// Matching calls take this long (virtual time) before they are served.
    pub fn set_latency(&self, action: &str, latency: Duration) {
        self.with(|s| s.faults.latency.push((action.to_string(), latency)));
    }

    /// AWS-style throttling of matching calls: a bucket of `size` tokens refilled `refill_per_sec` per
    /// second of virtual time, starting full (AWS: ELB Describe* 40 and 10/s, EC2 Describe* 100 and 20/s).
    pub fn throttle(&self, action: &str, size: u32, refill_per_sec: f64) {
        let bucket =
            Bucket { pattern: action.to_string(), size: f64::from(size), refill_per_sec, tokens: f64::from(size), at: Instant::now() };
        self.with(|s| s.faults.buckets.push(bucket));
    }

    /// Removes every call-level fault (errors, denials, latency, throttling); scenario controls stay.
    pub fn clear_faults(&self) {
        self.with(|s| {
            s.faults.buckets.clear();
            s.faults.next.clear();
            s.faults.always.clear();
            s.faults.denied.clear();
            s.faults.latency.clear();
            s.faults.lost.clear();
        });
    }
}

/// Scenario controls: the world misbehaving on its own.
impl FakeCloud {
    /// Someone cancels the group's active refresh (console, another pipeline). False if none was active.
    pub fn cancel_refresh_externally(&self, group: &str) -> bool {
        self.with(|s| s.cancel_refresh(group, "Cancelled due to user request.").is_ok())
    }

    /// The group's refresh fails now with `reason` (rolls back if it has AutoRollback). False if none could.
    pub fn fail_refresh_externally(&self, group: &str, reason: &str) -> bool {
        self.with(|s| {
            let idx = s.active_refresh(group).filter(|&i| {
                use crate::core::model::RefreshStatus::*;
                matches!(s.refreshes[i].status, Pending | InProgress | Baking)
            });
            if let Some(i) = idx {
                let now = s.now;
                s.fail_refresh(i, reason.to_string(), now);
            }
            idx.is_some()
        })
    }

    /// The image ends `failed`: at once if already settled, else when it would have become available.
    pub fn make_image_fail(&self, ami: &str) {
        self.with(|s| {
            if let Some(img) = s.images.get_mut(ami) {
                img.will_fail = true;
                if img.state == crate::core::model::ImageState::Available {
                    img.state = crate::core::model::ImageState::Failed;
                    img.state_reason = Some("Server.InternalError: Internal error on snapshot creation".into());
                }
            }
        });
    }

    /// Images created by CreateImage from now on end `failed` (the test does not know their ids yet).
    pub fn fail_new_images(&self, on: bool) {
        self.with(|s| s.faults.fail_new_images = on);
    }

    /// This build instance never finishes its user-data script, so it never stops.
    pub fn fail_provisioning(&self, instance_id: &str) {
        self.with(|s| {
            if let Some(i) = s.instances.get_mut(instance_id) {
                i.hang = true;
            }
        });
    }

    /// Build instances launched from now on never finish provisioning.
    pub fn fail_all_provisioning(&self, on: bool) {
        self.with(|s| s.faults.hang_all_provisioning = on);
    }
}

//! The fake's own tests: it must follow the AWS rules the engine relies on, in virtual time.

mod ec2;
mod elbv2;
mod refresh;
mod rollback;
mod time;

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cloud::Cloud;
use crate::core::model::*;

pub(super) fn prefs(min: i32, max: i32) -> RefreshPrefs {
    RefreshPrefs {
        min_healthy_percentage: min,
        max_healthy_percentage: max,
        instance_warmup: None,
        checkpoints: vec![],
        checkpoint_delay: None,
        skip_matching: false,
        auto_rollback: false,
        bake_time: None,
        alarms: vec![],
        standby_instances: None,
        scale_in_protected_instances: None,
    }
}

/// A deployed stack plus launch-template version 2 on a new image: the starting point of every refresh test.
pub(super) struct Deploy {
    pub fake: FakeCloud,
    pub cloud: Cloud,
    pub stack: StackIds,
    pub new_image: String,
    pub version: i64,
}

impl Deploy {
    pub async fn new(spec: StackSpec, new_image: ImageSpec) -> Self {
        let fake = FakeCloud::new();
        let stack = fake.add_stack(spec);
        let new_image = fake.add_image(new_image);
        let cloud = fake.cloud();
        let v = cloud
            .ec2
            .create_launch_template_version(&stack.template_id, 1, &new_image, "v2")
            .await
            .unwrap();
        Self {
            fake,
            cloud,
            stack,
            new_image,
            version: v.number,
        }
    }

    /// Four instances, two target groups, a healthy new image.
    pub async fn standard() -> Self {
        Self::new(
            StackSpec::new("shop-web").instances(4).target_groups(2),
            ImageSpec::named("shop-web-v2"),
        )
        .await
    }

    pub fn request(&self, prefs: RefreshPrefs) -> RefreshRequest {
        RefreshRequest::template(&self.stack.group, &self.stack.template_id, self.version, prefs)
    }

    pub async fn start(&self, prefs: RefreshPrefs) -> String {
        self.cloud
            .autoscaling
            .start_instance_refresh(&self.request(prefs))
            .await
            .unwrap()
    }

    pub fn latest(&self) -> Refresh {
        self.fake
            .refreshes(&self.stack.group)
            .into_iter()
            .next()
            .expect("a refresh was started")
    }

    /// Polls (1 s of virtual time apart) until the refresh is terminal.
    pub async fn finished(&self) -> Refresh {
        until(6 * 3600, || Some(self.latest()).filter(|r| r.status.is_terminal())).await
    }

    pub fn version_of_group(&self) -> String {
        self.fake
            .group(&self.stack.group)
            .unwrap()
            .launch_template
            .unwrap()
            .version
    }

    /// Images of the members still in the fleet (not terminating), sorted.
    pub fn fleet_images(&self) -> Vec<String> {
        let mut images: Vec<String> = self
            .fake
            .group_instances(&self.stack.group)
            .into_iter()
            .filter(|(.., lifecycle)| lifecycle != "Terminating")
            .map(|(_, image, _)| image)
            .collect();
        images.sort();
        images
    }
}

/// Polls `probe` every virtual second until it answers, for at most `limit_secs`.
pub(super) async fn until<T>(limit_secs: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(limit_secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit_secs} s of virtual time"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) async fn sleep(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

//! The ledger of what this run created and must not leave behind: build instances, images that never
//! became a release, and refreshes in flight (rolled back if the run is interrupted). Cleanup is
//! best-effort; its errors are reported beside, never instead of, the original error.

use std::sync::{Arc, Mutex};

use crate::cloud::Cloud;

#[derive(Debug, Default)]
struct Inner {
    build_instances: Vec<String>,
    unfinished_images: Vec<(String, Vec<String>)>,
    refreshes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Inner>>);

/// What cleanup did, and what it could not do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CleanupReport {
    pub terminated: Vec<String>,
    pub deregistered: Vec<String>,
    pub rolled_back: Vec<(String, String)>,
    pub errors: Vec<String>,
}

impl CleanupReport {
    pub fn is_empty(&self) -> bool {
        self.terminated.is_empty() && self.deregistered.is_empty() && self.rolled_back.is_empty() && self.errors.is_empty()
    }

    /// One sentence for the error's "State:" line.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.terminated.is_empty() {
            parts.push(format!("build instance {} terminated", self.terminated.join(", ")));
        }
        if !self.deregistered.is_empty() {
            parts.push(format!("unfinished image {} deregistered with its snapshots", self.deregistered.join(", ")));
        }
        for (group, id) in &self.rolled_back {
            parts.push(format!("rollback of refresh {id} started on {group}"));
        }
        for e in &self.errors {
            parts.push(format!("CLEANUP FAILED: {e}"));
        }
        if parts.is_empty() {
            "nothing was left behind".into()
        } else {
            parts.join("; ")
        }
    }
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("ledger poisoned")
    }
    pub fn build_instance(&self, id: &str) {
        self.lock().build_instances.push(id.into());
    }
    pub fn unfinished_image(&self, id: &str) {
        self.lock().unfinished_images.push((id.into(), Vec::new()));
    }
    pub fn image_snapshots(&self, id: &str, snapshots: &[String]) {
        if let Some(entry) = self.lock().unfinished_images.iter_mut().find(|(i, _)| i == id) {
            entry.1 = snapshots.to_vec();
        }
    }
    /// The image is a finished release: keep it.
    pub fn image_done(&self, id: &str) {
        self.lock().unfinished_images.retain(|(i, _)| i != id);
    }
    pub fn refresh_started(&self, group: &str, id: &str) {
        self.lock().refreshes.push((group.into(), id.into()));
    }
    /// The refresh reached a terminal state; nothing to undo on interrupt.
    pub fn refresh_done(&self, group: &str) {
        self.lock().refreshes.retain(|(g, _)| g != group);
    }

    /// Terminates build instances and deregisters unfinished images. Used on every bake exit path.
    pub async fn clean_bake(&self, cloud: &Cloud) -> CleanupReport {
        let (instances, images) = {
            let mut inner = self.lock();
            (std::mem::take(&mut inner.build_instances), std::mem::take(&mut inner.unfinished_images))
        };
        let mut report = CleanupReport::default();
        if !instances.is_empty() {
            match cloud.ec2.terminate_instances(&instances).await {
                Ok(()) => report.terminated = instances,
                Err(e) => report.errors.push(format!(
                    "build instance {} may still be running ({e}); run `bakeroll gc` or terminate it by hand",
                    instances.join(", ")
                )),
            }
        }
        for (image, snapshots) in images {
            match cloud.ec2.deregister_image(&image).await {
                Ok(()) => {
                    report.deregistered.push(image.clone());
                    for snap in snapshots {
                        if let Err(e) = cloud.ec2.delete_snapshot(&snap).await {
                            report.errors.push(format!("snapshot {snap} of {image} not deleted ({e})"));
                        }
                    }
                }
                Err(e) => report.errors.push(format!("unfinished image {image} not deregistered ({e})")),
            }
        }
        report
    }

    /// On interrupt: ask AWS to roll back every refresh still in flight, so the fleet returns to the
    /// previous release even though this process is going away.
    pub async fn roll_back_inflight(&self, cloud: &Cloud) -> CleanupReport {
        let refreshes = std::mem::take(&mut self.lock().refreshes);
        let mut report = CleanupReport::default();
        for (group, id) in refreshes {
            match cloud.autoscaling.rollback_instance_refresh(&group).await {
                Ok(_) => report.rolled_back.push((group, id)),
                Err(e) if e.is("ActiveInstanceRefreshNotFound") => {}
                Err(e) => report.errors.push(format!("refresh {id} on {group} not rolled back ({e}); run `bakeroll rollback`")),
            }
        }
        report
    }
}

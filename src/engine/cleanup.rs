//! The ledger of what this run created and must not leave behind: build instances, images that never
//! became a release, launch-template versions not yet in use, and refreshes in flight — each refresh
//! with what it is (our forward refresh, or our way back), so an interrupted run says exactly what is
//! still running. Cleanup is best-effort; its errors are reported beside, never instead of, the
//! original error. A call that creates something is marked while it is in flight (`creating`), so an
//! interruption can let it land and then clean up what it made instead of losing its answer.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::cloud::Cloud;

/// What a refresh in flight is to this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// The deploy's own refresh to the new release (AWS's AutoRollback guards it if we go away).
    Forward,
    /// A rollback of ours: RollbackInstanceRefresh, or a refresh back to the previous release. Never
    /// undone by an interruption: undoing it would bring the bad release back.
    Back,
}

#[derive(Debug, Default)]
struct Inner {
    build_instances: Vec<String>,
    unfinished_images: Vec<(String, Vec<String>)>,
    /// (group, template id, version) created by this run and not yet rolled out.
    versions: Vec<(String, String, i64)>,
    refreshes: Vec<(String, String, RefreshKind)>,
    /// Releases under way (`Ledger::release`): between two waves nothing may be in flight, yet a signal
    /// must still go through the release plan, which undoes the waves already verified.
    releases: usize,
    /// The image each group of a release ran before it (what a rollback after an abrupt exit goes to).
    previous: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Ledger(Arc<Mutex<Inner>>, Arc<watch::Sender<usize>>, Option<Arc<str>>);

impl Default for Ledger {
    fn default() -> Self {
        Self(Arc::default(), Arc::new(watch::channel(0).0), None)
    }
}

/// A creating call in flight (see `Ledger::creating`); dropping it ends the mark.
#[must_use]
pub struct Creating(Arc<watch::Sender<usize>>);

impl Drop for Creating {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A release under way (see `Ledger::release`); dropping it ends the mark.
#[must_use]
pub struct Releasing(Ledger);

impl Drop for Releasing {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.releases = inner.releases.saturating_sub(1);
    }
}

/// What cleanup did, and what it could not do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CleanupReport {
    pub terminated: Vec<String>,
    pub deregistered: Vec<String>,
    pub errors: Vec<String>,
}

impl CleanupReport {
    pub fn is_empty(&self) -> bool {
        self.terminated.is_empty() && self.deregistered.is_empty() && self.errors.is_empty()
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

    /// The same ledger, naming groups with `suffix` (`shop-web@ap-south-1`): a region's in a release over
    /// several regions, where one group name exists in each.
    pub fn within(&self, suffix: &str) -> Ledger {
        Ledger(self.0.clone(), self.1.clone(), Some(Arc::from(suffix)))
    }

    fn key(&self, group: &str) -> String {
        match &self.2 {
            Some(s) if !group.ends_with(&**s) => format!("{group}{s}"),
            _ => group.to_string(),
        }
    }

    /// Marks a call that creates something (a build instance, an image, a launch-template version) as
    /// in flight until the mark is dropped: hold it until what the call made is in the ledger.
    pub fn creating(&self) -> Creating {
        self.1.send_modify(|n| *n += 1);
        Creating(self.1.clone())
    }

    /// Returns once no creating call is in flight.
    pub async fn landed(&self) {
        let mut marks = self.1.subscribe();
        let _ = marks.wait_for(|n| *n == 0).await;
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
    pub fn version_created(&self, group: &str, template_id: &str, version: i64) {
        let group = self.key(group);
        self.lock().versions.push((group, template_id.into(), version));
    }
    pub fn refresh_started(&self, group: &str, id: &str, kind: RefreshKind) {
        let group = self.key(group);
        let mut inner = self.lock();
        inner.versions.retain(|(g, _, _)| *g != group);
        inner.refreshes.retain(|(g, _, _)| *g != group);
        inner.refreshes.push((group, id.into(), kind));
    }
    /// The version created for the group was deleted again (a deploy stopped before its refresh).
    pub fn version_deleted(&self, group: &str) {
        let group = self.key(group);
        self.lock().versions.retain(|(g, _, _)| *g != group);
    }
    /// The group's refreshes reached an end; nothing of it is in flight any more.
    pub fn refresh_done(&self, group: &str) {
        let group = self.key(group);
        self.lock().refreshes.retain(|(g, _, _)| *g != group);
    }

    /// Whether this run has a deploy under way: a version created for it or a refresh in flight. An
    /// interruption then goes through the engine (which rolls back and verifies) instead of dropping it.
    pub fn deploying(&self) -> bool {
        let inner = self.lock();
        inner.releases > 0 || !inner.versions.is_empty() || !inner.refreshes.is_empty()
    }

    /// Records the image `group` ran before this release touched it.
    pub fn ran_before(&self, group: &str, image: &str) {
        let group = self.key(group);
        self.lock().previous.entry(group).or_insert_with(|| image.to_string());
    }

    /// Whether a refresh of this run may still be running in AWS.
    pub fn refreshes_in_flight(&self) -> bool {
        !self.lock().refreshes.is_empty()
    }

    /// The image every group this run touched ran before it, when they all ran the same one.
    pub fn common_previous(&self) -> Option<String> {
        let inner = self.lock();
        let mut images = inner.previous.values();
        let first = images.next()?.clone();
        images.all(|i| *i == first).then_some(first)
    }

    /// Marks a release under way until the mark is dropped: an interruption then goes through the
    /// engine (the release plan undoes what the release moved) however little is in flight.
    pub fn release(&self) -> Releasing {
        self.lock().releases += 1;
        Releasing(self.clone())
    }

    /// What is still in flight, for a run that exits before it ends (a second signal).
    pub fn in_flight(&self) -> String {
        let inner = self.lock();
        let mut parts: Vec<String> = inner
            .refreshes
            .iter()
            .map(|(g, id, kind)| match kind {
                RefreshKind::Forward => format!("instance refresh {id} on {g} is still running (AWS's AutoRollback rolls it back if it fails)"),
                RefreshKind::Back => format!("rollback {id} on {g} is still running (to the previous release)"),
            })
            .collect();
        parts.extend(inner.versions.iter().map(|(g, t, v)| format!("launch-template version {v} of {t} ({g}) created but unused")));
        parts.extend(inner.build_instances.iter().map(|i| format!("build instance {i} may still be running (`bakeroll gc`)")));
        if parts.is_empty() {
            "nothing of this run is in flight".into()
        } else {
            parts.join("; ")
        }
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
}

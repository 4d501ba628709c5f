//! What `prune` may delete and what `gc` must terminate, decided as data before anything is touched (so
//! a dry run can print it and `--yes` can execute it). Pure; the engine gathers the facts.
//!
//! prune: keep the newest N available images of the pipeline, every image still being created, and every
//! image the engine marked protected (in use, `$Default`/`$Latest`, rollback targets, running instances),
//! and images someone protected from deregistration with a cooldown; delete the rest with their snapshots
//! (turning off the deregistration protection bakeroll put on an image it now deletes).
//! gc: terminate build instances of the pipeline launched longer ago than a threshold; report launch-
//! template versions bakeroll created that nothing refers to any more (never deleted automatically).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::model::{Image, ImageState, Instance, InstanceState, LtVersion, Protection, Snapshot, Tags};
use super::releases::parse_mark;
use super::tags;

/// `prune --keep` default: a week of daily releases to step back through, beyond the images kept
/// because something uses them or a rollback would need them.
pub const DEFAULT_KEEP: usize = 5;

/// `gc --older-than` default. A bake waits at most `bake.timeout` (45 m) for its build instance and
/// `bake.image_timeout` (60 m) for the image, and terminates the instance on every exit path, so with
/// the default timeouts an older build instance belongs to a bake that died (SIGKILL, lost runner).
pub const DEFAULT_GC_AGE: Duration = Duration::from_secs(2 * 3600);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptImage {
    pub ami: String,
    pub name: String,
    pub commit: Option<String>,
    pub created: String,
    pub reasons: Vec<String>,
    /// The region it is in; absent: the bake region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// On a copy: the image in the bake region it was copied from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoomedImage {
    pub ami: String,
    pub name: String,
    pub commit: Option<String>,
    pub created: String,
    pub snapshots: Vec<String>,
    /// Its deregistration protection is on (bakeroll's, without cooldown): prune turns it off first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    /// The region it is in; absent: the bake region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneDecision {
    /// The region decided on (None: the bake region); each image carries it too.
    #[serde(skip)]
    pub region: Option<String>,
    pub keep_newest: usize,
    /// Newest first.
    pub keep: Vec<KeptImage>,
    /// Newest first.
    pub delete: Vec<DoomedImage>,
    /// Snapshots of the pipeline no image uses any more (an earlier prune deregistered the image but
    /// could not delete them, or someone deregistered it by hand): billable junk, deleted too.
    pub orphan_snapshots: Vec<String>,
}

impl PruneDecision {
    /// This decision as `region`'s (None: the bake region), each image saying so.
    pub fn in_region(mut self, region: Option<String>) -> Self {
        for k in &mut self.keep {
            k.region = region.clone();
        }
        for d in &mut self.delete {
            d.region = region.clone();
        }
        self.region = region;
        self
    }
}

/// What prune decides from.
#[derive(Debug, Clone, Copy)]
pub struct PruneFacts<'a> {
    /// The pipeline's images.
    pub images: &'a [Image],
    pub keep_newest: usize,
    /// (AMI id, why it must stay); an AMI may appear several times.
    pub protected: &'a [(String, String)],
    /// The tag key that names an image's commit.
    pub commit_tag: &'a str,
    /// The pipeline's snapshots.
    pub snapshots: &'a [Snapshot],
    /// Every snapshot any image of the account still uses (pending ones included).
    pub used_snapshots: &'a BTreeSet<String>,
}

/// Decides which of the pipeline's images to keep, and which orphaned snapshots to delete.
pub fn decide_prune(f: &PruneFacts) -> PruneDecision {
    let PruneFacts { images, keep_newest, protected, commit_tag, .. } = *f;
    let mut why: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (ami, reason) in protected {
        let reasons = why.entry(ami.as_str()).or_default();
        if !reasons.contains(reason) {
            reasons.push(reason.clone());
        }
    }
    let mut sorted: Vec<&Image> = images.iter().filter(|i| i.state != ImageState::Deregistered).collect();
    sorted.sort_by(|a, b| b.creation_date.cmp(&a.creation_date).then_with(|| b.id.cmp(&a.id)));
    let mut plan = PruneDecision { region: None, keep_newest, keep: vec![], delete: vec![], orphan_snapshots: vec![] };
    let mut newest = 0;
    for img in sorted {
        let mut reasons = Vec::new();
        match img.state {
            // Deregistering an image a bake is still creating would fail that bake.
            ImageState::Pending => reasons.push("still being created".to_string()),
            ImageState::Available if newest < keep_newest => {
                newest += 1;
                reasons.push(format!("one of the newest {keep_newest}"));
            }
            _ => {}
        }
        reasons.extend(why.get(img.id.as_str()).cloned().unwrap_or_default());
        // A cooldown is someone's choice of a slow removal (bakeroll never sets one): turning it off would
        // still leave the image undeletable for 24 hours, so prune leaves it to them.
        match &img.protection {
            Protection::EnabledWithCooldown => {
                reasons.push("deregistration protection with a 24-hour cooldown (not bakeroll's): turn it off yourself, prune deletes it a day later".into())
            }
            Protection::CoolingDown(until) => reasons.push(format!("deregistration protection in effect until {until} (its cooldown)")),
            Protection::Enabled | Protection::Disabled => {}
        }
        let commit = img.tags.get(commit_tag).cloned();
        if reasons.is_empty() {
            plan.delete.push(DoomedImage {
                ami: img.id.clone(),
                name: img.name.clone(),
                commit,
                created: img.creation_date.clone(),
                snapshots: img.snapshot_ids.clone(),
                protected: img.protection.is_on(),
                region: None,
            });
        } else {
            // A copy's provenance names its source (`engine::copies`): the bake region keeps that while the copy stays.
            let source = img.tags.get(tags::SOURCE_REGION).and(img.tags.get(tags::SOURCE_AMI)).cloned();
            let created = img.creation_date.clone();
            plan.keep.push(KeptImage { ami: img.id.clone(), name: img.name.clone(), commit, created, reasons, region: None, source });
        }
    }
    let with_images: BTreeSet<&str> = plan.delete.iter().flat_map(|d| d.snapshots.iter().map(String::as_str)).collect();
    plan.orphan_snapshots = f
        .snapshots
        .iter()
        .filter(|s| !f.used_snapshots.contains(&s.id) && !with_images.contains(s.id.as_str()))
        .map(|s| s.id.clone())
        .collect();
    plan.orphan_snapshots.sort();
    plan
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildInstance {
    pub id: String,
    pub state: String,
    pub commit: Option<String>,
    /// Seconds since the Unix epoch.
    pub launched: Option<i64>,
    pub age_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spared {
    #[serde(flatten)]
    pub instance: BuildInstance,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leaks {
    pub older_than_secs: u64,
    pub terminate: Vec<BuildInstance>,
    pub spared: Vec<Spared>,
}

/// Which of `instances` are leaked build instances: carrying every one of `required` tags (role and
/// pipeline — checked here again, whatever the query returned), not already going away, and launched
/// more than `older_than` before `now` (Unix seconds). Instances of unknown age are spared.
pub fn find_leaks(instances: &[Instance], required: &Tags, now: i64, older_than: Duration, commit_tag: &str) -> Leaks {
    let mut plan = Leaks { older_than_secs: older_than.as_secs(), terminate: vec![], spared: vec![] };
    for i in instances {
        if !required.iter().all(|(k, v)| i.tags.get(k) == Some(v)) {
            continue;
        }
        let age = i.launch_time.map(|t| now.saturating_sub(t).max(0) as u64);
        let b = BuildInstance {
            id: i.id.clone(),
            state: state_name(&i.state).to_string(),
            commit: i.tags.get(commit_tag).cloned(),
            launched: i.launch_time,
            age_secs: age,
        };
        let reason = match age {
            _ if i.state.is_gone() => Some("already terminating".to_string()),
            None => Some("launch time unknown".to_string()),
            Some(a) if a < older_than.as_secs() => Some(format!("launched {} ago, younger than the threshold", human(a))),
            Some(_) => None,
        };
        match reason {
            Some(reason) => plan.spared.push(Spared { instance: b, reason }),
            None => plan.terminate.push(b),
        }
    }
    plan
}

/// Copies (images with `bakeroll:source-region`) still `pending` more than `older_than` after they were
/// started: `deploy` gives up on a copy after `copy_timeout` and deregisters it, so one this old outlived the
/// run that made it (killed) and no re-run came back for it. `gc` deregisters them (which stops the copy)
/// with their snapshots. A copy whose start time cannot be read is left alone. `now` is Unix seconds.
pub fn stuck_copies(images: &[Image], now: i64, older_than: Duration) -> Vec<DoomedImage> {
    let started = |i: &Image| humantime::parse_rfc3339_weak(&i.creation_date).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs() as i64);
    images
        .iter()
        .filter(|i| i.state == ImageState::Pending && i.tags.contains_key(tags::SOURCE_REGION))
        .filter(|i| started(i).is_some_and(|t| now.saturating_sub(t) >= older_than.as_secs() as i64))
        .map(|i| DoomedImage {
            ami: i.id.clone(),
            name: i.name.clone(),
            commit: i.tags.get(tags::COMMIT).cloned(),
            created: i.creation_date.clone(),
            snapshots: i.snapshot_ids.clone(),
            protected: i.protection.is_on(),
            region: None,
        })
        .collect()
}

/// EC2's name for an instance state.
fn state_name(s: &InstanceState) -> &str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::ShuttingDown => "shutting-down",
        InstanceState::Terminated => "terminated",
        InstanceState::Other(s) => s,
    }
}

/// `5400` → `1h 30m`.
pub fn human(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// Versions bakeroll created (marked) that nothing refers to: not in `in_use` (a group's current version,
/// the target of a kept successful or active refresh), not the template's default or latest, and not the
/// version a later release was deployed from. Numbers ascending.
pub fn unreferenced_versions(versions: &[LtVersion], in_use: &[i64]) -> Vec<i64> {
    let latest = versions.iter().map(|v| v.number).max();
    let marks: Vec<(i64, Option<i64>)> = versions
        .iter()
        .filter_map(|v| v.description.as_deref().and_then(parse_mark).map(|m| (v.number, m.from)))
        .collect();
    let mut out: Vec<i64> = versions
        .iter()
        .filter(|v| marks.iter().any(|(n, _)| *n == v.number))
        .filter(|v| !v.is_default && Some(v.number) != latest && !in_use.contains(&v.number))
        .filter(|v| !marks.iter().any(|(_, from)| *from == Some(v.number)))
        .map(|v| v.number)
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;

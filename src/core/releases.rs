//! Release records: the `bakeroll:release …` line deploy writes into each launch-template version's
//! description, and what `history`, `status` and `rollback` derive from it — which release a group runs,
//! which one came before, and what became of each. Pure: the engine gathers the versions, the group's
//! current version and whatever refreshes AWS still keeps (six weeks); these functions decide.
//!
//! The durable evidence is the version list itself: numbers only grow, and since `from=` is recorded a
//! version names the one the group ran when it was created, so "a later release was deployed from it"
//! survives any retention. Refresh history, while it lasts, sharpens the answer (a refresh that ended
//! RollbackSuccessful never became current; a successful refresh back to an older version was a rollback).

use serde::Serialize;

use super::model::{LtVersion, Refresh, RefreshStatus};
use super::promotion::ImageMarks;

/// Marks launch-template versions bakeroll created; `format_mark` writes the line, `parse_mark` reads it.
pub const RELEASE_MARK: &str = "bakeroll:release";

/// The fields of a release line. `-` (deploy's placeholder for "none") parses as None.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub commit: Option<String>,
    pub ami: Option<String>,
    pub env: Option<String>,
    pub at: Option<String>,
    /// The version the group ran when this one was created (absent in versions written before `from=`).
    pub from: Option<i64>,
    pub job: Option<String>,
    /// What `--force` overrode to deploy it (`revoked`, `unverified:staging`, comma-separated).
    pub forced: Option<String>,
}

/// The release line deploy writes into a new launch-template version's description (at most 255
/// characters: EC2's limit, so the job id is dropped before anything else would be cut). `-` stands for
/// "none". `from=` (the version the group ran) lets `history` and `rollback` tell, after AWS has
/// forgotten the refreshes, which release was deployed before which.
pub fn format_mark(m: &Mark) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let job = m.job.as_ref().map(|j| format!(" job={j}")).unwrap_or_default();
    let from = m.from.map(|f| format!(" from={f}")).unwrap_or_default();
    let forced = m.forced.as_ref().map(|f| format!(" forced={f}")).unwrap_or_default();
    let line = format!("{RELEASE_MARK} commit={} ami={} env={} at={}{job}{from}{forced}", dash(&m.commit), dash(&m.ami), dash(&m.env), dash(&m.at));
    if line.len() <= 255 || job.is_empty() {
        line
    } else {
        format_mark(&Mark { job: None, ..m.clone() })
    }
}

/// Parses `bakeroll:release commit=… ami=… env=… at=… [job=…] [from=…] [forced=…]`; None if it is not one.
/// Unknown keys are ignored (later bakerolls may add some); a word without `=` continues the previous
/// value, so an environment name with a space survives.
pub fn parse_mark(description: &str) -> Option<Mark> {
    let rest = description.trim().strip_prefix(RELEASE_MARK)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for word in rest.split_whitespace() {
        match (word.split_once('='), pairs.last_mut()) {
            (Some((k, v)), _) => pairs.push((k.to_string(), v.to_string())),
            (None, Some((_, v))) => {
                v.push(' ');
                v.push_str(word);
            }
            (None, None) => {}
        }
    }
    let mut m = Mark::default();
    for (k, v) in pairs {
        let v = (!v.is_empty() && v != "-").then_some(v);
        match k.as_str() {
            "commit" => m.commit = v,
            "ami" => m.ami = v,
            "env" => m.env = v,
            "at" => m.at = v,
            "job" => m.job = v,
            "from" => m.from = v.and_then(|v| v.parse().ok()),
            "forced" => m.forced = v,
            _ => {}
        }
    }
    Some(m)
}

/// What became of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseOutcome {
    /// The group runs it now.
    Deployed,
    /// An instance refresh towards it is under way.
    InProgress,
    /// It ran, and a newer release replaced it.
    Superseded,
    /// It was rolled back (automatically by the deploy's health gate or AWS, or by `bakeroll rollback`),
    /// or it never became current.
    RolledBack,
}

impl ReleaseOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployed => "deployed",
            Self::InProgress => "in-progress",
            Self::Superseded => "superseded",
            Self::RolledBack => "rolled-back",
        }
    }
}

/// One release of one group: a launch-template version and what the records say about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseRecord {
    pub version: i64,
    pub commit: Option<String>,
    /// The image the version launches (the version's own ImageId, else the one its mark names).
    pub ami: Option<String>,
    pub env: Option<String>,
    /// When it was deployed (the mark's `at`), else when the version was created.
    pub at: Option<String>,
    pub from: Option<i64>,
    /// False for versions bakeroll did not create (e.g. the template's first), listed because the group ran them.
    pub bakeroll: bool,
    pub outcome: ReleaseOutcome,
    /// The evidence for the outcome, in words.
    pub detail: String,
    /// Deployed with `--force` over the promotion guard: what it overrode (the mark's `forced=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// The image's marks (verified, failed, revoked), when the engine read the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marks: Option<ImageMarks>,
}

/// What the engine gathered about one group.
#[derive(Debug, Clone, Copy)]
pub struct GroupFacts<'a> {
    pub env: &'a str,
    /// Every version of the group's launch template, in any order.
    pub versions: &'a [LtVersion],
    /// The numbered version the group is on (`$Latest`/`$Default` resolved); None if unknown.
    pub current: Option<i64>,
    /// The group's refreshes as AWS still reports them, newest first.
    pub refreshes: &'a [Refresh],
}

fn desired(r: &Refresh) -> Option<i64> {
    r.desired_version.as_deref().and_then(|v| v.parse().ok())
}

/// The group's releases, newest first: this environment's bakeroll versions, plus any other version the
/// group ran or was refreshed to (the template's first version, say).
pub fn history(f: &GroupFacts) -> Vec<ReleaseRecord> {
    // Versions another environment's deploys created (a template shared between environments) say
    // nothing about this group; they are listed only if the group ran them.
    let all: Vec<(&LtVersion, Option<Mark>)> =
        f.versions.iter().map(|v| (v, v.description.as_deref().and_then(parse_mark))).collect();
    let foreign = |m: &Option<Mark>| m.as_ref().is_some_and(|m| m.env.as_deref().is_some_and(|e| e != f.env));
    let marks: Vec<(&LtVersion, Option<Mark>)> = all.iter().filter(|(_, m)| !foreign(m)).cloned().collect();
    let referenced = |n: i64| {
        f.current == Some(n)
            || marks.iter().any(|(_, m)| m.as_ref().and_then(|m| m.from) == Some(n))
            || f.refreshes.iter().any(|r| desired(r) == Some(n))
    };
    let mut out: Vec<ReleaseRecord> = all
        .iter()
        .filter(|(v, m)| (m.is_some() && !foreign(m)) || referenced(v.number))
        .map(|(v, m)| {
            let m = m.clone().filter(|_| !foreign(m));
            let (outcome, detail) = outcome(f, &marks, v.number);
            ReleaseRecord {
                version: v.number,
                commit: m.as_ref().and_then(|m| m.commit.clone()),
                ami: v.image_id.clone().or_else(|| m.as_ref().and_then(|m| m.ami.clone())),
                env: m.as_ref().and_then(|m| m.env.clone()),
                at: m.as_ref().and_then(|m| m.at.clone()).or_else(|| v.created.clone()),
                from: m.as_ref().and_then(|m| m.from),
                bakeroll: m.is_some(),
                forced: m.as_ref().and_then(|m| m.forced.clone()),
                outcome,
                detail,
                marks: None,
            }
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.version));
    out
}

/// Decides one version's outcome from the strongest evidence available (see the module doc).
fn outcome(f: &GroupFacts, marks: &[(&LtVersion, Option<Mark>)], v: i64) -> (ReleaseOutcome, String) {
    use ReleaseOutcome::*;
    if let Some(r) = f.refreshes.iter().find(|r| desired(r) == Some(v) && r.status.is_active()) {
        return match r.status {
            RefreshStatus::RollbackInProgress => (RolledBack, format!("instance refresh {} is being rolled back", r.id)),
            _ => (InProgress, format!("instance refresh {} is {}", r.id, r.status.as_str())),
        };
    }
    if f.current == Some(v) {
        return (Deployed, "the group runs it".into());
    }
    // Refresh history, oldest first: each successful refresh made its version current.
    let successes: Vec<(&str, i64)> = f
        .refreshes
        .iter()
        .rev()
        .filter(|r| r.status == RefreshStatus::Successful)
        .filter_map(|r| Some((r.id.as_str(), desired(r)?)))
        .collect();
    if let Some(i) = successes.iter().rposition(|(_, n)| *n == v) {
        if let Some((id, w)) = successes.get(i + 1) {
            return if *w > v {
                (Superseded, format!("replaced by version {w} (instance refresh {id})"))
            } else {
                (RolledBack, format!("instance refresh {id} took the group back to version {w}"))
            };
        }
    }
    // A version W with from=V proves the group ran V when W was deployed; W itself ran if it is current or
    // a later one was deployed from it. V was superseded only if a successor ran.
    let successors = |n: i64| marks.iter().filter(move |(_, m)| m.as_ref().and_then(|m| m.from) == Some(n)).map(|(w, _)| w.number);
    let ran = |n: i64| f.current == Some(n) || successors(n).next().is_some();
    if let Some(w) = successors(v).find(|w| ran(*w)) {
        return (Superseded, format!("version {w} was deployed from it"));
    }
    let current = f.current;
    if successors(v).next().is_some() {
        let to = current.map(|c| format!(" to version {c}")).unwrap_or_default();
        return (RolledBack, format!("it ran, the releases deployed from it did not last, and the group went back{to}"));
    }
    if let Some(r) = f.refreshes.iter().find(|r| desired(r) == Some(v)) {
        if successes.iter().all(|(_, n)| *n != v) {
            return (RolledBack, format!("never became current: instance refresh {} ended {}", r.id, r.status.as_str()));
        }
    }
    let Some(current) = current else { return (Superseded, "the group's current version is unknown".into()) };
    if v > current {
        return (RolledBack, format!("the group went back to version {current}"));
    }
    // Older than the current version. If every newer version records where it was deployed from, none
    // was deployed from this one, so it was replaced by going back, or never ran.
    let newer_record_from = marks.iter().filter(|(w, _)| w.number > v).all(|(_, m)| m.as_ref().is_some_and(|m| m.from.is_some()));
    if newer_record_from {
        (RolledBack, "no later release was deployed from it".into())
    } else {
        (Superseded, format!("older than the current version {current}"))
    }
}

/// How `rollback --to` names a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// The release deployed before the current one.
    Previous,
    Version(i64),
    Ami(String),
    Commit(String),
}

impl TargetSpec {
    /// `previous` | a launch-template version number (fewer than 7 digits) | an AMI id (`ami-…`) | a commit
    /// SHA (full, or a prefix of 7 or more; `commit:` forces a commit).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("--to is empty: give previous, a commit SHA, an AMI id or a launch-template version number".into());
        }
        if s == "previous" {
            return Ok(Self::Previous);
        }
        if let Some(c) = s.strip_prefix("commit:") {
            return Ok(Self::Commit(c.to_string()));
        }
        if s.starts_with("ami-") {
            return Ok(Self::Ami(s.to_string()));
        }
        // Templates hold at most 10,000 versions: 7 or more digits can only be a (short) commit SHA.
        if s.len() < 7 && s.chars().all(|c| c.is_ascii_digit()) {
            return s.parse().map(Self::Version).map_err(|_| format!("--to {s}: not a launch-template version number"));
        }
        Ok(Self::Commit(s.to_string()))
    }
}

/// Where a rollback target points.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// A release recorded in a launch-template version of the group.
    Release(ReleaseRecord),
    /// No version records it: look for the image and deploy it as a new version.
    Image { ami: Option<String>, commit: Option<String> },
}

/// The release deployed before the current one: the version the current one was deployed from, else the
/// newest superseded version below it.
pub fn previous(history: &[ReleaseRecord], current: i64) -> Option<&ReleaseRecord> {
    let cur = history.iter().find(|r| r.version == current);
    if let Some(from) = cur.and_then(|r| r.from) {
        if let Some(r) = history.iter().find(|r| r.version == from) {
            return Some(r);
        }
    }
    history.iter().filter(|r| r.version < current && r.outcome == ReleaseOutcome::Superseded).max_by_key(|r| r.version)
}

/// A release `rollback` stepped over on its way back, and why (revoked, or failed in the environment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub version: i64,
    pub ami: Option<String>,
    pub commit: Option<String>,
    pub why: String,
}

impl Skipped {
    /// `version 3 (c0ffee1): revoked at …: reason`.
    pub fn describe(&self) -> String {
        let what = self.commit.as_deref().or(self.ami.as_deref()).map(|c| format!(" ({c})")).unwrap_or_default();
        format!("version {}{what}: {}", self.version, self.why)
    }
}

/// The release deployed before `current` that `skip` does not rule out: back along `from=` (else the
/// newest superseded release below), stepping over every release `skip` gives a reason against. Returns
/// it (None: nothing fit is recorded) and what was stepped over, newest first.
pub fn previous_fit<'a>(history: &'a [ReleaseRecord], current: i64, skip: &dyn Fn(&ReleaseRecord) -> Option<String>) -> (Option<&'a ReleaseRecord>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let mut at = current;
    // Each step goes to a lower version (a version is always created from an older one): it ends.
    while let Some(r) = previous(history, at).filter(|r| r.version < at) {
        match skip(r) {
            None => return (Some(r), skipped),
            Some(why) => {
                skipped.push(Skipped { version: r.version, ami: r.ami.clone(), commit: r.commit.clone(), why });
                at = r.version;
            }
        }
    }
    (None, skipped)
}

/// What `rollback` (to `previous`) returns a group to. While the last change is unfinished — a refresh in
/// flight, or instances running another image than the group's version (a deploy that failed half-way
/// and could not be verified) — undoing it means the group's own version; otherwise the release
/// deployed before the current one, stepping over releases `skip` rules out (revoked, or failed in the
/// environment). Returns the release, why it was chosen, and what was stepped over.
pub fn previous_target(
    history: &[ReleaseRecord],
    current: i64,
    unfinished: Option<&str>,
    skip: &dyn Fn(&ReleaseRecord) -> Option<String>,
) -> Result<(ReleaseRecord, String, Vec<Skipped>), String> {
    if let Some(what) = unfinished {
        let own = history.iter().find(|r| r.version == current).ok_or_else(|| format!("version {current} is not in the group's history"))?;
        return Ok((own.clone(), format!("the group's own version {current}: {what}"), vec![]));
    }
    let (found, skipped) = previous_fit(history, current, skip);
    let over = if skipped.is_empty() {
        String::new()
    } else {
        format!(", skipping {}", skipped.iter().map(Skipped::describe).collect::<Vec<_>>().join("; "))
    };
    match found {
        Some(r) => Ok((r.clone(), format!("the release deployed before version {current}{over}"), skipped)),
        None if skipped.is_empty() => Err(format!("no release before version {current} is recorded (nothing to roll back to)")),
        None => Err(format!("no release before version {current} is fit to roll back to{over}; name one with --to (and --force for a revoked one)")),
    }
}

/// Resolves a target against one group's history (newest first). Errors say what was not found.
pub fn resolve(spec: &TargetSpec, history: &[ReleaseRecord], current: Option<i64>) -> Result<Resolved, String> {
    let release = |r: &ReleaseRecord| Ok(Resolved::Release(r.clone()));
    match spec {
        TargetSpec::Previous => {
            let current = current.ok_or("the group's current launch-template version is unknown")?;
            previous_target(history, current, None, &|_| None).map(|(r, ..)| Resolved::Release(r))
        }
        TargetSpec::Version(n) => history
            .iter()
            .find(|r| r.version == *n)
            .map_or_else(|| Err(format!("launch-template version {n} is not a release of this environment")), release),
        TargetSpec::Ami(ami) => match history.iter().find(|r| r.ami.as_deref() == Some(ami.as_str())) {
            Some(r) => release(r),
            None => Ok(Resolved::Image { ami: Some(ami.clone()), commit: None }),
        },
        TargetSpec::Commit(c) => {
            let matches = |have: &str| have == c || (c.len() >= 7 && have.starts_with(c.as_str()));
            let found: Vec<&ReleaseRecord> = history.iter().filter(|r| r.commit.as_deref().is_some_and(matches)).collect();
            let mut commits: Vec<&str> = found.iter().filter_map(|r| r.commit.as_deref()).collect();
            commits.sort_unstable();
            commits.dedup();
            match (found.first(), commits.len()) {
                (_, n) if n > 1 => Err(format!("commit {c} is ambiguous: it matches {}", commits.join(", "))),
                (Some(r), _) => release(r),
                (None, _) => Ok(Resolved::Image { ami: None, commit: Some(c.clone()) }),
            }
        }
    }
}

#[cfg(test)]
#[path = "releases_tests.rs"]
mod tests;

//! Promotion and revocation, as data. A deploy leaves a mark on its image when its release ends
//! (`bakeroll:verified:<env>` or `bakeroll:failed:<env>` = when), `bakeroll revoke` leaves
//! `bakeroll:revoked` = when and why; this module reads those tags (`ImageMarks`), decides which mark a
//! release's verdict earns (`mark_for`), whether an environment's `requires_verified_in` lets an image in
//! (`check`, the promotion guard), and which releases `rollback` must step over (`skip_reason`). Pure:
//! the engine reads the image's tags and writes what these functions decide.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{Image, Tags};
use super::release::{Cause, Verdict};
use super::tags;

/// EC2 tag values hold at most 256 characters.
const TAG_VALUE_MAX: usize = 256;

/// `bakeroll:revoked` = `<RFC 3339 time> <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    pub at: String,
    pub reason: String,
}

/// The tag value of a revocation: the time, a space, the reason (cut to EC2's 256 characters).
pub fn revoked_value(at: &str, reason: &str) -> String {
    let reason: String = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{at} {reason}").chars().take(TAG_VALUE_MAX).collect()
}

fn parse_revoked(value: &str) -> Revocation {
    match value.trim().split_once(' ') {
        Some((at, reason)) => Revocation { at: at.to_string(), reason: reason.trim().to_string() },
        None => Revocation { at: value.trim().to_string(), reason: String::new() },
    }
}

/// What an image's tags say about where it was deployed and whether it may be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageMarks {
    /// Environment → when a deploy there ended with every group verified on the image.
    pub verified: BTreeMap<String, String>,
    /// Environment → when a deploy there was convicted and rolled back.
    pub failed: BTreeMap<String, String>,
    pub revoked: Option<Revocation>,
}

/// Where an image stands in one environment: its latest mark there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Verified(String),
    Failed(String),
}

impl ImageMarks {
    pub fn of(tags: &Tags) -> Self {
        let mut m = Self::default();
        for (k, v) in tags {
            if let Some(env) = k.strip_prefix(tags::VERIFIED_PREFIX).filter(|e| !e.is_empty()) {
                m.verified.insert(env.to_string(), v.clone());
            } else if let Some(env) = k.strip_prefix(tags::FAILED_PREFIX).filter(|e| !e.is_empty()) {
                m.failed.insert(env.to_string(), v.clone());
            } else if k == tags::REVOKED {
                m.revoked = Some(parse_revoked(v));
            }
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.verified.is_empty() && self.failed.is_empty() && self.revoked.is_none()
    }

    /// The newer of the environment's two marks (bakeroll removes the other when it writes one; for an
    /// image tagged by hand with both, a failure at the same time or later wins). Times are RFC 3339 in
    /// UTC as bakeroll writes them, whose text order is their time order.
    pub fn standing(&self, env: &str) -> Option<Standing> {
        match (self.verified.get(env), self.failed.get(env)) {
            (Some(v), Some(f)) if v > f => Some(Standing::Verified(v.clone())),
            (_, Some(f)) => Some(Standing::Failed(f.clone())),
            (Some(v), None) => Some(Standing::Verified(v.clone())),
            (None, None) => None,
        }
    }

    /// `verified in staging at …; failed in dev at …; revoked at …: reason` — or `no marks`.
    pub fn describe(&self) -> String {
        let mut envs: Vec<&String> = self.verified.keys().chain(self.failed.keys()).collect();
        envs.sort();
        envs.dedup();
        let mut parts: Vec<String> = envs
            .into_iter()
            .filter_map(|e| match self.standing(e)? {
                Standing::Verified(at) => Some(format!("verified in {e} at {at}")),
                Standing::Failed(at) => Some(format!("failed in {e} at {at}")),
            })
            .collect();
        if let Some(r) = &self.revoked {
            parts.push(format!("revoked at {}: {}", r.at, r.reason));
        }
        if parts.is_empty() {
            "no marks".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The mark a release's end earns its image in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkKind {
    Verified,
    Failed,
}

impl MarkKind {
    /// The tag key in `env`, and the key of the other kind (which the new mark replaces).
    pub fn keys(self, env: &str) -> (String, String) {
        match self {
            Self::Verified => (tags::verified(env), tags::failed(env)),
            Self::Failed => (tags::failed(env), tags::verified(env)),
        }
    }
}

/// Which mark a release earns: every group verified → `Verified`; convicted (a group's own rollout
/// failed its gate, was rolled back by AWS, or could not be verified) → `Failed`, whether the release was
/// then undone or is stuck. A stop says nothing about the release, and neither does a release that
/// never started or whose first failure was a group that could not start (`cause_started` false: a
/// permission, a group in the way): they mark nothing.
pub fn mark_for(verdict: Option<Verdict>, cause: Option<&Cause>, cause_started: bool) -> Option<MarkKind> {
    match (verdict?, cause) {
        (Verdict::Done, _) => Some(MarkKind::Verified),
        (Verdict::Undone | Verdict::Stuck, Some(Cause::Group { .. })) if cause_started => Some(MarkKind::Failed),
        _ => None,
    }
}

/// A copy in another region as its marks go: a copy carries no marks of its own (a release's marks are
/// written on its image in the bake region, and tags do not cross accounts), so it is judged by its
/// source's — a release revoked or failed there is revoked or failed in every region.
pub fn with_source_marks(copy: &Image, source: Option<&Image>) -> Image {
    let mut out = copy.clone();
    if let Some(source) = source.filter(|_| copy.tags.contains_key(tags::SOURCE_REGION)) {
        out.tags.retain(|k, _| !tags::is_mark(k));
        out.tags.extend(source.tags.iter().filter(|(k, _)| tags::is_mark(k)).map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// Why `rollback` (to the previous release) must step over a release whose image carries `marks`: it is
/// revoked, or its latest deploy to `env` failed. None: it is a fit target.
pub fn skip_reason(env: &str, marks: Option<&ImageMarks>) -> Option<String> {
    let marks = marks?;
    if let Some(r) = &marks.revoked {
        return Some(format!("revoked at {}: {}", r.at, r.reason));
    }
    match marks.standing(env) {
        Some(Standing::Failed(at)) => Some(format!("failed in {env} at {at}")),
        _ => None,
    }
}

/// The promotion guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardVerdict {
    Allowed,
    /// Refused, and deployed anyway with `--force`.
    Forced,
    Refused,
}

/// What the guard decided for one image and environment (the JSON summary's `deploy.promotion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    pub env: String,
    pub requires_verified_in: Vec<String>,
    pub verdict: GuardVerdict,
    /// Why the image may not go in (empty when allowed), one sentence each.
    pub problems: Vec<String>,
    /// The same, as the release mark records what `--force` overrode: `revoked`, `unverified:<env>`.
    pub overridden: Vec<String>,
    /// The image's marks (None: it does not exist yet).
    pub marks: Option<ImageMarks>,
}

/// What the guard decides from.
#[derive(Debug, Clone, Copy)]
pub struct GuardFacts<'a> {
    /// The environment deployed to.
    pub env: &'a str,
    /// Its `requires_verified_in`.
    pub requires: &'a [String],
    /// The image's marks; None when the image does not exist yet (`ship` before its bake).
    pub marks: Option<&'a ImageMarks>,
    pub force: bool,
}

/// The promotion guard: a revoked image never goes in, and an environment with `requires_verified_in`
/// takes only an image whose latest deploy to each of those environments ended verified. An image that
/// does not exist yet cannot have been verified anywhere. `--force` overrides every refusal.
pub fn check(f: &GuardFacts) -> Promotion {
    let mut problems: Vec<(String, String)> = Vec::new();
    if let Some(r) = f.marks.and_then(|m| m.revoked.as_ref()) {
        let why = if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) };
        problems.push(("revoked".into(), format!("it was revoked at {}{why}", r.at)));
    }
    for env in f.requires {
        let token = format!("unverified:{env}");
        let Some(marks) = f.marks else {
            problems.push((token, format!("it is not baked yet, so it cannot have been verified in {env}")));
            continue;
        };
        match marks.standing(env) {
            Some(Standing::Verified(_)) => {}
            Some(Standing::Failed(at)) => problems.push((token, format!("its deploy to {env} failed and was rolled back at {at}"))),
            None => problems.push((token, format!("it was never verified in {env}"))),
        }
    }
    let verdict = match (problems.is_empty(), f.force) {
        (true, _) => GuardVerdict::Allowed,
        (false, true) => GuardVerdict::Forced,
        (false, false) => GuardVerdict::Refused,
    };
    Promotion {
        env: f.env.to_string(),
        requires_verified_in: f.requires.to_vec(),
        verdict,
        overridden: problems.iter().map(|(t, _)| t.clone()).collect(),
        problems: problems.into_iter().map(|(_, p)| p).collect(),
        marks: f.marks.cloned(),
    }
}

impl Promotion {
    /// What `forced=` records in the release mark: the refusals `--force` overrode (None: nothing was).
    pub fn forced(&self) -> Option<String> {
        (self.verdict == GuardVerdict::Forced).then(|| self.overridden.join(","))
    }

    /// One sentence for `what` (the image, with its commit): why it may not go in (or went in forced),
    /// and where it stands elsewhere.
    pub fn explain(&self, what: &str) -> String {
        let standing = match &self.marks {
            Some(m) if !m.verified.is_empty() || !m.failed.is_empty() => format!(" ({})", ImageMarks { revoked: None, ..m.clone() }.describe()),
            _ => String::new(),
        };
        let required = if self.requires_verified_in.is_empty() {
            String::new()
        } else {
            format!("; {} requires_verified_in = [{}]", self.env, self.requires_verified_in.join(", "))
        };
        format!("{what} may not be deployed to {}: {}{standing}{required}", self.env, self.problems.join("; "))
    }

    /// The guard's answer in a few words, for a plan and the progress lines.
    pub fn said(&self) -> String {
        match self.verdict {
            GuardVerdict::Allowed if self.requires_verified_in.is_empty() => "not revoked".into(),
            GuardVerdict::Allowed => {
                let marks = self.marks.clone().unwrap_or_default();
                let at: Vec<String> =
                    self.requires_verified_in.iter().map(|e| format!("verified in {e} at {}", marks.verified.get(e).cloned().unwrap_or_default())).collect();
                at.join(", ")
            }
            GuardVerdict::Forced => format!("refused ({}), overridden by --force", self.problems.join("; ")),
            GuardVerdict::Refused => format!("refused: {}", self.problems.join("; ")),
        }
    }
}

#[cfg(test)]
#[path = "promotion_tests.rs"]
mod tests;

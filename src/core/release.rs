//! The release plan: one release rolled out across an environment's groups in ordered waves, as data.
//! It decides what to start next, which rollouts to stop, what to undo and in which order, and when the
//! release is done, undone or stuck. The engine's driver (`engine::driver`) carries its steps out and
//! reports back how each group ended; nothing here calls AWS, sleeps or knows a clock.
//!
//! The rule (one rule for `deploy`, `ship` and `rollback`, README "What deploy does"):
//! - the groups of a wave start together; the next wave starts once every group of this one is verified;
//! - the first conviction anywhere (a group's gate, alarm, failed or cancelled refresh, timeout, a group
//!   that could not start, or the operator's stop) ends the release: every group of the current wave that
//!   started is rolled back at once (its rollout is stopped while in flight, a verified one is undone
//!   with a refresh back), then the groups of earlier waves, last wave first, a wave's groups together;
//! - a group that cannot be verified on either release leaves the release stuck: a human must look.
//!
//! A restore (`ReleasePlan::restore`) is the other shape the driver runs: rollouts that each go back on
//! their own (undoing refreshes in flight). They all start at once and are never stopped or undone —
//! undoing a rollback would bring the bad release back.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Where one group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupState {
    /// Its wave has not come (or the release ended first: then it was never touched).
    Waiting,
    /// Asked to start; its start has not been reported yet.
    Starting,
    /// Its rollout is in flight.
    Rolling,
    /// Asked to roll back while in flight (the release was convicted elsewhere, or stopped).
    Stopping,
    /// Verified on the release.
    Verified,
    /// A refresh back to its previous release is in flight.
    Undoing,
    /// Verified back on the release it ran before (rolled back by its own gate, by AWS, or by an undo).
    Restored,
    /// Verified on neither release: a human must look.
    Unverified,
    /// Left as it was: it could not start, and nothing was changed on it.
    Unchanged,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Starting => "starting",
            Self::Rolling => "rolling",
            Self::Stopping => "stopping",
            Self::Verified => "verified",
            Self::Undoing => "undoing",
            Self::Restored => "restored",
            Self::Unverified => "unverified",
            Self::Unchanged => "unchanged",
        }
    }

    /// Nothing of this group is in flight or still to be asked for.
    fn settled(self, undo_verified: bool) -> bool {
        match self {
            Self::Restored | Self::Unverified | Self::Unchanged | Self::Waiting => true,
            Self::Verified => !undo_verified,
            Self::Starting | Self::Rolling | Self::Stopping | Self::Undoing => false,
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a group's forward rollout (or its restore) ended, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEnd {
    /// Verified on the release. `undoable`: what it ran before is known, so it can be moved back.
    Verified { undoable: bool },
    /// Its rollout went back by itself (its gate, AWS's rollback, a stop) and verified the previous release.
    Restored,
    /// Verified on neither release.
    Unverified,
    /// It could not start, and nothing was changed on it.
    NotStarted,
}

/// What ended the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// A group's own rollout was convicted (or could not start): the first one.
    Group { group: String },
    /// The operator asked to stop (SIGINT/SIGTERM).
    Stopped { signal: String },
}

/// What the driver must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start these groups' rollouts, together.
    Start(Vec<String>),
    /// Roll these in-flight rollouts back.
    Stop(Vec<String>),
    /// Move these verified groups back to their previous release, together.
    Undo(Vec<String>),
    /// The release is over.
    Finish(Verdict),
}

/// How the release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every group verified on the release (a restore: every group verified back).
    Done,
    /// Ended early, and every group it touched is verified back where it was (or was never touched).
    Undone,
    /// Some group is verified on neither release.
    Stuck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Release,
    Restore,
}

#[derive(Debug, Clone)]
pub struct ReleasePlan {
    mode: Mode,
    waves: Vec<Vec<String>>,
    states: BTreeMap<String, GroupState>,
    /// Groups verified on the release that can be moved back.
    undoable: BTreeMap<String, bool>,
    cause: Option<Cause>,
    finished: Option<Verdict>,
}

impl ReleasePlan {
    /// A release over `waves` (each group once; the config validated that).
    pub fn new(waves: Vec<Vec<String>>) -> Self {
        let states = waves.iter().flatten().map(|g| (g.clone(), GroupState::Waiting)).collect();
        Self { mode: Mode::Release, waves, states, undoable: BTreeMap::new(), cause: None, finished: None }
    }

    /// Rollouts that each go back on their own, all at once, never stopped or undone.
    pub fn restore(groups: Vec<String>) -> Self {
        Self { mode: Mode::Restore, ..Self::new(vec![groups]) }
    }

    pub fn waves(&self) -> &[Vec<String>] {
        &self.waves
    }

    /// The 1-based wave of `group`.
    pub fn wave_of(&self, group: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.iter().any(|g| g == group)).map(|i| i + 1)
    }

    pub fn state(&self, group: &str) -> Option<GroupState> {
        self.states.get(group).copied()
    }

    /// Every group with its wave and state, in wave order.
    pub fn states(&self) -> Vec<(String, usize, GroupState)> {
        self.waves
            .iter()
            .enumerate()
            .flat_map(|(i, w)| w.iter().map(move |g| (g.clone(), i + 1)))
            .map(|(g, wave)| {
                let state = self.states[&g];
                (g, wave, state)
            })
            .collect()
    }

    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// Groups that were changed by this release (or were on it already and are part of it).
    pub fn touched(&self) -> Vec<String> {
        self.states().into_iter().filter(|(_, _, s)| !matches!(s, GroupState::Waiting | GroupState::Unchanged)).map(|(g, ..)| g).collect()
    }

    fn set(&mut self, group: &str, state: GroupState) {
        if let Some(s) = self.states.get_mut(group) {
            *s = state;
        }
    }

    fn convict(&mut self, cause: Cause) {
        if self.mode == Mode::Release && self.cause.is_none() {
            self.cause = Some(cause);
        }
    }

    /// A group's start went out: its rollout is in flight.
    pub fn started(&mut self, group: &str) {
        if self.state(group) == Some(GroupState::Starting) {
            self.set(group, GroupState::Rolling);
        }
    }

    /// How a group's rollout ended. Anything but verified convicts the release (the first such
    /// group is its cause). A verified group of a release already convicted is undone in its turn.
    pub fn ended(&mut self, group: &str, end: GroupEnd) {
        let undoing = self.state(group) == Some(GroupState::Undoing);
        let state = match end {
            GroupEnd::Verified { undoable } if !undoing => {
                self.undoable.insert(group.to_string(), undoable);
                GroupState::Verified
            }
            // An undo that ended on the release after all: its refresh back failed and was rolled back.
            GroupEnd::Verified { .. } => GroupState::Unverified,
            GroupEnd::Restored => GroupState::Restored,
            GroupEnd::Unverified => GroupState::Unverified,
            GroupEnd::NotStarted => GroupState::Unchanged,
        };
        if !matches!(end, GroupEnd::Verified { .. }) && !undoing {
            self.convict(Cause::Group { group: group.to_string() });
        }
        self.set(group, state);
    }

    /// The operator asked to stop: in a release, the same as a conviction; a restore goes on.
    pub fn stop(&mut self, signal: &str) {
        self.convict(Cause::Stopped { signal: signal.to_string() });
    }

    /// What to do now. Each step is returned once: the groups it names move on (Waiting → Starting,
    /// Rolling → Stopping, Verified → Undoing). Empty: wait for the groups in flight.
    pub fn next(&mut self) -> Vec<Step> {
        if let Some(v) = self.finished {
            return vec![Step::Finish(v)];
        }
        let steps = match (self.mode, self.cause.is_some()) {
            (Mode::Restore, _) => self.next_restore(),
            (Mode::Release, false) => self.next_forward(),
            (Mode::Release, true) => self.next_undo(),
        };
        if let Some(Step::Finish(v)) = steps.last() {
            self.finished = Some(*v);
        }
        steps
    }

    fn next_restore(&mut self) -> Vec<Step> {
        let waiting = self.take(|s| s == GroupState::Waiting, GroupState::Starting, None);
        if !waiting.is_empty() {
            return vec![Step::Start(waiting)];
        }
        if self.states.values().all(|s| s.settled(false)) {
            let stuck = self.states.values().any(|s| *s == GroupState::Unverified);
            return vec![Step::Finish(if stuck { Verdict::Stuck } else { Verdict::Done })];
        }
        vec![]
    }

    fn next_forward(&mut self) -> Vec<Step> {
        for (i, wave) in self.waves.clone().iter().enumerate() {
            if wave.iter().all(|g| self.states[g] == GroupState::Verified) {
                continue;
            }
            if wave.iter().all(|g| self.states[g] == GroupState::Waiting) {
                let groups = self.take(|s| s == GroupState::Waiting, GroupState::Starting, Some(i));
                return vec![Step::Start(groups)];
            }
            return vec![];
        }
        vec![Step::Finish(Verdict::Done)]
    }

    fn next_undo(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        // Every rollout still going forward is stopped at once, whatever its wave.
        let stop = self.take(|s| matches!(s, GroupState::Rolling), GroupState::Stopping, None);
        if !stop.is_empty() {
            steps.push(Step::Stop(stop));
        }
        // The latest wave with anything left to do goes back first; earlier waves wait for it.
        let latest = self.waves.iter().rposition(|w| w.iter().any(|g| !self.settled(g)));
        match latest {
            Some(i) => {
                let verified: Vec<String> = self.waves[i].iter().filter(|g| self.states[*g] == GroupState::Verified).cloned().collect();
                // A verified group nothing can move back (it was on the release before this run and
                // nothing says what it ran before) stays where it is, and the release is stuck.
                let undo: Vec<String> = verified.into_iter().filter(|g| self.undoable.get(g).copied().unwrap_or(false)).collect();
                for g in &undo {
                    self.set(g, GroupState::Undoing);
                }
                if !undo.is_empty() {
                    steps.push(Step::Undo(undo));
                }
            }
            None => {
                let stuck = self.states.values().any(|s| matches!(s, GroupState::Unverified | GroupState::Verified));
                steps.push(Step::Finish(if stuck { Verdict::Stuck } else { Verdict::Undone }));
            }
        }
        steps
    }

    fn settled(&self, group: &str) -> bool {
        self.states[group].settled(self.undoable.get(group).copied().unwrap_or(false))
    }

    /// Moves every group in `state` (of wave `wave`, or of all) to `to`, returning them in wave order.
    fn take(&mut self, pick: impl Fn(GroupState) -> bool, to: GroupState, wave: Option<usize>) -> Vec<String> {
        let groups: Vec<String> = self
            .waves
            .iter()
            .enumerate()
            .filter(|(i, _)| wave.is_none_or(|w| w == *i))
            .flat_map(|(_, w)| w.iter().cloned())
            .filter(|g| pick(self.states[g]))
            .collect();
        for g in &groups {
            self.set(g, to);
        }
        groups
    }
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod tests;

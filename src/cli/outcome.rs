//! What `deploy`, `ship`, `plan` and `rollback` tell the user at the end, computed from the state the
//! release left and verified — never from an exit code: the summary's `outcome`, the line on stdout, the
//! dotenv variables and the `Next:` line. A `Next:` line is never an action that would move a group away
//! from where the person wants it: after a rollback that was verified there is nothing to undo, and where
//! a human must act, the rollback it names goes to an explicit release (`--to`), so that following it
//! twice, or on a group already back, changes nothing.

use crate::core::promotion::{GuardVerdict, Standing};
use crate::core::release::{Cause, GroupState, Verdict};
use crate::core::rollout::Outcome as GroupOutcome;
use crate::engine::bake::Baked;
use crate::engine::deploy::{DeployReport, GroupReport};
use crate::engine::Ledger;
use crate::error::Error;
use crate::summary::Outcome;

/// The summary's `outcome` of a release: `deployed` only when every group is verified on it.
pub fn of_release(report: Option<&DeployReport>) -> Outcome {
    match report.and_then(|r| r.verdict.map(|v| (v, r))) {
        Some((Verdict::Done, _)) => Outcome::Deployed,
        Some((Verdict::Undone, r)) if touched(r).is_empty() => Outcome::NotStarted,
        Some((Verdict::Undone, _)) => Outcome::RolledBack,
        Some((Verdict::Stuck, _)) => Outcome::Failed,
        None => Outcome::NotStarted,
    }
}

fn touched(r: &DeployReport) -> Vec<&GroupReport> {
    r.groups.iter().filter(|g| !matches!(g.state, Some(GroupState::Waiting | GroupState::Unchanged) | None)).collect()
}

/// The stdout line of a deploy that succeeded: every group and its version, by wave when there are several.
pub fn deployed_text(report: &DeployReport) -> String {
    let waves = report.waves.len();
    let groups: Vec<String> = report
        .groups
        .iter()
        .map(|g| {
            let mut line = match (&g.outcome, g.already_deployed) {
                (Some(GroupOutcome::Deployed), true) => format!("{} already on it", g.group),
                _ => format!("{} on launch-template version {}", g.group, g.new_version.unwrap_or(g.old_version)),
            };
            if waves > 1 {
                line.push_str(&format!(" (wave {})", g.wave));
            }
            if let Some(pool) = g.warm_pool.as_ref().filter(|p| !p.is_empty()) {
                let on = pool.iter().filter(|i| i.image.as_deref() == Some(g.new_image.as_str())).count();
                line.push_str(&format!(" (warm pool: {on} instances on it)"));
            }
            for l in &g.left_behind {
                line.push_str(&format!("; {} left on {} ({}), not verified", l.id, l.image, l.because));
            }
            line
        })
        .collect();
    format!("deployed {} to {}: {}", report.ami, report.env, groups.join(", "))
}

/// `AMI_ID`, `AMI_NAME`, `RELEASE` of a bake.
pub fn bake_vars(baked: &Baked) -> Vec<(String, String)> {
    [("AMI_ID", baked.ami_id.clone()), ("AMI_NAME", baked.ami_name.clone()), ("RELEASE", baked.commit.clone())].map(|(k, v)| (k.to_string(), v)).to_vec()
}

/// `DEPLOY_OUTCOME`, `AMI_ID`, `RELEASE`, `BAKEROLL_ENV` of a deploy, and `AMI_ID_<REGION>` for each
/// region's image (`AMI_ID_AP_SOUTHEAST_1`) when the release lives in several.
pub fn deploy_vars(env: &str, image: &str, commit: Option<&str>, outcome: Outcome, report: Option<&DeployReport>) -> Vec<(String, String)> {
    let mut vars = vec![
        ("DEPLOY_OUTCOME".to_string(), outcome.as_str().to_string()),
        ("AMI_ID".to_string(), image.to_string()),
        ("RELEASE".to_string(), commit.unwrap_or("").to_string()),
        ("BAKEROLL_ENV".to_string(), env.to_string()),
    ];
    for (region, id) in report.map(|r| &r.images).into_iter().flatten() {
        vars.push((format!("AMI_ID_{}", region.to_uppercase().replace('-', "_")), id.clone()));
    }
    vars
}

/// The release every group of the environment ran before this one, when they all ran the same: what an
/// explicit `rollback --to` goes back to. Its commit when every group's release mark names the same one
/// (a commit names the release in every region, where each runs its own copy of the image), else its
/// image when every group ran the same one.
fn common_previous(report: &DeployReport) -> Option<&str> {
    let first = report.groups.first()?;
    if let Some(commit) = first.old_commit.as_deref() {
        if report.groups.iter().all(|g| g.old_commit.as_deref() == Some(commit)) {
            return Some(commit);
        }
    }
    let image = first.old_image.as_str();
    report.groups.iter().all(|g| g.old_image == image && !image.is_empty()).then_some(image)
}

fn previous_words(report: &DeployReport) -> String {
    match common_previous(report) {
        Some(ami) => ami.to_string(),
        None => report.groups.iter().map(|g| format!("{} ({})", g.old_image, g.group)).collect::<Vec<_>>().join(", "),
    }
}

/// The `Next:` line after a deploy (or ship) that did not end verified on the release. `ledger`: what the
/// run had in flight, for a run that exited at once on a second signal (no report then).
pub fn after_deploy(env: &str, report: Option<&DeployReport>, err: &Error, ledger: &Ledger) -> Option<String> {
    if let Some(next) = report.and_then(refused) {
        return Some(next);
    }
    let report = report.filter(|r| r.verdict.is_some());
    let Some(report) = report else {
        return match err {
            // A second signal: bakeroll left while AWS goes on with what is in flight.
            Error::Interrupted { .. } if ledger.refreshes_in_flight() => Some(match ledger.common_previous() {
                Some(ami) => format!(
                    "let the refreshes above end (`bakeroll status --env {env}` shows each group); then `bakeroll rollback --env {env} --to {ami}` puts every group on {ami}, the release it ran before (groups already on it stay as they are)"
                ),
                None => format!("let the refreshes above end; `bakeroll status --env {env}` shows where each group stands"),
            }),
            // Nothing was started: the error's own advice (or the generic one) applies.
            Error::Interrupted { .. } => Some("nothing was deployed: run the same command again to deploy".into()),
            _ => None,
        };
    };
    let image = &report.ami;
    let touched = touched(report);
    match report.verdict {
        Some(Verdict::Done) | None => None,
        Some(Verdict::Undone) if touched.is_empty() => match err {
            Error::Interrupted { .. } => Some(format!("nothing was changed: run the same command again to deploy {image}")),
            _ => None,
        },
        Some(Verdict::Undone) => {
            let back = previous_words(report);
            Some(match &report.cause {
                Some(Cause::Stopped { .. }) => {
                    format!("nothing to undo: {env} is verified back on {back}. Run the same command again when you want {image} deployed")
                }
                _ => format!(
                    "nothing to undo: {env} is verified back on {back}. Fix the release and ship a new commit; AMI {image} is kept so you can launch it and see why it failed"
                ),
            })
        }
        Some(Verdict::Stuck) => Some(stuck(env, report)),
    }
}

/// The promotion guard refused the image: what gets it in the right way — never `--force`, which is the
/// operator's own decision to skip the proof.
fn refused(report: &DeployReport) -> Option<String> {
    let p = report.promotion.as_ref().filter(|p| p.verdict == GuardVerdict::Refused)?;
    let ami = &report.ami;
    if p.overridden.iter().any(|o| o == "revoked") {
        return Some(format!(
            "deploy another release (`bakeroll history` lists them); if revoking {ami} was a mistake, `bakeroll revoke --restore {ami}` lifts it"
        ));
    }
    let first = p.overridden.iter().find_map(|o| o.strip_prefix("unverified:"))?;
    let commit = report.commit.as_deref().unwrap_or("COMMIT");
    Some(match p.marks.as_ref().map(|m| m.standing(first)) {
        None => format!("ship commit {commit} to {first} first (`bakeroll --env {first} ship --commit {commit}`); once {first} verifies it, ship it here"),
        Some(Some(Standing::Failed(_))) => {
            format!("its deploy to {first} failed: fix the release and ship a new commit (`bakeroll --env {first} history` shows what happened)")
        }
        Some(_) => format!("deploy {ami} to {first} first (`bakeroll --env {first} deploy --ami {ami}`); once {first} verifies it, deploy it here"),
    })
}

/// The AWS CLI command that shows a group's refreshes, in its region (a group named `group@region`).
pub fn describe_refreshes(g: &GroupReport) -> String {
    let name = g.group.split('@').next().unwrap_or(&g.group);
    let region = match (&g.region, g.group.contains('@')) {
        (Some(r), true) => format!(" --region {r}"),
        _ => String::new(),
    };
    format!("`aws autoscaling describe-instance-refreshes --auto-scaling-group-name {name}{region}`")
}

/// A group verified on neither release: where to look, then a rollback to an explicit release.
fn stuck(env: &str, report: &DeployReport) -> String {
    let unverified: Vec<&GroupReport> = report.groups.iter().filter(|g| g.state == Some(GroupState::Unverified)).collect();
    let inspect: Vec<String> = unverified.iter().map(|g| describe_refreshes(g)).collect();
    let look = if inspect.is_empty() { format!("`bakeroll status --env {env}` shows each group") } else { format!("look at {}", inspect.join(" and ")) };
    match common_previous(report) {
        Some(ami) => format!(
            "{look}; then `bakeroll rollback --env {env} --to {ami}` puts every group on {ami}, the release it ran before (groups already on it stay as they are)"
        ),
        None => format!(
            "{look}; the groups ran different releases before this deploy ({}), and `bakeroll rollback --to` moves every group to one: `bakeroll status --env {env}` shows where each stands before you choose",
            previous_words(report)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, wave: usize, state: GroupState, old: &str) -> GroupReport {
        GroupReport { group: name.into(), wave, state: Some(state), old_image: old.into(), new_image: "ami-new".into(), old_version: 1, ..Default::default() }
    }

    fn report(verdict: Option<Verdict>, cause: Option<Cause>, groups: Vec<GroupReport>) -> DeployReport {
        DeployReport { env: "prod".into(), ami: "ami-new".into(), verdict, cause, groups, ..Default::default() }
    }

    const STOP: fn() -> Cause = || Cause::Stopped { signal: "SIGTERM".into() };

    #[test]
    fn the_outcome_and_the_next_step_follow_the_verified_state_not_the_exit_code() {
        use GroupState::*;
        let interrupted = || Error::Interrupted { state: "x".into() };
        let rolled = || Error::RolledBack { env: "prod".into(), release: "r".into(), reason: "x".into(), state: "s".into() };
        let human = || Error::NeedsHuman { env: "prod".into(), release: "r".into(), detail: "x".into(), state: "s".into() };
        let ledger = Ledger::default();
        // (verdict, cause, groups, error) → (outcome, Next: starts with / contains, must not contain)
        let cases: Vec<(Option<Verdict>, Option<Cause>, Vec<GroupReport>, Error, Outcome, Option<&str>)> = vec![
            // Ctrl-C once the rollback verified: nothing to undo, and no rollback advised.
            (Some(Verdict::Undone), Some(STOP()), vec![group("web", 1, Restored, "ami-old")], interrupted(), Outcome::RolledBack, Some("nothing to undo: prod is verified back on ami-old")),
            // Ctrl-C before anything moved.
            (Some(Verdict::Undone), Some(STOP()), vec![group("web", 1, Waiting, "ami-old")], interrupted(), Outcome::NotStarted, Some("nothing was changed")),
            // A conviction rolled back everywhere.
            (Some(Verdict::Undone), Some(Cause::Group { group: "web".into() }), vec![group("canary", 1, Restored, "ami-old"), group("web", 2, Restored, "ami-old")], rolled(), Outcome::RolledBack, Some("nothing to undo: prod is verified back on ami-old. Fix the release")),
            // Stuck: an explicit --to, the release every group ran before.
            (Some(Verdict::Stuck), Some(Cause::Group { group: "web".into() }), vec![group("canary", 1, Restored, "ami-old"), group("web", 2, Unverified, "ami-old")], human(), Outcome::Failed, Some("`bakeroll rollback --env prod --to ami-old`")),
            // Stuck with groups that ran different releases before: no one rollback can be advised.
            (Some(Verdict::Stuck), Some(Cause::Group { group: "web".into() }), vec![group("canary", 1, Restored, "ami-a"), group("web", 2, Unverified, "ami-b")], human(), Outcome::Failed, Some("ran different releases before")),
            // Nothing started (preflight refused): no advice of ours.
            (None, None, vec![], Error::precondition("x"), Outcome::NotStarted, None),
        ];
        for (n, (verdict, cause, groups, err, outcome, next)) in cases.into_iter().enumerate() {
            let r = report(verdict, cause, groups);
            assert_eq!(of_release(Some(&r)), outcome, "case {n}");
            let said = after_deploy("prod", Some(&r), &err, &ledger);
            match next {
                Some(text) => assert!(said.as_deref().is_some_and(|s| s.contains(text)), "case {n}: {said:?}"),
                None => assert_eq!(said, None, "case {n}"),
            }
            if matches!(verdict, Some(Verdict::Undone)) {
                assert!(!said.unwrap_or_default().contains("bakeroll rollback"), "case {n}: a verified rollback is never followed by another");
            }
        }
    }

    #[test]
    fn after_a_second_signal_the_next_step_names_the_release_each_group_ran_before() {
        let ledger = Ledger::default();
        let err = Error::Interrupted { state: "SIGINT again: exited at once".into() };
        assert_eq!(after_deploy("prod", None, &err, &ledger).as_deref(), Some("nothing was deployed: run the same command again to deploy"));
        ledger.ran_before("web", "ami-old");
        ledger.refresh_started("web", "r-1", crate::engine::RefreshKind::Forward);
        let next = after_deploy("prod", None, &err, &ledger).unwrap();
        assert!(next.contains("`bakeroll rollback --env prod --to ami-old`"), "{next}");
    }
}

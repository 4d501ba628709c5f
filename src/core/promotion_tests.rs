//! Table tests for promotion and revocation: the marks read from an image's tags, the guard, the mark a
//! verdict earns, and the rollback target chosen past revoked and failed releases.

use super::*;
use crate::core::model::LtVersion;
use crate::core::releases::{history, previous_target, GroupFacts, ReleaseRecord};

const T1: &str = "2026-12-01T08:00:00Z";
const T2: &str = "2026-12-02T08:00:00Z";

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn marks_are_read_from_the_tags_and_the_newest_mark_of_an_environment_stands() {
    let m = ImageMarks::of(&tags(&[
        ("bakeroll:verified:staging", T1),
        ("bakeroll:failed:production", T2),
        ("bakeroll:verified:dev", T1),
        ("bakeroll:failed:dev", T2),
        ("bakeroll:verified:", T1),
        ("bakeroll:commit", "c0ffee1"),
        ("bakeroll:revoked", "2026-12-03T00:00:00Z leaks memory under load"),
    ]));
    assert_eq!(m.standing("staging"), Some(Standing::Verified(T1.into())));
    assert_eq!(m.standing("production"), Some(Standing::Failed(T2.into())));
    assert_eq!(m.standing("dev"), Some(Standing::Failed(T2.into())), "failed after it was verified");
    assert_eq!(m.standing("qa"), None);
    assert!(!m.verified.contains_key(""), "a key without an environment is no mark");
    assert_eq!(m.revoked, Some(Revocation { at: "2026-12-03T00:00:00Z".into(), reason: "leaks memory under load".into() }));
    let said = m.describe();
    assert!(said.contains("failed in dev at") && said.contains("verified in staging at") && said.contains("revoked at 2026-12-03T00:00:00Z: leaks"), "{said}");
    // A failure and a verification at the same second: the failure stands (the conservative reading).
    assert_eq!(ImageMarks::of(&tags(&[("bakeroll:verified:a", T1), ("bakeroll:failed:a", T1)])).standing("a"), Some(Standing::Failed(T1.into())));
    assert!(ImageMarks::of(&Tags::new()).is_empty());
    assert_eq!(ImageMarks::default().describe(), "no marks");
}

#[test]
fn a_revocation_value_is_the_time_and_a_one_line_reason_within_ec2s_limit() {
    assert_eq!(revoked_value(T1, "bad\nrelease   here"), format!("{T1} bad release here"));
    let long = revoked_value(T1, &"x".repeat(400));
    assert_eq!(long.chars().count(), 256);
    assert_eq!(ImageMarks::of(&tags(&[("bakeroll:revoked", &long)])).revoked.unwrap().at, T1);
}

#[test]
fn the_promotion_guard() {
    use GuardVerdict::*;
    let staging_ok = ImageMarks::of(&tags(&[("bakeroll:verified:staging", T1)]));
    let staging_failed = ImageMarks::of(&tags(&[("bakeroll:verified:staging", T1), ("bakeroll:failed:staging", T2)]));
    let dev_only = ImageMarks::of(&tags(&[("bakeroll:verified:dev", T1)]));
    let revoked = ImageMarks::of(&tags(&[("bakeroll:verified:staging", T1), ("bakeroll:revoked", "2026-12-03T00:00:00Z oops")]));
    let both = ["staging".to_string(), "qa".to_string()];
    let staging = ["staging".to_string()];
    let none: [String; 0] = [];
    // (requires, marks (None: not baked yet), force) → (verdict, overridden, a problem contains)
    let cases: Vec<(&[String], Option<&ImageMarks>, bool, GuardVerdict, Vec<&str>, &str)> = vec![
        (&none, None, false, Allowed, vec![], ""),
        (&none, Some(&dev_only), false, Allowed, vec![], ""),
        (&staging, Some(&staging_ok), false, Allowed, vec![], ""),
        (&staging, Some(&dev_only), false, Refused, vec!["unverified:staging"], "never verified in staging"),
        (&staging, Some(&staging_failed), false, Refused, vec!["unverified:staging"], "failed and was rolled back at 2026-12-02"),
        (&staging, None, false, Refused, vec!["unverified:staging"], "not baked yet"),
        (&both, Some(&staging_ok), false, Refused, vec!["unverified:qa"], "never verified in qa"),
        // A revoked image never goes in, required environments or not.
        (&none, Some(&revoked), false, Refused, vec!["revoked"], "revoked at 2026-12-03T00:00:00Z: oops"),
        (&staging, Some(&revoked), false, Refused, vec!["revoked"], "revoked"),
        // --force overrides every refusal and says what it overrode.
        (&staging, Some(&dev_only), true, Forced, vec!["unverified:staging"], "never verified"),
        (&staging, None, true, Forced, vec!["unverified:staging"], "not baked yet"),
        (&none, Some(&revoked), true, Forced, vec!["revoked"], "revoked"),
        (&staging, Some(&staging_ok), true, Allowed, vec![], ""),
    ];
    for (n, (requires, marks, force, verdict, overridden, says)) in cases.into_iter().enumerate() {
        let p = check(&GuardFacts { env: "production", requires, marks, force });
        assert_eq!((p.verdict, p.overridden.iter().map(String::as_str).collect::<Vec<_>>()), (verdict, overridden.clone()), "case {n}: {p:?}");
        assert!(p.problems.join("; ").contains(says), "case {n}: {:?}", p.problems);
        assert_eq!(p.forced(), (verdict == Forced).then(|| overridden.join(",")), "case {n}");
    }
    // The refusal says where the image was verified or failed, and when, and what the environment asks.
    let p = check(&GuardFacts { env: "production", requires: &staging, marks: Some(&dev_only), force: false });
    let text = p.explain("AMI ami-1 (commit c0ffee1)");
    assert!(text.starts_with("AMI ami-1 (commit c0ffee1) may not be deployed to production: it was never verified in staging"), "{text}");
    assert!(text.contains("(verified in dev at 2026-12-01T08:00:00Z)") && text.contains("production requires_verified_in = [staging]"), "{text}");
    assert_eq!(check(&GuardFacts { env: "production", requires: &staging, marks: Some(&staging_ok), force: false }).said(), format!("verified in staging at {T1}"));
}

#[test]
fn the_mark_a_release_earns() {
    use MarkKind::*;
    let group = || Cause::Group { group: "web".into() };
    let stop = || Cause::Stopped { signal: "SIGTERM".into() };
    let cases: Vec<(Option<Verdict>, Option<Cause>, bool, Option<MarkKind>)> = vec![
        (Some(Verdict::Done), None, false, Some(Verified)),
        (Some(Verdict::Undone), Some(group()), true, Some(Failed)),
        // Convicted and not verified back anywhere: the release failed all the same.
        (Some(Verdict::Stuck), Some(group()), true, Some(Failed)),
        // A group that could not start (permission, a refresh in the way) says nothing about the release.
        (Some(Verdict::Undone), Some(group()), false, None),
        (Some(Verdict::Undone), Some(stop()), true, None),
        (Some(Verdict::Stuck), Some(stop()), true, None),
        (None, None, false, None),
    ];
    for (n, (verdict, cause, started, mark)) in cases.into_iter().enumerate() {
        assert_eq!(mark_for(verdict, cause.as_ref(), started), mark, "case {n}");
    }
    assert_eq!(Verified.keys("prod"), ("bakeroll:verified:prod".to_string(), "bakeroll:failed:prod".to_string()));
    assert_eq!(Failed.keys("prod"), ("bakeroll:failed:prod".to_string(), "bakeroll:verified:prod".to_string()));
}

fn version(n: i64, commit: &str, from: Option<i64>) -> LtVersion {
    let from = from.map(|f| format!(" from={f}")).unwrap_or_default();
    LtVersion {
        template_id: "lt-1".into(),
        template_name: "shop".into(),
        number: n,
        image_id: Some(format!("ami-{commit}")),
        description: Some(format!("bakeroll:release commit={commit} ami=ami-{commit} env=prod at=x{from}")),
        is_default: false,
        created: None,
    }
}

/// v1 (a) ← v2 (b) ← v3 (c) ← v4 (d, current), each deployed from the one before.
fn chain() -> Vec<ReleaseRecord> {
    let versions = vec![version(1, "aaaaaaa", None), version(2, "bbbbbbb", Some(1)), version(3, "ccccccc", Some(2)), version(4, "ddddddd", Some(3))];
    history(&GroupFacts { env: "prod", versions: &versions, current: Some(4), refreshes: &[] })
}

#[test]
fn rollback_steps_over_revoked_releases_and_releases_failed_in_the_environment() {
    let revoked = ImageMarks::of(&tags(&[("bakeroll:revoked", "2026-12-03T00:00:00Z corrupts orders")]));
    let failed_here = ImageMarks::of(&tags(&[("bakeroll:failed:prod", T2)]));
    let failed_elsewhere = ImageMarks::of(&tags(&[("bakeroll:failed:staging", T2)]));
    let verified_again = ImageMarks::of(&tags(&[("bakeroll:failed:prod", T1), ("bakeroll:verified:prod", T2)]));
    // (marks by commit) → (the target's version, versions skipped)
    let cases: Vec<(Vec<(&str, &ImageMarks)>, Option<i64>, Vec<i64>)> = vec![
        (vec![], Some(3), vec![]),
        (vec![("ccccccc", &revoked)], Some(2), vec![3]),
        (vec![("ccccccc", &failed_here)], Some(2), vec![3]),
        (vec![("ccccccc", &failed_elsewhere)], Some(3), vec![], ),
        (vec![("ccccccc", &verified_again)], Some(3), vec![]),
        (vec![("ccccccc", &revoked), ("bbbbbbb", &failed_here)], Some(1), vec![3, 2]),
        // The current release being revoked does not matter: it is what the rollback leaves.
        (vec![("ddddddd", &revoked)], Some(3), vec![]),
        (vec![("ccccccc", &revoked), ("bbbbbbb", &revoked), ("aaaaaaa", &revoked)], None, vec![3, 2, 1]),
    ];
    let h = chain();
    for (n, (marked, target, skipped)) in cases.into_iter().enumerate() {
        let marks_of = |r: &ReleaseRecord| marked.iter().find(|(c, _)| r.commit.as_deref() == Some(*c)).map(|(_, m)| *m);
        let skip = |r: &ReleaseRecord| skip_reason("prod", marks_of(r));
        match previous_target(&h, 4, None, &skip) {
            Ok((r, why, over)) => {
                assert_eq!(Some(r.version), target, "case {n}");
                assert_eq!(over.iter().map(|s| s.version).collect::<Vec<_>>(), skipped, "case {n}");
                if !skipped.is_empty() {
                    assert!(why.contains("skipping version 3 (ccccccc): "), "case {n}: {why}");
                }
            }
            Err(e) => {
                assert_eq!(target, None, "case {n}: {e}");
                assert!(e.contains("no release before version 4 is fit") && e.contains("version 1 (aaaaaaa): revoked"), "case {n}: {e}");
            }
        }
    }
}

#[test]
fn a_copy_is_judged_by_its_sources_marks() {
    let image = |id: &str, tags: &[(&str, &str)]| crate::core::model::Image {
        id: id.into(),
        name: "shop-c1".into(),
        state: crate::core::model::ImageState::Available,
        creation_date: "2026-12-01T00:00:00.000Z".into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        snapshot_ids: vec![],
        state_reason: None,
        architecture: None,
        owner: None,
        encrypted: false,
        protection: crate::core::model::Protection::Disabled,
    };
    let source = image("ami-src", &[(tags::REVOKED, "2026-12-02T00:00:00Z bad"), ("bakeroll:verified:staging", "t1"), ("app", "shop")]);
    // A stale mark on the copy itself does not count: the source's say.
    let copy = image("ami-copy", &[(tags::SOURCE_REGION, "us-east-1"), (tags::SOURCE_AMI, "ami-src"), ("bakeroll:failed:prod", "t0")]);
    let judged = with_source_marks(&copy, Some(&source));
    assert_eq!(judged.id, "ami-copy");
    let marks = ImageMarks::of(&judged.tags);
    assert!(marks.revoked.is_some(), "revoked at home, revoked here");
    assert_eq!(skip_reason("prod", Some(&marks)).is_some(), true);
    assert!(judged.tags.contains_key("bakeroll:verified:staging") && !judged.tags.contains_key("bakeroll:failed:prod"));
    assert!(!judged.tags.contains_key("app"), "only marks come over");
    // An image that is not a copy keeps its own tags; a copy whose source is gone keeps its own.
    assert_eq!(with_source_marks(&source, Some(&copy)).tags, source.tags);
    assert_eq!(with_source_marks(&copy, None).tags, copy.tags);
}

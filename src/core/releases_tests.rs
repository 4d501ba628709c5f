//! Table tests for release records: parsing the release line, deriving outcomes with and without
//! refresh history, and resolving rollback targets.

use super::*;

fn mark(commit: &str, from: Option<i64>) -> String {
    let from = from.map(|f| format!(" from={f}")).unwrap_or_default();
    format!("bakeroll:release commit={commit} ami=ami-{commit} env=prod at=2026-01-0{}T00:00:00Z{from}", commit.len() % 9)
}

fn version(n: i64, description: Option<String>) -> LtVersion {
    let image = description.as_deref().and_then(parse_mark).and_then(|m| m.ami).unwrap_or_else(|| "ami-base".into());
    LtVersion {
        template_id: "lt-1".into(),
        template_name: "shop".into(),
        number: n,
        image_id: Some(image),
        description,
        is_default: false,
        created: Some(format!("2026-01-01T00:00:0{n}Z")),
    }
}

fn refresh(id: &str, version: i64, status: &str) -> Refresh {
    Refresh {
        id: id.into(),
        group: "shop".into(),
        status: RefreshStatus::parse(status),
        status_reason: None,
        percentage_complete: None,
        instances_to_update: None,
        desired_version: Some(version.to_string()),
        rollback_reason: None,
        start_time: None,
        end_time: None,
        ..Default::default()
    }
}

/// The end-to-end story: initial v1; A (v2) ok; B (v3) ok; rollback to A; C (v4) ok; rollback --to A;
/// D (v5) rolled back automatically. Refreshes newest first, as AWS returns them.
fn story() -> (Vec<LtVersion>, Vec<Refresh>) {
    let versions = vec![
        version(1, Some("initial".into())),
        version(2, Some(mark("aaaaaaa1", Some(1)))),
        version(3, Some(mark("bbbbbbb2", Some(2)))),
        version(4, Some(mark("ccccccc3", Some(2)))),
        version(5, Some(mark("ddddddd4", Some(2)))),
    ];
    let refreshes = vec![
        refresh("r6", 5, "RollbackSuccessful"),
        refresh("r5", 2, "Successful"),
        refresh("r4", 4, "Successful"),
        refresh("r3", 2, "Successful"),
        refresh("r2", 3, "Successful"),
        refresh("r1", 2, "Successful"),
    ];
    (versions, refreshes)
}

fn outcomes(records: &[ReleaseRecord]) -> Vec<(i64, &'static str)> {
    records.iter().map(|r| (r.version, r.outcome.as_str())).collect()
}

fn facts<'a>(versions: &'a [LtVersion], current: Option<i64>, refreshes: &'a [Refresh]) -> GroupFacts<'a> {
    GroupFacts { env: "prod", versions, current, refreshes }
}

#[test]
fn release_lines_parse_with_placeholders_extra_keys_and_spaces() {
    let m = parse_mark("bakeroll:release commit=abc ami=ami-1 env=prod at=2026-01-01T00:00:00Z job=77 from=3").unwrap();
    assert_eq!(m.commit.as_deref(), Some("abc"));
    assert_eq!(m.ami.as_deref(), Some("ami-1"));
    assert_eq!((m.job.as_deref(), m.from), (Some("77"), Some(3)));
    let m = parse_mark("bakeroll:release commit=- ami=ami-1 env=blue green at=x future=1").unwrap();
    assert_eq!(m.commit, None, "`-` is deploy's placeholder for no commit");
    assert_eq!(m.env.as_deref(), Some("blue green"));
    assert_eq!(m.from, None);
    assert_eq!(parse_mark("initial"), None);
    assert_eq!(parse_mark("bakeroll:releases commit=x"), None);
    assert_eq!(parse_mark("bakeroll:release"), Some(Mark::default()));
}

#[test]
fn the_mark_deploy_writes_parses_back() {
    let m = Mark {
        commit: Some("c0ffee1".into()),
        ami: Some("ami-1".into()),
        env: Some("staging".into()),
        at: Some("2026-12-01T08:00:00Z".into()),
        from: Some(4),
        job: Some("77".into()),
        forced: Some("revoked,unverified:staging".into()),
    };
    let line = format_mark(&m);
    assert!(line.ends_with(" forced=revoked,unverified:staging"), "{line}");
    assert!(line.starts_with(RELEASE_MARK), "{line}");
    assert_eq!(parse_mark(&line), Some(m.clone()));
    let none = Mark { commit: None, job: None, from: None, forced: None, ..m };
    assert_eq!(parse_mark(&format_mark(&none)), Some(none), "`-` reads back as none");
}

#[test]
fn outcomes_with_refresh_history() {
    let (versions, refreshes) = story();
    let h = history(&facts(&versions, Some(2), &refreshes));
    assert_eq!(outcomes(&h), vec![(5, "rolled-back"), (4, "rolled-back"), (3, "rolled-back"), (2, "deployed"), (1, "superseded")]);
    assert!(h[0].detail.contains("r6") && h[0].detail.contains("RollbackSuccessful"), "{}", h[0].detail);
    assert!(h[1].detail.contains("back to version 2"), "{}", h[1].detail);
    assert_eq!(h[3].commit.as_deref(), Some("aaaaaaa1"));
    assert_eq!(h[3].ami.as_deref(), Some("ami-aaaaaaa1"));
    assert!(!h[4].bakeroll && h[4].commit.is_none(), "the template's first version is listed, unmarked");
}

#[test]
fn outcomes_survive_the_six_week_refresh_retention() {
    let (versions, _) = story();
    let h = history(&facts(&versions, Some(2), &[]));
    assert_eq!(outcomes(&h), vec![(5, "rolled-back"), (4, "rolled-back"), (3, "rolled-back"), (2, "deployed"), (1, "superseded")]);
}

#[test]
fn a_release_rolled_back_before_a_later_good_one_is_not_called_superseded() {
    // A (v2) ok, B (v3) rolled back automatically, C (v4) deployed from A: B never ran.
    let versions = vec![
        version(1, None),
        version(2, Some(mark("aaaaaaa1", Some(1)))),
        version(3, Some(mark("bbbbbbb2", Some(2)))),
        version(4, Some(mark("ccccccc3", Some(2)))),
    ];
    for refreshes in [vec![refresh("r3", 4, "Successful"), refresh("r2", 3, "RollbackSuccessful"), refresh("r1", 2, "Successful")], vec![]] {
        let h = history(&facts(&versions, Some(4), &refreshes));
        assert_eq!(outcomes(&h), vec![(4, "deployed"), (3, "rolled-back"), (2, "superseded"), (1, "superseded")], "{refreshes:?}");
    }
}

#[test]
fn a_release_whose_successor_failed_and_that_was_then_rolled_back_is_rolled_back() {
    // A (v2); B (v3) ok; C (v4, from 3) ok; D (v5, from 4) rolled back automatically; rollback --to A.
    let versions = vec![
        version(1, None),
        version(2, Some(mark("aaaaaaa1", Some(1)))),
        version(3, Some(mark("bbbbbbb2", Some(2)))),
        version(4, Some(mark("ccccccc3", Some(3)))),
        version(5, Some(mark("ddddddd4", Some(4)))),
    ];
    let refreshes = vec![
        refresh("r5", 2, "Successful"),
        refresh("r4", 5, "RollbackSuccessful"),
        refresh("r3", 4, "Successful"),
        refresh("r2", 3, "Successful"),
        refresh("r1", 2, "Successful"),
    ];
    let expected = vec![(5, "rolled-back"), (4, "rolled-back"), (3, "superseded"), (2, "deployed"), (1, "superseded")];
    assert_eq!(outcomes(&history(&facts(&versions, Some(2), &refreshes))), expected);
    let durable = history(&facts(&versions, Some(2), &[]));
    assert_eq!(outcomes(&durable), expected, "the same without refresh history");
    assert!(durable[1].detail.contains("went back to version 2"), "{}", durable[1].detail);
}

#[test]
fn versions_without_from_fall_back_to_their_number() {
    let old = |c: &str| Some(format!("bakeroll:release commit={c} ami=ami-{c} env=prod at=x"));
    let versions = vec![version(1, None), version(2, old("a")), version(3, old("b")), version(4, old("c"))];
    let h = history(&facts(&versions, Some(3), &[]));
    assert_eq!(outcomes(&h), vec![(4, "rolled-back"), (3, "deployed"), (2, "superseded")]);
    assert_eq!(previous(&h, 3).map(|r| r.version), Some(2), "newest superseded below the current one");
}

#[test]
fn refresh_in_flight_is_in_progress_and_other_environments_are_left_out() {
    let mut staging = mark("eeeeeee5", Some(2));
    staging = staging.replace("env=prod", "env=staging");
    let versions = vec![version(2, Some(mark("aaaaaaa1", None))), version(3, Some(staging)), version(4, Some(mark("bbbbbbb2", Some(2))))];
    let refreshes = vec![refresh("r9", 4, "Baking")];
    let h = history(&facts(&versions, Some(2), &refreshes));
    assert_eq!(outcomes(&h), vec![(4, "in-progress"), (2, "deployed")]);
    let refreshes = vec![refresh("r9", 4, "RollbackInProgress")];
    assert_eq!(outcomes(&history(&facts(&versions, Some(2), &refreshes)))[0], (4, "rolled-back"));
}

#[test]
fn previous_follows_the_from_chain_so_rolling_back_twice_steps_further_back() {
    let (versions, refreshes) = story();
    // On C (v4, deployed from A): previous is A.
    let h = history(&facts(&versions, Some(4), &refreshes));
    assert_eq!(previous(&h, 4).map(|r| r.version), Some(2));
    // Back on A (v2): previous is what A was deployed from, the template's first version — not B again.
    let h = history(&facts(&versions, Some(2), &refreshes));
    assert_eq!(previous(&h, 2).map(|r| r.version), Some(1));
    assert_eq!(previous(&h, 1), None);
}

#[test]
fn targets_resolve_by_version_ami_and_commit() {
    let (versions, refreshes) = story();
    let h = history(&facts(&versions, Some(4), &refreshes));
    let version_of = |spec: &str| match resolve(&TargetSpec::parse(spec).unwrap(), &h, Some(4)) {
        Ok(Resolved::Release(r)) => Ok(r.version),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e),
    };
    assert_eq!(version_of("previous"), Ok(2));
    assert_eq!(version_of("3"), Ok(3));
    assert_eq!(version_of("ami-bbbbbbb2"), Ok(3));
    assert_eq!(version_of("aaaaaaa1"), Ok(2), "full commit");
    assert_eq!(version_of("ccccccc"), Ok(4), "a 7-character prefix");
    assert!(version_of("9").unwrap_err().contains("version 9"));
    assert_eq!(
        resolve(&TargetSpec::parse("ami-0123").unwrap(), &h, Some(4)),
        Ok(Resolved::Image { ami: Some("ami-0123".into()), commit: None }),
        "an image no version records is deployed as a new version"
    );
    assert_eq!(
        resolve(&TargetSpec::parse("abc").unwrap(), &h, Some(4)),
        Ok(Resolved::Image { ami: None, commit: Some("abc".into()) }),
        "short prefixes must match exactly"
    );
}

#[test]
fn ambiguous_commit_prefixes_and_missing_previous_are_refused() {
    let versions = vec![version(2, Some(mark("abcdef01", Some(1)))), version(3, Some(mark("abcdef02", Some(2))))];
    let h = history(&facts(&versions, Some(2), &[]));
    let err = resolve(&TargetSpec::Commit("abcdef0".into()), &h, Some(2)).unwrap_err();
    assert!(err.contains("ambiguous") && err.contains("abcdef01") && err.contains("abcdef02"), "{err}");
    let lonely = vec![version(1, None)];
    let h = history(&facts(&lonely, Some(1), &[]));
    assert!(resolve(&TargetSpec::Previous, &h, Some(1)).unwrap_err().contains("no release before version 1"));
}

#[test]
fn target_specs_parse() {
    assert_eq!(TargetSpec::parse("previous"), Ok(TargetSpec::Previous));
    assert_eq!(TargetSpec::parse("12"), Ok(TargetSpec::Version(12)));
    assert_eq!(TargetSpec::parse("ami-0abc"), Ok(TargetSpec::Ami("ami-0abc".into())));
    assert_eq!(TargetSpec::parse("c0ffee1"), Ok(TargetSpec::Commit("c0ffee1".into())));
    assert_eq!(TargetSpec::parse("1234567"), Ok(TargetSpec::Commit("1234567".into())), "7 digits: a short SHA");
    assert_eq!(TargetSpec::parse("commit:12"), Ok(TargetSpec::Commit("12".into())));
    assert!(TargetSpec::parse(" ").is_err());
}

#[test]
fn previous_target_undoes_an_unfinished_change_first() {
    let (versions, refreshes) = story();
    let h = history(&facts(&versions, Some(4), &refreshes));
    let (r, why, skipped) = previous_target(&h, 4, None, &|_| None).unwrap();
    assert_eq!((r.version, why.as_str(), skipped.len()), (2, "the release deployed before version 4", 0));
    // Nothing is skipped on the way back from an unfinished change: the group's own version is where it was.
    let (r, why, _) = previous_target(&h, 4, Some("2 instances run ami-ddddddd4"), &|_| Some("revoked".into())).unwrap();
    assert_eq!(r.version, 4, "finish going back to the group's own version first");
    assert!(why.contains("2 instances run ami-ddddddd4"), "{why}");
}

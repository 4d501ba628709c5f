//! Table tests for the prune and gc decisions.

use super::*;

const COMMIT: &str = "bakeroll:commit";

fn image(id: &str, day: u32, state: ImageState) -> Image {
    Image {
        id: id.into(),
        name: format!("shop-{id}"),
        state,
        creation_date: format!("2026-01-{day:02}T00:00:00.000Z"),
        tags: Tags::from([(COMMIT.to_string(), format!("c-{id}"))]),
        snapshot_ids: vec![format!("snap-{id}")],
        state_reason: None,
        architecture: None,
        owner: None,
        encrypted: false,
        protection: Protection::Disabled,
    }
}

fn images(n: u32) -> Vec<Image> {
    (1..=n).map(|d| image(&format!("ami-{d}"), d, ImageState::Available)).collect()
}

fn prune(images: &[Image], keep: usize, protected: &[(String, String)]) -> PruneDecision {
    let used = images.iter().flat_map(|i| i.snapshot_ids.clone()).collect();
    decide_prune(&PruneFacts { images, keep_newest: keep, protected, commit_tag: COMMIT, snapshots: &[], used_snapshots: &used })
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

#[test]
fn prune_keeps_the_newest_n_and_deletes_the_rest_with_their_snapshots() {
    let plan = prune(&images(6), 2, &[]);
    assert_eq!(ids(&plan.keep, |k| &k.ami), ["ami-6", "ami-5"]);
    assert_eq!(ids(&plan.delete, |d| &d.ami), ["ami-4", "ami-3", "ami-2", "ami-1"]);
    assert_eq!(plan.delete[0].snapshots, ["snap-ami-4"]);
    assert_eq!(plan.delete[0].commit.as_deref(), Some("c-ami-4"));
}

#[test]
fn prune_never_deletes_a_protected_image_whatever_its_age() {
    let protected = vec![
        ("ami-1".to_string(), "in use by group shop-web (version 2)".to_string()),
        ("ami-1".to_string(), "in use by group shop-web (version 2)".to_string()),
        ("ami-3".to_string(), "rollback target of shop-web".to_string()),
        ("ami-other".to_string(), "not one of ours".to_string()),
    ];
    let plan = prune(&images(6), 0, &protected);
    assert_eq!(ids(&plan.keep, |k| &k.ami), ["ami-3", "ami-1"]);
    assert_eq!(plan.keep[1].reasons, ["in use by group shop-web (version 2)"], "reasons are not repeated");
    assert_eq!(ids(&plan.delete, |d| &d.ami), ["ami-6", "ami-5", "ami-4", "ami-2"]);
}

#[test]
fn prune_deletes_bakerolls_protected_images_and_leaves_a_cooldown_to_whoever_set_it() {
    let mut all = images(4);
    all[0].protection = Protection::Enabled;
    all[1].protection = Protection::EnabledWithCooldown;
    all[2].protection = Protection::CoolingDown("2026-12-04T20:36:55.482Z".into());
    let plan = prune(&all, 1, &[]);
    assert_eq!(ids(&plan.delete, |d| &d.ami), ["ami-1"]);
    assert!(plan.delete[0].protected, "prune turns the protection off before deregistering");
    assert!(plan.keep.iter().find(|k| k.ami == "ami-2").unwrap().reasons[0].contains("24-hour cooldown"));
    assert!(plan.keep.iter().find(|k| k.ami == "ami-3").unwrap().reasons[0].contains("until 2026-12-04T20:36:55.482Z"));
    assert!(!prune(&images(2), 0, &[]).delete.iter().any(|d| d.protected));
}

#[test]
fn prune_keeps_images_being_created_and_does_not_count_them_or_failed_ones_as_newest() {
    let mut all = images(3);
    all.push(image("ami-pending", 9, ImageState::Pending));
    all.push(image("ami-failed", 8, ImageState::Failed));
    all.push(image("ami-gone", 7, ImageState::Deregistered));
    let plan = prune(&all, 1, &[]);
    assert_eq!(ids(&plan.keep, |k| &k.ami), ["ami-pending", "ami-3"]);
    assert_eq!(ids(&plan.delete, |d| &d.ami), ["ami-failed", "ami-2", "ami-1"], "deregistered ones are already gone");
}

#[test]
fn prune_deletes_orphaned_snapshots_of_the_pipeline_but_never_one_an_image_uses() {
    let all = images(2);
    let snap = |id: &str| Snapshot { id: id.into(), tags: Tags::new() };
    let snapshots = vec![snap("snap-ami-1"), snap("snap-ami-2"), snap("snap-orphan"), snap("snap-of-pending-image")];
    let used = ["snap-ami-1", "snap-ami-2", "snap-of-pending-image"].map(String::from).into_iter().collect();
    let plan = decide_prune(&PruneFacts { images: &all, keep_newest: 1, protected: &[], commit_tag: COMMIT, snapshots: &snapshots, used_snapshots: &used });
    assert_eq!(ids(&plan.delete, |d| &d.ami), ["ami-1"]);
    assert_eq!(plan.orphan_snapshots, ["snap-orphan"], "ami-1's snapshot goes with its image; used ones stay");
}

fn instance(id: &str, launched: Option<i64>, state: InstanceState, pipeline: &str) -> Instance {
    Instance {
        id: id.into(),
        state,
        image_id: "ami-base".into(),
        launch_time: launched,
        tags: Tags::from([
            ("bakeroll:role".to_string(), "build-instance".to_string()),
            ("bakeroll:pipeline".to_string(), pipeline.to_string()),
            (COMMIT.to_string(), "c1".to_string()),
        ]),
    }
}

#[test]
fn gc_terminates_only_old_live_build_instances_of_this_pipeline() {
    let now = 1_800_000_000;
    let required = Tags::from([
        ("bakeroll:role".to_string(), "build-instance".to_string()),
        ("bakeroll:pipeline".to_string(), "shop".to_string()),
    ]);
    let all = vec![
        instance("i-old", Some(now - 3 * 3600), InstanceState::Running, "shop"),
        instance("i-stopped", Some(now - 7201), InstanceState::Stopped, "shop"),
        instance("i-young", Some(now - 600), InstanceState::Running, "shop"),
        instance("i-going", Some(now - 9000), InstanceState::ShuttingDown, "shop"),
        instance("i-unknown", None, InstanceState::Running, "shop"),
        instance("i-other", Some(now - 9000), InstanceState::Running, "billing"),
    ];
    let plan = find_leaks(&all, &required, now, DEFAULT_GC_AGE, COMMIT);
    assert_eq!(ids(&plan.terminate, |b| &b.id), ["i-old", "i-stopped"]);
    assert_eq!(plan.terminate[0].age_secs, Some(3 * 3600));
    assert_eq!(plan.terminate[1].state, "stopped");
    let spared: Vec<(&str, &str)> = plan.spared.iter().map(|s| (s.instance.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(spared, [("i-young", "launched 10m ago, younger than the threshold"), ("i-going", "already terminating"), ("i-unknown", "launch time unknown")]);
    let all_ages = find_leaks(&all, &required, now, Duration::ZERO, COMMIT);
    assert_eq!(all_ages.terminate.len(), 3, "--older-than 0s takes every live one of this pipeline");
}

fn version(n: i64, description: &str, is_default: bool) -> LtVersion {
    LtVersion {
        template_id: "lt-1".into(),
        template_name: "shop".into(),
        number: n,
        image_id: Some(format!("ami-{n}")),
        description: Some(description.into()),
        is_default,
        created: None,
    }
}

#[test]
fn unreferenced_versions_are_marked_unused_and_not_a_source() {
    let mark = |from: i64| format!("bakeroll:release commit=c ami=a env=prod at=x from={from}");
    let versions = vec![
        version(1, "initial", false),
        version(2, &mark(1), false), // source of 4: it ran
        version(3, &mark(2), false), // never current, nothing refers to it
        version(4, &mark(2), true),  // default
        version(5, &mark(4), false), // in use (a group's current version)
        version(6, "bakeroll:release commit=c ami=a env=prod at=x", false), // never current, no from
        version(7, &mark(5), false), // latest
    ];
    assert_eq!(unreferenced_versions(&versions, &[5]), [3, 6]);
}

#[test]
fn only_copies_pending_past_the_threshold_are_stuck() {
    let copy = |id: &str, day: u32, state: ImageState| {
        let mut i = image(id, day, state);
        i.tags.insert(tags::SOURCE_REGION.into(), "us-east-1".into());
        i
    };
    let mut unknown = copy("ami-unknown", 1, ImageState::Pending);
    unknown.creation_date = "not a time".into();
    let all = vec![
        copy("ami-old", 1, ImageState::Pending),      // pending since Jan 1: stuck
        copy("ami-young", 3, ImageState::Pending),    // pending for an hour
        copy("ami-done", 1, ImageState::Available),   // a copy that finished: prune's business
        image("ami-bake", 1, ImageState::Pending),    // a bake in progress, not a copy
        unknown,
    ];
    // 2026-01-03T01:00:00Z
    let now = 1_767_402_000;
    let stuck = stuck_copies(&all, now, Duration::from_secs(2 * 3600));
    let ids: Vec<&str> = stuck.iter().map(|d| d.ami.as_str()).collect();
    assert_eq!(ids, ["ami-old"]);
    assert_eq!(stuck[0].snapshots, ["snap-ami-old"]);
    assert!(stuck_copies(&all, now, Duration::from_secs(3 * 86400)).is_empty(), "nothing that old");
}

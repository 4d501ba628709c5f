//! One release in three regions of the fake cloud (sibling worlds on one virtual clock), deployed through
//! another account's role: the image copied to the other regions at once before any group changes, a copy
//! an earlier attempt made reused, every copy and its snapshots tagged with provenance and shared with the
//! deploy account, the regions rolled out one after another, and a release rejected in the last region
//! rolled back in every region, latest first.

use std::collections::BTreeMap;
use std::time::Duration;

use bakeroll::core::model::ImageFilter;
use bakeroll::core::release::{GroupState, Verdict};
use bakeroll::engine::deploy::{deploy, DeployReport, DeployRequest};
use bakeroll::engine::places;
use bakeroll::engine::gc::{gc_decision, gc_execute};
use bakeroll::engine::retention::{prune_decision, prune_execute};
use bakeroll::engine::sites::read_all;
use bakeroll::error::{exit, Error};
use bakeroll::fake::{FakeCloud, FakeConnector, ImageSpec, StackSpec};

use crate::{world_of, World};

const PIPELINE: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
ami_name = "shop-{commit}"
[environments.prod]
auto_scaling_groups = ["shop-web"]
regions = ["us-east-1", "ap-south-1", "eu-west-1"]
role_arn = "arn:aws:iam::222222222222:role/bakeroll-deploy"
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
"#;

const OTHERS: [&str; 2] = ["ap-south-1", "eu-west-1"];

/// shop-web in every region (3 instances, on the same base image name), the places connected.
async fn world() -> World {
    world_in(PIPELINE).await
}

async fn world_in(pipeline: &str) -> World {
    let w = world_of(pipeline, StackSpec::new("shop-web"));
    for r in OTHERS {
        let there = w.fake.region(r);
        there.add_image(ImageSpec::amazon_linux());
        there.add_stack(StackSpec::new("shop-web"));
    }
    let env = w.env();
    let places = places::connect(&FakeConnector(w.fake.clone()), &env.placement, &w.ctx.cloud).await.expect("connected");
    w.ctx.places.set(places);
    w
}

fn request(ami: &str) -> DeployRequest {
    DeployRequest { env: "prod".into(), image_id: ami.into(), commit: Some("c1".into()), force: false, targets: Default::default(), images: Default::default() }
}

/// The release's images in `region` (its copy there), by name.
async fn copies_in(fake: &FakeCloud, region: &str) -> Vec<bakeroll::core::model::Image> {
    let filter = ImageFilter { owners: vec!["self".into()], name: Some("shop-c1".into()), ..Default::default() };
    fake.region(region).cloud().ec2.find_images(&filter).await.expect("described")
}

fn groups(report: &DeployReport) -> BTreeMap<String, Option<GroupState>> {
    report.groups.iter().map(|g| (g.group.clone(), g.state)).collect()
}

#[tokio::test(start_paused = true)]
async fn the_release_is_copied_to_every_region_at_once_and_deployed_region_by_region() {
    let w = world().await;
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1").tag("app", "shop"));
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("deployed in every region");
    assert_eq!(report.verdict, Some(Verdict::Done));
    assert_eq!(w.calls("ec2:CopyImage"), 2, "one copy per other region");
    let mut created = Vec::new();
    for r in OTHERS {
        let copies = copies_in(&w.fake, r).await;
        assert_eq!(copies.len(), 1, "{r}: {copies:?}");
        let copy = &copies[0];
        assert_eq!(copy.tags.get("bakeroll:source-ami"), Some(&ami), "{r}");
        assert_eq!(copy.tags.get("bakeroll:source-region").map(String::as_str), Some("us-east-1"));
        assert_eq!(copy.tags.get("app").map(String::as_str), Some("shop"), "the source's own tags follow the copy");
        assert!(w.fake.region(r).is_shared(&copy.id, "222222222222"), "{r}: shared with the deploy account");
        assert!(copy.snapshot_ids.iter().all(|s| w.fake.region(r).is_shared(s, "222222222222")), "{r}: snapshots shared");
        assert_eq!(w.fake.region(r).in_service_images("shop-web"), vec![copy.id.clone(); 3], "{r}: the group runs its region's copy");
        assert_eq!(report.images.get(r), Some(&copy.id));
        created.push(copy.creation_date.clone());
    }
    assert_eq!(created[0], created[1], "both copies started together");
    assert!(w.fake.is_shared(&ami, "222222222222"), "the bake region's image is shared too");
    // Region by region: each region's refresh starts after the previous region's ended.
    let span = |r: &str| {
        let f = if r == "us-east-1" { w.fake.clone() } else { w.fake.region(r) };
        let refresh = f.refreshes("shop-web").into_iter().next().expect("a refresh");
        (refresh.start_time.unwrap(), refresh.end_time.unwrap())
    };
    let (home, south, west) = (span("us-east-1"), span("ap-south-1"), span("eu-west-1"));
    assert!(south.0 >= home.1 && west.0 >= south.1, "{home:?} {south:?} {west:?}");
    let names: Vec<&str> = report.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["shop-web@us-east-1", "shop-web@ap-south-1", "shop-web@eu-west-1"]);
    assert!(report.groups.iter().all(|g| g.account.as_deref() == Some("222222222222")));
}

#[tokio::test(start_paused = true)]
async fn a_copy_an_earlier_attempt_made_is_reused_not_made_again() {
    let w = world().await;
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1"));
    // The first attempt's CopyImage to one region is carried out but its answer is lost: that run fails.
    w.fake.region("ap-south-1").lose_next_answer("ec2:CopyImage");
    let (_, first) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = first.unwrap_err();
    assert_eq!(err.exit_code(), exit::AWS_ERROR, "{err}");
    assert!(w.fake.refreshes("shop-web").is_empty(), "no group changed before every copy was there");
    // The re-run finds that copy by its name and provenance and makes no second one.
    let copy_calls = w.calls("ec2:CopyImage");
    let (_, again) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    again.expect("deployed");
    assert_eq!(w.calls("ec2:CopyImage"), copy_calls, "both copies reused");
    for r in OTHERS {
        assert_eq!(copies_in(&w.fake, r).await.len(), 1, "{r}: one copy");
    }
}

#[tokio::test(start_paused = true)]
async fn a_group_missing_in_another_region_is_refused_naming_that_region_before_any_copy() {
    // shop-web in us-east-1 and ap-south-1 only: eu-west-1 is listed in `regions` but has no stack.
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    let south = w.fake.region("ap-south-1");
    south.add_image(ImageSpec::amazon_linux());
    south.add_stack(StackSpec::new("shop-web"));
    w.fake.region("eu-west-1").add_image(ImageSpec::amazon_linux());
    let env = w.env();
    let places = places::connect(&FakeConnector(w.fake.clone()), &env.placement, &w.ctx.cloud).await.expect("connected");
    w.ctx.places.set(places);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1"));
    let (_, result) = deploy(&w.ctx, &env, &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    let said = err.to_string();
    assert!(said.contains("shop-web not found in region eu-west-1"), "names the region it looked in: {said}");
    assert!(!said.contains("us-east-1"), "not the bake region: {said}");
    assert_eq!(w.calls("ec2:CopyImage"), 0, "nothing copied");
    assert!(w.fake.refreshes("shop-web").is_empty() && south.refreshes("shop-web").is_empty(), "nothing deployed");
}

#[tokio::test(start_paused = true)]
async fn the_lock_of_a_region_without_the_group_names_that_region() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    let env = w.env();
    for r in OTHERS {
        w.fake.region(r).add_image(ImageSpec::amazon_linux());
    }
    let places = places::connect(&FakeConnector(w.fake.clone()), &env.placement, &w.ctx.cloud).await.expect("connected");
    w.ctx.places.set(places);
    let there = w.ctx.place(Some("ap-south-1"));
    let err = bakeroll::engine::lock::take_in(&there, Some("ap-south-1"), "prod", &["shop-web".to_string()], Some("c1"), Duration::from_secs(60)).await.err().expect("no group to lock");
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains("shop-web not found in region ap-south-1"), "{err}");
    assert!(!err.to_string().contains("us-east-1"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_copy_is_cleaned_up_and_nothing_is_deployed() {
    let w = world().await;
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1").tag("local-aws:copy", "fail"));
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::BAKE_FAILED, "the image could not be made available where it is needed: {err}");
    assert!(err.to_string().contains("failed"), "{err}");
    assert!(err.state().unwrap().contains("deregistered"), "{:?}", err.state());
    for r in OTHERS {
        assert!(copies_in(&w.fake, r).await.is_empty(), "{r}: the failed copy is gone");
    }
    assert!(report.verdict.is_none() && w.fake.refreshes("shop-web").is_empty(), "nothing deployed");
}

#[tokio::test(start_paused = true)]
async fn a_release_the_last_region_rejects_goes_back_everywhere_latest_first() {
    let w = world().await;
    let old = w.stack.image_id.clone();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1"));
    let west_tg = w.fake.region("eu-west-1").group("shop-web").unwrap().target_group_arns[0].clone();
    let (report, result) = {
        // Only the last region rejects the release: its target group fails the copy there, marked as soon
        // as the copy appears (its id is not known before).
        let watcher = tokio::spawn({
            let fake = w.fake.region("eu-west-1");
            async move {
                for _ in 0..3600 {
                    if let Some(copy) = fake.cloud().ec2.find_images(&ImageFilter { owners: vec!["self".into()], name: Some("shop-c1".into()), ..Default::default() }).await.ok().and_then(|v| v.into_iter().next()) {
                        fake.set_image_health_in(&copy.id, &west_tg, bakeroll::fake::Health::Unhealthy);
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                panic!("no copy of the release ever appeared in eu-west-1");
            }
        });
        let out = deploy(&w.ctx, &w.env(), &request(&ami)).await;
        watcher.await.unwrap();
        out
    };
    let err: Error = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    assert!(groups(&report).values().all(|s| *s == Some(GroupState::Restored)), "{:?}", groups(&report));
    assert_eq!(w.fake.in_service_images("shop-web"), vec![old; 3], "us-east-1 back");
    for r in OTHERS {
        let there = w.fake.region(r);
        let copies = copies_in(&w.fake, r).await;
        let running = there.in_service_images("shop-web");
        assert!(running.len() == 3 && running.iter().all(|i| !copies.iter().any(|c| &c.id == i)), "{r} back: {running:?}");
    }
    // Latest first: ap-south-1's refresh back starts after eu-west-1's rollback ended; us-east-1's after that.
    let back = |f: &FakeCloud| f.refreshes("shop-web").into_iter().next().map(|r| (r.start_time.unwrap(), r.end_time.unwrap())).unwrap();
    let (home, south, west) = (back(&w.fake), back(&w.fake.region("ap-south-1")), back(&w.fake.region("eu-west-1")));
    assert!(south.0 >= west.1 && home.0 >= south.1, "home {home:?} south {south:?} west {west:?}");
}

/// Releases c1, c2, c3 deployed in turn to every region of `w`'s pipeline; their images in the bake region.
async fn three_releases(w: &World) -> Vec<String> {
    let mut sources = Vec::new();
    for c in ["c1", "c2", "c3"] {
        let spec = ImageSpec::named(&format!("shop-{c}")).tag("bakeroll:commit", c).tag("bakeroll:pipeline", &w.ctx.pipeline.name());
        let ami = w.fake.add_image(spec);
        let req = DeployRequest { commit: Some(c.into()), ..request(&ami) };
        deploy(&w.ctx, &w.env(), &req).await.1.expect("deployed");
        sources.push(ami);
    }
    sources
}

async fn names_in(fake: &FakeCloud, region: &str) -> Vec<String> {
    let filter = ImageFilter { owners: vec!["self".into()], ..Default::default() };
    let mut names: Vec<String> = fake.region(region).cloud().ec2.find_images(&filter).await.unwrap().into_iter().map(|i| i.name).filter(|n| n.starts_with("shop-c")).collect();
    names.sort();
    names
}

/// prune in three regions: in each, what its groups (read through the deploy account's role) run and
/// would roll back to stays, the rest goes with its snapshots; every region is decided on its own.
#[tokio::test(start_paused = true)]
async fn prune_keeps_what_each_regions_groups_run_and_roll_back_to() {
    let w = world().await;
    let sources = three_releases(&w).await;
    let regions = prune_decision(&read_all(&w.ctx).await.unwrap(), 0).await.unwrap();
    let order: Vec<Option<&str>> = regions.iter().map(|r| r.region.as_deref()).collect();
    assert_eq!(order, [Some("ap-south-1"), Some("eu-west-1"), None], "copy regions first, the bake region last");
    for r in &regions {
        let kept: Vec<&str> = r.decision.keep.iter().map(|k| k.name.as_str()).collect();
        let deleted: Vec<&str> = r.decision.delete.iter().map(|d| d.name.as_str()).collect();
        assert_eq!((kept, deleted), (vec!["shop-c3", "shop-c2"], vec!["shop-c1"]), "{:?}: {:?}", r.region, r.decision);
        assert!(r.decision.keep.iter().chain(r.decision.keep.iter()).all(|k| k.region == r.region));
        let why = r.decision.keep[1].reasons.join("; ");
        assert!(why.contains("rollback target of group shop-web@"), "{why}");
        // Protected after each verified release, and turned off only on what prune deletes.
        assert!(r.decision.delete.iter().all(|d| d.protected), "{:?}", r.decision.delete);
    }
    let snapshots: Vec<String> = regions[0].decision.delete[0].snapshots.clone();
    prune_execute(&regions).await.1.expect("pruned");
    let filter = ImageFilter { owners: vec!["self".into()], ..Default::default() };
    for r in OTHERS {
        assert_eq!(names_in(&w.fake, r).await, ["shop-c2", "shop-c3"], "{r}");
        // What stays keeps the protection each verified release put on the copy it ran and its rollback target.
        let left = w.fake.region(r).cloud().ec2.find_images(&filter).await.unwrap();
        let copies: Vec<_> = left.iter().filter(|i| i.name.starts_with("shop-c")).collect();
        assert!(copies.iter().all(|i| i.protection == bakeroll::core::model::Protection::Enabled), "{r}: {copies:?}");
    }
    assert!(w.fake.image(&sources[0]).is_none_or(|i| i.state == bakeroll::core::model::ImageState::Deregistered), "c1 gone at home");
    assert!(snapshots.iter().all(|s| !w.fake.region("ap-south-1").snapshot_ids().contains(s)), "the copy's snapshots went with it");
    assert_eq!(w.fake.region("eu-west-1").in_service_images("shop-web").len(), 3, "the fleet never noticed");
}

/// An environment that does not deploy in the bake region: no group there needs the release's own
/// image, but it stays while a copy of it is kept (its marks — verified, failed, revoked — live on it).
#[tokio::test(start_paused = true)]
async fn prune_keeps_the_source_of_every_copy_it_keeps() {
    let w = world_in(&PIPELINE.replace(r#"regions = ["us-east-1", "ap-south-1", "eu-west-1"]"#, r#"regions = ["ap-south-1", "eu-west-1"]"#)).await;
    let sources = three_releases(&w).await;
    let regions = prune_decision(&read_all(&w.ctx).await.unwrap(), 0).await.unwrap();
    let home = regions.iter().find(|r| r.region.is_none()).expect("the bake region is decided too");
    let kept: Vec<&str> = home.decision.keep.iter().map(|k| k.ami.as_str()).collect();
    assert_eq!(kept, [sources[2].as_str(), sources[1].as_str()], "{:?}", home.decision);
    assert!(home.decision.keep[0].reasons.iter().any(|r| r.starts_with("its copy ami-") && r.ends_with("in ap-south-1 is kept")), "{:?}", home.decision.keep[0]);
    let deleted: Vec<&str> = home.decision.delete.iter().map(|d| d.ami.as_str()).collect();
    assert_eq!(deleted, [sources[0].as_str()]);
}

/// A run killed while its copies were pending (the task dropped: no cleanup, as with SIGKILL) leaves them
/// pending; `gc` finds them in their regions once older than its threshold and deregisters them (which
/// stops a copy) with their snapshots; a younger one is left for a re-run to reuse.
#[tokio::test(start_paused = true)]
async fn gc_deregisters_copies_a_killed_run_left_pending() {
    let w = world().await;
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag("bakeroll:commit", "c1").tag("bakeroll:pipeline", &w.ctx.pipeline.name()));
    let cut = tokio::time::timeout(std::time::Duration::from_secs(10), deploy(&w.ctx, &w.env(), &request(&ami))).await;
    assert!(cut.is_err(), "killed while copying");
    let pending: Vec<_> = futures_util::future::join_all(OTHERS.map(|r| copies_in(&w.fake, r))).await.into_iter().flatten().collect();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|c| c.state == bakeroll::core::model::ImageState::Pending), "{pending:?}");
    let started = humantime::parse_rfc3339_weak(&pending[0].creation_date).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let sites = read_all(&w.ctx).await.unwrap();
    let two_hours = std::time::Duration::from_secs(2 * 3600);

    let young = gc_decision(&w.ctx, &sites, two_hours, started + 60).await.unwrap();
    assert!(young.stuck_copies.is_empty(), "a minute old: a re-run would reuse it: {:?}", young.stuck_copies);

    let old = gc_decision(&w.ctx, &sites, two_hours, started + 3 * 3600).await.unwrap();
    let mut found: Vec<(Option<&str>, &str)> = old.stuck_copies.iter().map(|c| (c.region.as_deref(), c.ami.as_str())).collect();
    found.sort();
    let mut expected: Vec<(Option<&str>, &str)> = OTHERS.iter().zip(&pending).map(|(r, c)| (Some(*r), c.id.as_str())).collect();
    expected.sort();
    assert_eq!(found, expected);
    let (done, result) = gc_execute(&w.ctx, &sites, &old).await;
    result.expect("cleaned up");
    assert_eq!(done.done.len(), 2, "{done:?}");
    for r in OTHERS {
        assert!(copies_in(&w.fake, r).await.iter().all(|c| c.state == bakeroll::core::model::ImageState::Deregistered), "{r}: the copy is gone");
    }
    let snaps: Vec<String> = pending.iter().flat_map(|c| c.snapshot_ids.clone()).collect();
    assert_eq!(done.snapshots_deleted.len(), snaps.len(), "{done:?}");
    assert!(w.fake.image(&ami).is_some_and(|i| i.state == bakeroll::core::model::ImageState::Available), "the release itself is untouched");
}

/// A release revoked in the bake region is revoked everywhere: `rollback` skips it in every region (its
/// copies carry no marks; they are judged by their source's), so all regions land on the same release.
#[tokio::test(start_paused = true)]
async fn rollback_skips_a_revoked_release_in_every_region() {
    use bakeroll::core::releases::TargetSpec;
    use bakeroll::engine::{revoke, rollback};
    let w = world().await;
    let sources = three_releases(&w).await;
    let two = w.fake.image(&sources[1]).unwrap();
    revoke::revoke(&w.ctx, &two, "corrupts orders").await.unwrap();
    let env = w.env();
    let decision = rollback::decide(&w.ctx, &env, &TargetSpec::Previous, "previous", false).await.expect("decided");
    for g in &decision.groups {
        assert_eq!(g.to.commit.as_deref(), Some("c1"), "{}: past the revoked c2 to c1", g.group);
    }
    rollback::execute(&w.ctx, &env, &decision).await.1.expect("rolled back");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![sources[0].clone(); 3], "us-east-1 on c1");
    for r in OTHERS {
        let there = w.fake.region(r);
        let c1 = copies_in(&w.fake, r).await[0].id.clone(); // shop-c1's copy there
        assert_eq!(there.in_service_images("shop-web"), vec![c1; 3], "{r} on c1's copy, not the revoked c2's");
    }
}

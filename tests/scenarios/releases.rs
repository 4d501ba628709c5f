//! Release management scenarios: rollback to the previous release, to a named one, of a refresh in
//! flight, and to one that fails its health checks; refusals that change nothing; history outcomes that
//! survive AWS forgetting the refreshes; status of the fleet.

use std::time::Duration;

use bakeroll::core::releases::TargetSpec;
use bakeroll::core::tags;
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::engine::releases::{require_group, status, GroupState};
use bakeroll::engine::rollback::{self, RollbackReport};
use bakeroll::error::{exit, Error};
use bakeroll::fake::{Health, ImageSpec};

use crate::{world, World};

/// The scenario pipeline is `pipeline/scenario.toml`, so its name is `scenario`.
pub const PIPELINE_NAME: &str = "scenario";

/// Registers the image `bake` would have made for `commit`: name, and pipeline and commit tags on the
/// image and its snapshots.
pub async fn baked(w: &World, commit: &str, health: Health) -> String {
    let spec = ImageSpec::named(format!("shop-{commit}")).tag(tags::PIPELINE, PIPELINE_NAME).tag(tags::COMMIT, commit);
    let ami = w.fake.add_image(spec.clone().health(health));
    let snapshots = w.fake.image(&ami).unwrap().snapshot_ids;
    w.ctx.cloud.ec2.create_tags(&snapshots, &spec.tags).await.unwrap();
    ami
}

/// Bakes (registers) and deploys a release; returns its AMI and the deploy's result.
pub async fn ship(w: &World, commit: &str, health: Health) -> (String, Result<(), Error>) {
    let ami = baked(w, commit, health).await;
    let req = DeployRequest { env: "prod".into(), image_id: ami.clone(), commit: Some(commit.into()), force: false, targets: Default::default(), images: Default::default() };
    let (_, result) = deploy(&w.ctx, &w.env(), &req).await;
    (ami, result)
}

pub async fn roll_back(w: &World, to: &str) -> (Option<RollbackReport>, Result<(), Error>) {
    let spec = TargetSpec::parse(to).expect("target parses");
    let env = w.env();
    match rollback::decide(&w.ctx, &env, &spec, to, false).await {
        Ok(plan) => {
            let (report, result) = rollback::execute(&w.ctx, &env, &plan).await;
            (Some(report), result)
        }
        Err(e) => (None, Err(e)),
    }
}

async fn group(w: &World) -> GroupState {
    require_group(&w.ctx, "prod", "shop-web").await.expect("group readable")
}

fn outcomes(state: &GroupState) -> Vec<(Option<String>, &'static str)> {
    state.history().into_iter().map(|r| (r.commit, r.outcome.as_str())).collect()
}

fn fleet(w: &World) -> Vec<String> {
    w.fake.in_service_images("shop-web")
}

#[tokio::test(start_paused = true)]
async fn rollback_returns_to_the_previous_release_and_status_says_so() {
    let w = world();
    let (a, ra) = ship(&w, "aaaaaaa", Health::Healthy).await;
    let (b, rb) = ship(&w, "bbbbbbb", Health::Healthy).await;
    ra.and(rb).expect("both deploy");
    assert_eq!(fleet(&w), vec![b.clone(); 3]);

    let (report, result) = roll_back(&w, "previous").await;
    result.expect("rolled back");
    assert_eq!(fleet(&w), vec![a.clone(); 3]);
    let plan = &report.unwrap().decision.groups[0];
    assert_eq!((plan.from.version, plan.to.version, plan.new_version), (Some(3), Some(2), false), "reuses A's version");
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.unwrap().version, "2");
    assert_eq!(w.fake.template_version(&w.stack.template_id, 4).map(|v| v.number), None, "no version created");

    let st = status(&w.ctx, &group(&w).await, Default::default()).await.unwrap();
    assert_eq!((st.release.version, st.release.ami.as_deref(), st.release.commit.as_deref()), (Some(2), Some(a.as_str()), Some("aaaaaaa")));
    assert!(st.healthy, "{:?}", st.problems);
    assert_eq!((st.images.len(), st.images[0].instances, st.images[0].commit.as_deref()), (1, 3, Some("aaaaaaa")));
    assert_eq!((st.target_groups[0].healthy, st.target_groups[0].total), (3, 3));
    assert!(st.refresh.is_none());
    assert_eq!(outcomes(&group(&w).await), [
        (Some("bbbbbbb".into()), "rolled-back"),
        (Some("aaaaaaa".into()), "deployed"),
        (None, "superseded"),
    ]);

    // Rolling back again steps further back (what A replaced), not forward to B.
    roll_back(&w, "previous").await.1.expect("rolled back again");
    assert_eq!(fleet(&w), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn rollback_to_a_commit_after_a_third_release_and_history_after_six_weeks() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa1", Health::Healthy).await;
    ship(&w, "bbbbbbb2", Health::Healthy).await.1.unwrap();
    ship(&w, "ccccccc3", Health::Healthy).await.1.unwrap();
    let (_, bad) = ship(&w, "ddddddd4", Health::Unhealthy).await;
    assert_eq!(bad.unwrap_err().exit_code(), exit::ROLLED_BACK);

    roll_back(&w, "aaaaaaa").await.1.expect("a 7-character prefix names A");
    assert_eq!(fleet(&w), vec![a.clone(); 3]);
    let expected = [
        (Some("ddddddd4".to_string()), "rolled-back"),
        (Some("ccccccc3".to_string()), "rolled-back"),
        (Some("bbbbbbb2".to_string()), "superseded"),
        (Some("aaaaaaa1".to_string()), "deployed"),
        (None, "superseded"),
    ];
    let now = group(&w).await;
    assert_eq!(outcomes(&now), expected);
    assert!(now.history()[0].detail.contains("RollbackSuccessful"), "{}", now.history()[0].detail);

    // AWS keeps refreshes for six weeks; the versions (and their from=) keep the story.
    tokio::time::sleep(Duration::from_secs(43 * 24 * 3600)).await;
    let later = group(&w).await;
    assert!(later.refreshes.is_empty(), "the fake forgot the refreshes");
    assert_eq!(outcomes(&later), expected);
}

#[tokio::test(start_paused = true)]
async fn rollback_during_bake_time_rolls_the_refresh_back() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    let deploying = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = DeployRequest { env: "prod".into(), image_id: b.clone(), commit: Some("bbbbbbb".into()), force: false, targets: Default::default(), images: Default::default() };
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    w.until_refresh("shop-web", "Baking").await;
    assert_eq!(fleet(&w), vec![b.clone(); 3], "every instance replaced, still rollbackable");

    let (report, result) = roll_back(&w, "previous").await;
    result.expect("undone");
    let g = &report.unwrap().groups[0];
    assert!(g.undo.is_some() && g.deploy.is_none(), "RollbackInstanceRefresh only, no new refresh: {g:?}");
    assert_eq!(w.calls("autoscaling:RollbackInstanceRefresh"), 1);
    assert_eq!(fleet(&w), vec![a.clone(); 3]);
    assert_eq!(w.fake.refreshes("shop-web")[0].status.as_str(), "RollbackSuccessful");
    // The deploy that was watching sees its refresh rolled back and says so.
    let (_, deployed) = deploying.await.unwrap();
    assert_eq!(deployed.unwrap_err().exit_code(), exit::ROLLED_BACK);
}

#[tokio::test(start_paused = true)]
async fn unknown_and_deregistered_targets_are_refused_by_name_without_changes() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    ship(&w, "bbbbbbb", Health::Healthy).await.1.unwrap();
    let before = w.mutations();
    for (to, named) in [("fffffff", "fffffff"), ("ami-0000000000000dead", "ami-0000000000000dead"), ("17", "version 17")] {
        let err = roll_back(&w, to).await.1.unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE, "{to}: {err}");
        assert!(err.to_string().contains(named), "{to}: {err}");
    }
    // A's image is B's rollback target: protected from deregistration until someone turns that off.
    let refused = w.ctx.cloud.ec2.deregister_image(&a).await.unwrap_err();
    assert!(refused.is("OperationNotPermitted"), "{refused}");
    w.ctx.cloud.ec2.disable_deregistration_protection(&a).await.unwrap();
    w.ctx.cloud.ec2.deregister_image(&a).await.unwrap();
    let err = roll_back(&w, "previous").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains(&a) && err.to_string().contains("deregistered"), "{err}");
    let by_hand = ["ec2:DeregisterImage", "ec2:DisableImageDeregistrationProtection"];
    let changed: Vec<_> = w.mutations().into_iter().filter(|m| !before.contains(m) && !by_hand.contains(&m.as_str())).collect();
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.unwrap().version, "3");
}

#[tokio::test(start_paused = true)]
async fn rollback_to_a_release_that_fails_health_exits_3_back_where_it_was() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    let (b, _) = ship(&w, "bbbbbbb", Health::Healthy).await;
    // A has gone bad since (say, a dependency it calls was retired).
    w.fake.set_image_health(&a, Health::Unhealthy);
    let err = roll_back(&w, "previous").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    assert_eq!(fleet(&w), vec![b; 3], "back on B, verified");
}

#[tokio::test(start_paused = true)]
async fn rollback_to_an_image_no_version_records_creates_a_version() {
    let w = world();
    ship(&w, "aaaaaaa", Health::Healthy).await.1.unwrap();
    let old = baked(&w, "0000000", Health::Healthy).await;
    let (report, result) = roll_back(&w, "0000000").await;
    result.expect("deployed as a new version");
    let plan = &report.unwrap().decision.groups[0];
    assert!(plan.new_version && plan.to.ami.as_deref() == Some(old.as_str()), "{plan:?}");
    assert_eq!(fleet(&w), vec![old; 3]);
}

#[tokio::test(start_paused = true)]
async fn rollback_after_a_deploy_that_stopped_half_way_finishes_going_back_first() {
    let w = world();
    let (a, _) = ship(&w, "aaaaaaa", Health::Healthy).await;
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    let deploying = {
        let (ctx, env) = (w.ctx.clone(), w.env());
        let req = DeployRequest { env: "prod".into(), image_id: b.clone(), commit: Some("bbbbbbb".into()), force: false, targets: Default::default(), images: Default::default() };
        tokio::spawn(async move { deploy(&ctx, &env, &req).await })
    };
    // At the 50 % checkpoint someone cancels the refresh, and bakeroll cannot start its way back.
    for _ in 0..3600 {
        let f = fleet(&w);
        if f.contains(&a) && f.contains(&b) && f.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    w.fake.fail_always("autoscaling:StartInstanceRefresh", bakeroll::cloud::ErrorKind::Other, "InternalFailure");
    assert!(w.fake.cancel_refresh_externally("shop-web"));
    let (_, deployed) = deploying.await.unwrap();
    assert_eq!(deployed.unwrap_err().exit_code(), exit::NEEDS_HUMAN);
    let mixed = fleet(&w);
    assert!(mixed.contains(&a) && mixed.contains(&b), "{mixed:?}");
    assert_eq!(w.fake.group("shop-web").unwrap().launch_template.unwrap().version, "2", "the group never left A's version");

    w.fake.clear_faults();
    let (report, result) = roll_back(&w, "previous").await;
    result.expect("converged");
    let plan = &report.unwrap().decision.groups[0];
    assert_eq!(plan.to.version, Some(2), "A, not the release before it: {plan:?}");
    assert!(plan.why.contains("did not finish") && plan.why.contains(&b), "{}", plan.why);
    assert_eq!(fleet(&w), vec![a; 3]);
}

//! Two Auto Scaling groups in one environment: both deploy; when the second fails, the first is moved
//! back too, so the environment never ends half on each release.

use bakeroll::core::rollout::Outcome;
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::error::exit;
use bakeroll::fake::{Health, ImageSpec, StackSpec};

use crate::{world_with, PIPELINE};

fn two_groups() -> crate::World {
    let w = world_with(&PIPELINE.replace("[\"shop-web\"]", "[\"shop-web\", \"shop-api\"]"), 1);
    w.fake.add_stack(StackSpec::new("shop-api").image(w.stack.image_id.clone()));
    w
}

fn request(ami: &str) -> DeployRequest {
    DeployRequest { env: "prod".into(), image_id: ami.into(), commit: None, force: false, targets: Default::default(), images: Default::default() }
}

#[tokio::test(start_paused = true)]
async fn both_groups_deploy() {
    let w = two_groups();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("deployed");
    assert_eq!(report.groups.len(), 2);
    for g in ["shop-web", "shop-api"] {
        assert_eq!(w.fake.in_service_images(g), vec![ami.clone(); 3], "{g}");
    }
}

#[tokio::test(start_paused = true)]
async fn second_group_failing_moves_the_first_back() {
    let w = two_groups();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    // Healthy behind shop-web's target group, broken behind shop-api's.
    let api_tg = w.fake.group("shop-api").unwrap().target_group_arns[0].clone();
    w.fake.set_image_health_in(&ami, &api_tg, Health::Unhealthy);
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    assert!(matches!(report.groups[0].outcome, Some(Outcome::RolledBack { .. })), "{:?}", report.groups[0].outcome);
    for g in ["shop-web", "shop-api"] {
        assert_eq!(w.fake.in_service_images(g), vec![w.stack.image_id.clone(); 3], "{g}");
    }
    let state = err.state().unwrap();
    assert!(state.contains("shop-web back on") && state.contains("shop-api back on"), "{state}");
}

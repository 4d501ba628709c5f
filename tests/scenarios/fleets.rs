//! Fleets as teams run them, in the fake cloud: a warm pool replaced after the InService instances and
//! verified (and rolled back with the group); Standby and scale-in-protected instances under each
//! refresh preference, reported honestly; the desired capacity changed by someone mid-refresh; and
//! processes suspended before a deploy.

use std::time::Duration;

use bakeroll::core::health::{PROTECTED_IGNORED, STANDBY_IGNORED};
use bakeroll::engine::deploy::{deploy, DeployRequest};
use bakeroll::error::exit;
use bakeroll::events::Event;
use bakeroll::fake::{Health, ImageSpec, PoolState, StackSpec};

use crate::{request, run, spawn, world, world_of, World, PIPELINE};

/// The scenario pipeline with `extra` lines in its environment.
fn pipeline(extra: &str) -> String {
    PIPELINE.replace("[environments.prod]\n", &format!("[environments.prod]\n{extra}\n"))
}




fn warm_images(w: &World) -> Vec<String> {
    let mut v: Vec<String> = w.fake.warm_instances("shop-web").into_iter().filter(|(.., l)| l != "Warmed:Terminating").map(|(_, i, _)| i).collect();
    v.sort();
    v
}

/// shop-web with a warm pool of stopped instances (MaxSize 6 − desired 3 = 3), warmed up.
async fn with_pool() -> World {
    let w = world();
    w.fake.add_warm_pool("shop-web", 1, None, PoolState::Stopped);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(w.fake.warm_instances("shop-web").iter().filter(|(.., l)| l == "Warmed:Stopped").count(), 3, "{:?}", w.fake.warm_instances("shop-web"));
    w
}

#[tokio::test(start_paused = true)]
async fn a_deploy_leaves_the_warm_pool_on_the_new_image_and_says_so() {
    let w = with_pool().await;
    let old = w.stack.image_id.clone();
    assert_eq!(warm_images(&w), vec![old; 3]);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami.clone(); 3]);
    assert_eq!(warm_images(&w), vec![ami.clone(); 3], "the pool was replaced after the live instances");
    let pool = report.groups[0].warm_pool.clone().expect("the report shows the pool");
    assert_eq!(pool.len(), 3);
    assert!(pool.iter().all(|i| i.image.as_deref() == Some(ami.as_str()) && i.lifecycle == "Warmed:Stopped"), "{pool:?}");
    assert!(w.calls("autoscaling:DescribeWarmPool") > 0);
    let progress = w.fake.refreshes("shop-web")[0].warm_pool_percentage;
    assert_eq!(progress, Some(100));
}

#[tokio::test(start_paused = true)]
async fn a_bad_release_rolls_the_warm_pool_back_with_the_group() {
    let w = with_pool().await;
    let old = w.stack.image_id.clone();
    let bad = w.fake.add_image(ImageSpec::named("shop-bad").health(Health::Unhealthy));
    let (report, result) = run(&w, &bad).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert_eq!(w.fake.in_service_images("shop-web"), vec![old.clone(); 3]);
    assert_eq!(warm_images(&w), vec![old.clone(); 3], "no bad release waits in the pool");
    let pool = report.groups[0].warm_pool.clone().unwrap();
    assert!(pool.iter().all(|i| i.image.as_deref() == Some(old.as_str())), "{pool:?}");
}

/// shop-web with i[0] in Standby and i[1] protected from scale in, under `extra` preferences.
fn fleet_with(extra: &str) -> (World, String, String) {
    let w = world_of(&pipeline(extra), StackSpec::new("shop-web").instances(4));
    let (standby, protected) = (w.stack.instance_ids[0].clone(), w.stack.instance_ids[1].clone());
    w.fake.enter_standby("shop-web", &standby);
    w.fake.protect("shop-web", &protected, true);
    (w, standby, protected)
}

fn image_of(w: &World, id: &str) -> String {
    w.fake.instance(id).unwrap().image_id
}

#[tokio::test(start_paused = true)]
async fn ignored_standby_and_protected_instances_are_reported_by_id_never_verified_and_the_deploy_succeeds() {
    let (w, standby, protected) = fleet_with("standby_instances = \"Ignore\"\nscale_in_protected_instances = \"Ignore\"");
    let old = w.stack.image_id.clone();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = run(&w, &ami).await;
    result.expect("what the settings asked for: exit 0");
    let left: Vec<(&str, &str, &str)> =
        report.groups[0].left_behind.iter().map(|l| (l.id.as_str(), l.image.as_str(), l.because.as_str())).collect();
    assert_eq!(left, [(protected.as_str(), old.as_str(), PROTECTED_IGNORED), (standby.as_str(), old.as_str(), STANDBY_IGNORED)]);
    assert_eq!((image_of(&w, &standby), image_of(&w, &protected)), (old.clone(), old.clone()), "both really are left on the old image");
    let mut others = w.fake.in_service_images("shop-web");
    others.retain(|i| *i != old);
    assert_eq!(others, vec![ami; 2], "every other instance is on the new release");
    // Said before the deploy too.
    let said = w.events().iter().any(|e| matches!(e, Event::Info { message, .. } if message.contains(&standby) && message.contains("Ignore")));
    assert!(said, "preflight names the Standby instance and the setting");
}

#[tokio::test(start_paused = true)]
async fn refreshed_protected_and_terminated_standby_instances_leave_nothing_behind() {
    let (w, standby, protected) = fleet_with("standby_instances = \"Terminate\"\nscale_in_protected_instances = \"Refresh\"");
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert!(report.groups[0].left_behind.is_empty());
    assert!(w.fake.instance(&standby).unwrap().state.is_gone(), "Terminate terminated the Standby instance");
    assert!(!w.fake.group_instances("shop-web").iter().any(|(id, ..)| *id == protected), "Refresh replaced the protected one");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
}

#[tokio::test(start_paused = true)]
async fn under_wait_a_protected_instance_holds_the_refresh_until_its_protection_is_removed() {
    let w = world();
    let protected = w.stack.instance_ids[0].clone();
    w.fake.protect("shop-web", &protected, true);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let watcher = spawn(&w, &ami);
    // Waiting on it: everything else replaced, the refresh still InProgress, naming it.
    tokio::time::sleep(Duration::from_secs(900)).await;
    let r = w.fake.refreshes("shop-web")[0].clone();
    assert_eq!(r.status.as_str(), "InProgress");
    assert!(r.status_reason.as_deref().is_some_and(|s| s.contains(&protected)), "{r:?}");
    w.fake.protect("shop-web", &protected, false);
    let (report, result) = watcher.await.unwrap();
    result.expect("deployed once the protection was removed");
    assert!(report.groups[0].left_behind.is_empty());
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
}

#[tokio::test(start_paused = true)]
async fn under_wait_a_standby_instance_never_returned_fails_the_deploy_and_it_is_rolled_back() {
    let w = world_of(&pipeline("timeout = \"30m\"").replace("timeout = \"60m\"\n", ""), StackSpec::new("shop-web").instances(4));
    let standby = w.stack.instance_ids[0].clone();
    w.fake.enter_standby("shop-web", &standby);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);
}

#[tokio::test(start_paused = true)]
async fn desired_capacity_changed_mid_refresh_is_verified_as_it_ends() {
    for (to, expect) in [(5, 5usize), (2, 2usize)] {
        let w = world();
        let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
        let watcher = spawn(&w, &ami);
        w.until_refresh("shop-web", "InProgress").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        w.fake.set_desired_capacity("shop-web", to);
        let (report, result) = watcher.await.unwrap();
        result.unwrap_or_else(|e| panic!("desired {to}: {e}"));
        assert_eq!(w.fake.in_service_images("shop-web"), vec![ami.clone(); expect], "desired {to}");
        assert!(report.groups[0].left_behind.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn suspended_processes_are_refused_unless_forced_and_bakeroll_never_suspends_any() {
    let w = world();
    w.fake.suspend("shop-web", "AZRebalance", true);
    w.fake.suspend("shop-web", "Launch", true);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    let text = err.to_string();
    assert!(text.contains("AZRebalance, Launch") && text.contains("--force") && text.contains("resume-processes"), "{text}");
    assert!(w.mutations().is_empty(), "{:?}", w.mutations());

    // Forced with only a harmless one suspended: said, and deployed.
    w.fake.suspend("shop-web", "Launch", false);
    let forced = DeployRequest { force: true, ..request(&ami) };
    deploy(&w.ctx, &w.env(), &forced).await.1.expect("deployed with --force");
    let warned = w.events().iter().any(|e| matches!(e, Event::Warn { message, .. } if message.contains("AZRebalance")));
    assert!(warned);
    assert!(w.fake.calls().keys().all(|a| !a.contains("SuspendProcesses") && !a.contains("ResumeProcesses")));
    assert_eq!(w.fake.group("shop-web").unwrap().suspended_processes, vec!["AZRebalance".to_string()], "left as it was");
}

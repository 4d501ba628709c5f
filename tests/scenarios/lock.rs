//! One deploy per environment: the lock tag on the groups lets exactly one of two runs started
//! together proceed, names the holder to the other, is taken over (loudly) from a dead run, and is
//! gone when the run ends.

use std::time::Duration;

use bakeroll::core::lock::Holder;
use bakeroll::core::tags;
use bakeroll::engine::lock;
use bakeroll::error::exit;

use crate::world;

const LEASE: Duration = Duration::from_secs(600);

fn groups() -> Vec<String> {
    vec!["shop-web".to_string()]
}

#[tokio::test(start_paused = true)]
async fn of_two_runs_started_together_exactly_one_holds_the_lock() {
    let w = world();
    let (a, b) = (w.ctx.clone(), w.ctx.clone());
    let (first, second) = tokio::join!(
        async { lock::take(&a, "prod", &groups(), Some("c1"), LEASE).await },
        async { lock::take(&b, "prod", &groups(), Some("c2"), LEASE).await },
    );
    let (held, refused) = match (first, second) {
        (Ok(l), Err(e)) | (Err(e), Ok(l)) => (l, e),
        (Ok(_), Ok(_)) => panic!("both runs took the lock"),
        (Err(a), Err(b)) => panic!("neither took it: {a} / {b}"),
    };
    assert_eq!(refused.exit_code(), exit::USAGE);
    let text = refused.to_string();
    assert!(text.contains("holds group shop-web") && text.contains("commit c"), "names the holder: {text}");
    held.release(&w.ctx).await;
    assert!(!w.fake.group("shop-web").unwrap().tags.contains_key(tags::LOCK), "released");
    lock::take(&w.ctx, "prod", &groups(), Some("c3"), LEASE).await.expect("free again").release(&w.ctx).await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_runs_lock_is_taken_over_loudly_after_its_lease() {
    let w = world();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let dead = Holder { run: "deadbeef".into(), commit: Some("old".into()), job: None, host: "other-runner".into(), pid: 1, since: now - 900, until: now - 60 };
    w.ctx.cloud.autoscaling.set_group_tag("shop-web", tags::LOCK, &dead.to_tag()).await.unwrap();
    let l = lock::take(&w.ctx, "prod", &groups(), Some("c1"), LEASE).await.expect("taken over");
    assert!(w.events().iter().any(|e| format!("{e:?}").contains("taking over the deploy lock of run deadbeef")), "said loudly");
    l.release(&w.ctx).await;

    let alive = Holder { until: now + 300, ..dead };
    w.ctx.cloud.autoscaling.set_group_tag("shop-web", tags::LOCK, &alive.to_tag()).await.unwrap();
    let err = lock::take(&w.ctx, "prod", &groups(), Some("c1"), LEASE).await.err().expect("a live lease on another host holds");
    assert!(err.to_string().contains("run deadbeef"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_renewed_while_the_run_works() {
    let w = world();
    let l = lock::take(&w.ctx, "prod", &groups(), None, Duration::from_secs(30)).await.unwrap();
    let writes = || w.calls("autoscaling:CreateOrUpdateTags");
    assert_eq!(writes(), 1, "taken with one write");
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(writes(), 3, "renewed every third of the 30 s lease (at 10 s and 20 s)");
    l.release(&w.ctx).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(writes(), 3, "no renewal after the release");
}

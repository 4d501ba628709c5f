//! The simulation depends on elapsed virtual time only: not on how often anyone polls, and not on whether
//! quiet ticks are skipped.

use super::*;

/// What a caller can see of the world a scenario leaves behind at a fixed virtual time. (Not the internal
/// hash: records hold absolute `Instant`s, and each run starts at a later one.)
#[derive(Debug, PartialEq)]
struct Outcome {
    group: Option<Group>,
    instances: Vec<(Option<Instance>, String)>,
    refreshes: Vec<Refresh>,
    targets: Vec<Vec<TargetHealth>>,
    images: Vec<Image>,
    calls: BTreeMap<String, u32>,
}

/// Runs scenario `n`, polling DescribeInstanceRefreshes every `every` s until it ends, then looks at t = 2 h.
async fn run(n: u8, fast_forward: bool, every: u64) -> Outcome {
    let d = match n {
        0 => Deploy::standard().await,
        _ => {
            let stack = StackSpec::new("shop-web").instances(3).target_groups(2);
            Deploy::new(stack, ImageSpec::named("v2").health(Health::Unhealthy)).await
        }
    };
    d.fake.with(|s| s.fast_forward = fast_forward);
    let mut p = if n == 0 { prefs(90, 150) } else { prefs(100, 100) };
    p.checkpoints = vec![34, 100];
    p.checkpoint_delay = Some(Duration::from_secs(700));
    p.bake_time = Some(Duration::from_secs(1800));
    p.auto_rollback = n == 1;
    d.start(p).await;
    loop {
        sleep(every).await;
        let r = d
            .cloud
            .autoscaling
            .describe_instance_refreshes("shop-web", &[])
            .await
            .unwrap();
        if r[0].status.is_terminal() {
            break;
        }
    }
    let r = d.latest();
    let ended = r.end_time.unwrap() - r.start_time.unwrap();
    assert!(
        ended < 3600,
        "the look at 2 h must also see terminated instances vanish an hour later: {ended}"
    );
    sleep(2 * 3600 - d.fake.now_offset().as_secs()).await;
    let calls = d
        .fake
        .calls()
        .into_iter()
        .filter(|(a, _)| a != "autoscaling:DescribeInstanceRefreshes")
        .collect();
    let mut targets = Vec::new();
    for arn in &d.stack.target_group_arns {
        targets.push(d.cloud.elbv2.target_health(arn).await.unwrap());
    }
    let mut instances = Vec::new();
    for (id, ..) in d.fake.group_instances("shop-web") {
        instances.push((d.fake.instance(&id), d.cloud.ec2.console_output(&id).await.unwrap()));
    }
    let (group, refreshes, images) = (d.fake.group("shop-web"), d.fake.refreshes("shop-web"), d.fake.images());
    Outcome {
        group,
        instances,
        refreshes,
        targets,
        images,
        calls,
    }
}

#[tokio::test(start_paused = true)]
async fn polling_frequency_and_tick_skipping_do_not_change_history() {
    let expected = [RefreshStatus::Successful, RefreshStatus::RollbackSuccessful];
    for n in 0..2 {
        let reference = run(n, false, 1).await;
        assert_eq!(reference.refreshes[0].status, expected[n as usize]);
        for (fast, every) in [(false, 97), (true, 1), (true, 13), (true, 97), (true, 1800)] {
            let got = run(n, fast, every).await;
            assert_eq!(
                got, reference,
                "scenario {n}: fast-forward {fast}, polling every {every} s"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_48_hour_bake_time_is_honoured() {
    let d = Deploy::standard().await;
    let mut p = prefs(100, 200);
    p.bake_time = Some(Duration::from_secs(172_800));
    d.start(p).await;
    sleep(172_800).await;
    assert_eq!(d.latest().status, RefreshStatus::Baking);
    sleep(600).await;
    assert_eq!(d.latest().status, RefreshStatus::Successful);
}

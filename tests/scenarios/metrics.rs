//! The metric gate in virtual time, on the fake's ALB traffic (600 requests a minute per target group,
//! answered as each image's `local-aws:error-rate` / `local-aws:latency` tags say, published a minute after
//! each minute ends): a release that passes its health checks and fails its users is rolled back with the
//! metric named; one as good as the old one deploys; a latency regression alone is rolled back; a group
//! behind a Network Load Balancer or in no target group deploys with a note; a canary is judged against
//! the web tier on the same load balancer; a refresh that ends before its minutes are published waits
//! for them and is then rolled back like any failed verification; a refused GetMetricData degrades to the
//! other evidence; one GetMetricData per poll at most; a dry run says which comparison each group gets.

use bakeroll::cli::dry_run::context;
use bakeroll::cloud::dry_run::DryRun;
use bakeroll::core::health::{EvidenceKind, HealthFailure};
use bakeroll::core::release::{GroupState, Verdict};
use bakeroll::core::rollout::{Outcome, RollbackReason};
use bakeroll::engine::deploy::deploy;
use bakeroll::error::exit;
use bakeroll::events::Event;
use bakeroll::fake::{Balancer, ImageSpec, StackSpec, Timings, ERROR_RATE_TAG, LATENCY_TAG};

use crate::{request, run, world_of, world_timed, World, PIPELINE};

/// No checkpoints and no bake time: the refresh ends about two minutes after it starts, before a minute
/// the new release served is published.
const QUICK: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
ami_name = "shop-{commit}"
[environments.prod]
auto_scaling_groups = ["shop-web"]
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
"#;

fn infos(w: &World) -> Vec<String> {
    w.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Info { scope, message } | Event::Warn { scope, message } => Some(format!("{scope}: {message}")),
            _ => None,
        })
        .collect()
}

/// The evidence that rolled the group back.
fn evidence(report: &bakeroll::engine::deploy::DeployReport, group: &str) -> Vec<bakeroll::core::health::Evidence> {
    let g = report.groups.iter().find(|g| g.group == group).expect("group reported");
    match &g.outcome {
        Some(Outcome::RolledBack { reason: RollbackReason::Unhealthy { failure: HealthFailure::Unhealthy { evidence, .. } } }) => evidence.clone(),
        other => panic!("{group} was not rolled back by the gate: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_release_that_passes_its_health_checks_and_fails_its_users_is_rolled_back_with_the_metric_named() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    w.fake.set_requests_per_minute(&w.stack.target_group_arns[0], 1000.0);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.05"));
    let (report, result) = run(&w, &ami).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::ROLLED_BACK, "{err}");
    let evidence = evidence(&report, "shop-web");
    assert!(evidence.len() >= 2 && evidence.iter().all(|e| e.kind == EvidenceKind::ErrorRate), "only the metric convicted: {evidence:?}");
    let text = err.to_string();
    assert!(text.contains("the new release failed its users"), "{text}");
    assert!(text.contains("shop-web-tg1: 5xx rate") && text.contains("on the new release vs 0.2 % before") && text.contains("p < 0.00"), "{text}");
    let m = evidence[0].metric.as_ref().expect("structured");
    assert!((0.03..0.07).contains(&m.error_rate.unwrap().new_rate), "{m:?}");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3], "back on the old release");
}

#[tokio::test(start_paused = true)]
async fn a_release_as_good_as_the_old_one_deploys_and_says_what_it_measured() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.0021").tag(LATENCY_TAG, "0.052"));
    let (report, result) = run(&w, &ami).await;
    result.expect("deployed");
    assert_eq!(report.groups[0].outcome, Some(Outcome::Deployed));
    let said = infos(&w);
    assert!(said.iter().any(|l| l.contains("metric gate: 5xx rate and latency of shop-web-tg1 (on shop-web-alb) against its own 10 minutes")), "{said:#?}");
    assert!(said.iter().any(|l| l.contains("metrics of shop-web-tg1: 5xx rate") && l.contains("p99 latency")), "{said:#?}");
    // bake_time (5 min) outlasts the publication of the minutes the new release served: no wait.
    assert!(!said.iter().any(|l| l.contains("not yet verified")), "{said:#?}");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![ami; 3]);
}

#[tokio::test(start_paused = true)]
async fn a_latency_regression_alone_is_rolled_back() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(LATENCY_TAG, "0.15"));
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let evidence = evidence(&report, "shop-web");
    assert!(evidence.iter().all(|e| e.kind == EvidenceKind::Latency), "{evidence:?}");
    assert!(evidence[0].reason.as_deref().unwrap().contains("p99 latency"), "{evidence:?}");
}

#[tokio::test(start_paused = true)]
async fn groups_without_alb_metrics_deploy_on_the_other_evidence_with_a_note() {
    // Behind a Network Load Balancer: no HTTP codes to read, even from a release that fails its users.
    let w = world_of(PIPELINE, StackSpec::new("shop-web").balancer(Balancer::Nlb("shop-nlb".into())));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.05"));
    run(&w, &ami).await.1.expect("deployed: nothing else held against it");
    let said = infos(&w);
    assert!(said.iter().any(|l| l.contains("metrics unavailable: target group shop-web-tg1 is behind a Network Load Balancer (shop-nlb)")), "{said:#?}");
    assert_eq!(w.calls("cloudwatch:GetMetricData"), 0);

    // In no target group at all (EC2 health checks).
    let ec2 = PIPELINE.replace("health_grace = \"5m\"", "health_grace = \"5m\"\nhealth = \"ec2\"");
    let w = world_of(&ec2, StackSpec::new("shop-web").target_groups(0));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    run(&w, &ami).await.1.expect("deployed");
    assert!(infos(&w).iter().any(|l| l.contains("metrics unavailable: the group is in no target group")), "{:#?}", infos(&w));
    assert_eq!(w.calls("cloudwatch:GetMetricData"), 0);
}

const TIERS: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
ami_name = "shop-{commit}"
[environments.prod]
waves = [["shop-canary"], ["shop-web"]]
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
[environments.prod.groups.shop-canary]
bake_time = "10m"
"#;

/// shop-web (3 instances) and shop-canary (2) each with its own target group, both behind shop-web-alb.
fn tiers() -> World {
    let w = world_of(TIERS, StackSpec::new("shop-web"));
    w.fake.add_stack(StackSpec::new("shop-canary").instances(2).image(w.stack.image_id.clone()).balancer(Balancer::Alb("shop-web-alb".into())));
    w
}

#[tokio::test(start_paused = true)]
async fn a_canary_is_judged_against_the_web_tier_on_its_load_balancer_and_stops_the_release() {
    let w = tiers();
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.05"));
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert_eq!(report.verdict, Some(Verdict::Undone));
    let evidence = evidence(&report, "shop-canary");
    assert!(evidence[0].reason.as_deref().unwrap().contains("in shop-web-tg1 over the same minutes"), "{evidence:?}");
    assert_eq!(evidence[0].metric.as_ref().unwrap().comparison, "canary");
    let web = report.groups.iter().find(|g| g.group == "shop-web").unwrap();
    assert_eq!(web.state, Some(GroupState::Waiting), "the web tier never saw the release");
    assert!(w.fake.refreshes("shop-web").is_empty());
    assert!(infos(&w).iter().any(|l| l.contains("shop-canary: metric gate: 5xx rate and latency of shop-canary-tg1 (on shop-web-alb) as a canary against shop-web-tg1")));
}

#[tokio::test(start_paused = true)]
async fn a_bad_day_for_everyone_is_not_the_canarys_fault() {
    // The old release fails 5 % of its requests too: the canary is no worse than the web tier beside it.
    let w = tiers();
    w.fake.set_image_traffic(&w.stack.image_id, 0.05, 0.05);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    w.fake.set_image_traffic(&ami, 0.05, 0.05);
    let (report, result) = deploy(&w.ctx, &w.env(), &request(&ami)).await;
    result.expect("deployed everywhere");
    assert_eq!(report.verdict, Some(Verdict::Done));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_ends_before_its_minutes_are_published_waits_for_them_and_is_then_rolled_back() {
    // CloudWatch shows a minute 150 s after it ends: every minute the new release served is published
    // after the refresh is Successful (about two minutes in).
    let w = world_timed(QUICK, StackSpec::new("shop-web"), timings_with_delay(150));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.05"));
    let (report, result) = run(&w, &ami).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::ROLLED_BACK);
    let said = infos(&w);
    assert!(said.iter().any(|l| l.contains("not yet verified: waiting for CloudWatch to publish")), "{said:#?}");
    let evidence = evidence(&report, "shop-web");
    assert!(evidence.iter().all(|e| e.kind == EvidenceKind::ErrorRate), "{evidence:?}");
    // The forward refresh had succeeded: the way back is a new refresh to the old version.
    let refreshes = w.fake.refreshes("shop-web");
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    assert_eq!(refreshes[1].status.as_str(), "Successful", "the forward refresh");
    assert_eq!(refreshes[0].desired_version.as_deref(), Some("1"), "a refresh back");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![w.stack.image_id.clone(); 3]);

    // A good release in the same pipeline: it waits (said on screen), then deploys.
    let w = world_timed(QUICK, StackSpec::new("shop-web"), timings_with_delay(150));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    run(&w, &ami).await.1.expect("deployed");
    assert!(infos(&w).iter().any(|l| l.contains("not yet verified")), "{:#?}", infos(&w));
}

fn timings_with_delay(secs: u64) -> Timings {
    Timings { metrics_delay: std::time::Duration::from_secs(secs), ..Timings::default() }
}

#[tokio::test(start_paused = true)]
async fn a_refused_metric_call_leaves_the_release_to_the_other_evidence() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web"));
    w.fake.deny("cloudwatch:GetMetricData");
    let ami = w.fake.add_image(ImageSpec::named("shop-c1").tag(ERROR_RATE_TAG, "0.05"));
    run(&w, &ami).await.1.expect("deployed: no metrics, nothing else against it");
    assert!(infos(&w).iter().any(|l| l.contains("metrics unavailable from now on")), "{:#?}", infos(&w));
    assert_eq!(w.calls("cloudwatch:GetMetricData"), 1, "asked once (the ten minutes before the release), then never again");
}

#[tokio::test(start_paused = true)]
async fn one_metric_call_per_poll_at_most_and_one_look_at_the_load_balancers() {
    let w = world_of(PIPELINE, StackSpec::new("shop-web").target_groups(2));
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    run(&w, &ami).await.1.expect("deployed");
    let polls = w.calls("autoscaling:DescribeAutoScalingGroups");
    let metric_calls = w.calls("cloudwatch:GetMetricData");
    assert!(metric_calls > 10 && metric_calls <= polls, "{metric_calls} GetMetricData in {polls} polls");
    assert_eq!(w.calls("elasticloadbalancing:DescribeTargetGroups"), 1);
    // Two per poll (one per target group); the group is also read outside the watch (before it, and after
    // the verdict to protect its images), so the group reads are a few more than the polls.
    let health = w.calls("elasticloadbalancing:DescribeTargetHealth");
    assert!(health % 2 == 0 && health / 2 <= polls && health / 2 + 3 >= polls, "the health gate's calls are unchanged: {health} in {polls} group reads");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_says_which_comparison_each_group_gets() {
    let w = tiers();
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let ami = w.fake.add_image(ImageSpec::named("shop-c1"));
    let (_, result) = deploy(&ctx, &w.env(), &request(&ami)).await;
    result.expect("planned");
    let notes: Vec<String> = plan.notes().into_iter().map(|n| format!("{}: {}", n.scope, n.message)).collect();
    assert!(notes.iter().any(|n| n.starts_with("shop-canary: metric gate:") && n.contains("as a canary against shop-web-tg1")), "{notes:#?}");
    assert!(notes.iter().any(|n| n.starts_with("shop-web: metric gate:") && n.contains("against its own 10 minutes before the refresh")), "{notes:#?}");
    let reads: Vec<String> = plan.steps().into_iter().filter_map(|s| s.action).collect();
    assert!(reads.contains(&"elasticloadbalancing:DescribeTargetGroups".to_string()), "{reads:?}");
}

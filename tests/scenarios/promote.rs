//! Promotion and revocation in virtual time, over two environments (staging's shop-web, production's
//! shop-prod, `requires_verified_in = ["staging"]`): the marks a release leaves, production refused until
//! staging verifies, a failed staging deploy, --force recorded, revocation refused and stepped over by
//! rollback, deregistration protection on what runs and what a rollback needs, and prune turning it off
//! only on what it deletes.

use bakeroll::cli::dry_run::context;
use bakeroll::cloud::dry_run::{DryRun, StepKind};
use bakeroll::core::model::Protection;
use bakeroll::core::promotion::{GuardVerdict, MarkKind};
use bakeroll::core::releases::{parse_mark, TargetSpec};
use bakeroll::core::settings::EnvSettings;
use bakeroll::engine::bake::BakeRequest;
use bakeroll::engine::deploy::{deploy, DeployReport, DeployRequest};
use bakeroll::engine::retention::prune_execute;
use bakeroll::engine::{revoke, rollback, ship};
use bakeroll::error::{exit, Error};
use bakeroll::fake::{Health, StackSpec};

use crate::releases::baked;
use crate::{world_of, World};

const PROMOTED: &str = r#"
region = "us-east-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
user_data = "scripts/provision-demo.sh"
ami_name = "shop-{commit}"
[environments.staging]
auto_scaling_groups = ["shop-web"]
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
[environments.production]
auto_scaling_groups = ["shop-prod"]
requires_verified_in = ["staging"]
instance_warmup = "60s"
poll_interval = "5s"
health_grace = "5m"
timeout = "60m"
"#;

/// staging's shop-web and production's shop-prod, both on the base image.
fn two_envs() -> World {
    let w = world_of(PROMOTED, StackSpec::new("shop-web"));
    w.fake.add_stack(StackSpec::new("shop-prod").image(w.stack.image_id.clone()));
    w
}

fn env(w: &World, name: &str) -> EnvSettings {
    w.ctx.pipeline.settings(Some(name)).expect("environment")
}

async fn deploy_to(w: &World, name: &str, ami: &str, commit: &str, force: bool) -> (DeployReport, Result<(), Error>) {
    let req = DeployRequest { env: name.into(), image_id: ami.into(), commit: Some(commit.into()), force, targets: Default::default(), images: Default::default() };
    deploy(&w.ctx, &env(w, name), &req).await
}

async fn roll_back(w: &World, name: &str, to: &str, force: bool) -> Result<rollback::RollbackDecision, Error> {
    let e = env(w, name);
    let decision = rollback::decide(&w.ctx, &e, &TargetSpec::parse(to).unwrap(), to, force).await?;
    rollback::execute(&w.ctx, &e, &decision).await.1.map(|()| decision)
}

fn tag(w: &World, ami: &str, key: &str) -> Option<String> {
    w.fake.image(ami).unwrap().tags.get(key).cloned()
}

fn protected(w: &World, ami: &str) -> bool {
    w.fake.image(ami).unwrap().protection == Protection::Enabled
}

/// The release mark of the group's newest launch-template version.
fn newest_mark(w: &World, group: &str) -> bakeroll::core::releases::Mark {
    let template = w.fake.group(group).unwrap().launch_template.unwrap();
    let n = (1..100).rev().find(|n| w.fake.template_version(&template.id, *n).is_some()).unwrap();
    parse_mark(w.fake.template_version(&template.id, n).unwrap().description.as_deref().unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn production_takes_only_what_staging_verified() {
    let w = two_envs();
    let base = w.stack.image_id.clone();
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;

    // Not verified in staging yet: refused before anything changes, saying so.
    let before = w.mutations();
    let (report, refused) = deploy_to(&w, "production", &b, "bbbbbbb", false).await;
    let err = refused.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    assert!(err.to_string().contains(&format!("AMI {b} (commit bbbbbbb) may not be deployed to production: it was never verified in staging")), "{err}");
    assert_eq!(report.promotion.as_ref().map(|p| p.verdict), Some(GuardVerdict::Refused));
    assert_eq!(w.mutations(), before, "nothing changed");
    assert_eq!(w.fake.in_service_images("shop-prod"), vec![base.clone(); 3]);

    // Staging verifies it: the image is marked, and production takes it.
    let (staged, ok) = deploy_to(&w, "staging", &b, "bbbbbbb", false).await;
    ok.expect("staging deploys");
    let mark = staged.mark.expect("a mark");
    assert_eq!((mark.kind, mark.key.as_str(), mark.error), (MarkKind::Verified, "bakeroll:verified:staging", None));
    assert_eq!(tag(&w, &b, "bakeroll:verified:staging").as_deref(), Some(mark.at.as_str()));
    let (promoted, ok) = deploy_to(&w, "production", &b, "bbbbbbb", false).await;
    ok.expect("promoted");
    assert_eq!(promoted.promotion.unwrap().verdict, GuardVerdict::Allowed);
    assert_eq!(w.fake.in_service_images("shop-prod"), vec![b.clone(); 3]);
    assert!(tag(&w, &b, "bakeroll:verified:production").is_some());
    assert_eq!(newest_mark(&w, "shop-prod").forced, None);

    // Protected: the image both groups run. The base image each group would go back to is not this
    // pipeline's (amazon's, in the fixture): its protection is left to its owner.
    assert!(protected(&w, &b));
    let p: Vec<&str> = promoted.protected.iter().map(|p| p.ami.as_str()).collect();
    assert_eq!(p, [b.as_str()], "{:?}", promoted.protected);
    assert!(w.fake.image(&b).unwrap().protection.is_on());
}

#[tokio::test(start_paused = true)]
async fn a_failed_staging_deploy_marks_the_image_and_force_records_what_it_overrode() {
    let w = two_envs();
    let bad = baked(&w, "ddddddd", Health::Unhealthy).await;
    let (report, failed) = deploy_to(&w, "staging", &bad, "ddddddd", false).await;
    assert_eq!(failed.unwrap_err().exit_code(), exit::ROLLED_BACK);
    assert_eq!(report.mark.as_ref().map(|m| m.kind), Some(MarkKind::Failed));
    assert!(tag(&w, &bad, "bakeroll:failed:staging").is_some() && tag(&w, &bad, "bakeroll:verified:staging").is_none());
    assert!(!protected(&w, &bad), "only a verified release protects anything");

    let err = deploy_to(&w, "production", &bad, "ddddddd", false).await.1.unwrap_err();
    assert!(err.to_string().contains("its deploy to staging failed and was rolled back at "), "{err}");

    // --force: a warning, forced= in the release mark, and the verdict in the report.
    let good = baked(&w, "eeeeeee", Health::Healthy).await;
    let (report, ok) = deploy_to(&w, "production", &good, "eeeeeee", true).await;
    ok.expect("forced");
    let p = report.promotion.unwrap();
    assert_eq!((p.verdict, p.forced().as_deref()), (GuardVerdict::Forced, Some("unverified:staging")));
    assert_eq!(newest_mark(&w, "shop-prod").forced.as_deref(), Some("unverified:staging"));
    assert!(w.events().iter().any(|e| matches!(e, bakeroll::events::Event::Warn { message, .. } if message.contains("deploying anyway (--force)"))));

    // Verified in staging after all (a later, good deploy of the same image): the failure is replaced.
    let (_, ok) = deploy_to(&w, "staging", &good, "eeeeeee", false).await;
    ok.expect("staging");
    assert!(tag(&w, &good, "bakeroll:verified:staging").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_revoked_release_is_refused_stepped_over_by_rollback_and_restored() {
    let w = two_envs();
    let [a, b, c] = [baked(&w, "aaaaaaa", Health::Healthy).await, baked(&w, "bbbbbbb", Health::Healthy).await, baked(&w, "ccccccc", Health::Healthy).await];
    for (ami, commit) in [(&a, "aaaaaaa"), (&b, "bbbbbbb")] {
        deploy_to(&w, "staging", ami, commit, false).await.1.expect("staging");
    }
    // B is found bad in staging after it verified: revoked by its commit's prefix.
    let image = revoke::find(&w.ctx, &TargetSpec::parse("bbbbbbb").unwrap(), "bbbbbbb").await.unwrap();
    assert_eq!(image.id, b);
    let r = revoke::revoke(&w.ctx, &image, "corrupts orders").await.unwrap();
    assert_eq!(r.revoked.as_ref().map(|r| r.reason.as_str()), Some("corrupts orders"));
    assert!(tag(&w, &b, "bakeroll:revoked").unwrap().ends_with(" corrupts orders"));

    // Deploy refuses it everywhere, naming the reason; the running revoked release is left by deploying C.
    let err = deploy_to(&w, "production", &b, "bbbbbbb", false).await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("it was revoked at ") && err.to_string().contains(": corrupts orders"), "{err}");
    deploy_to(&w, "staging", &c, "ccccccc", false).await.1.expect("a new release while B runs, revoked");
    assert_eq!(w.fake.in_service_images("shop-web"), vec![c.clone(); 3]);

    // rollback previous steps over B and says so; --to B needs --force.
    let err = roll_back(&w, "staging", "bbbbbbb", false).await.unwrap_err();
    assert!(err.to_string().contains("was revoked") && err.to_string().contains("--force"), "{err}");
    let decision = roll_back(&w, "staging", "previous", false).await.expect("rolled back past B");
    let g = &decision.groups[0];
    assert_eq!(g.to.ami.as_deref(), Some(a.as_str()));
    assert_eq!(g.skipped.iter().map(|s| s.version).collect::<Vec<_>>(), [3]);
    assert!(g.why.contains("skipping version 3 (bbbbbbb): revoked at ") && g.why.contains("corrupts orders"), "{}", g.why);
    assert_eq!(w.fake.in_service_images("shop-web"), vec![a.clone(); 3]);
    let decision = roll_back(&w, "staging", "bbbbbbb", true).await.expect("forced onto B");
    assert_eq!(decision.groups[0].forced.as_deref(), Some("revoked"));
    assert_eq!(w.fake.in_service_images("shop-web"), vec![b.clone(); 3]);

    // Restored: deployable again; a second restore changes nothing.
    let image = revoke::find(&w.ctx, &TargetSpec::parse(&b).unwrap(), &b).await.unwrap();
    let r = revoke::restore(&w.ctx, &image).await.unwrap();
    assert_eq!((r.revoked.is_none(), r.was.is_some()), (true, true));
    assert!(tag(&w, &b, "bakeroll:revoked").is_none());
    assert!(revoke::restore(&w.ctx, &w.fake.image(&b).unwrap()).await.unwrap().was.is_none());
    deploy_to(&w, "production", &b, "bbbbbbb", false).await.1.expect("verified in staging, no longer revoked");
}

#[tokio::test(start_paused = true)]
async fn revoke_refuses_what_it_cannot_name_and_changes_nothing() {
    let w = two_envs();
    baked(&w, "abcdef01", Health::Healthy).await;
    baked(&w, "abcdef02", Health::Healthy).await;
    let before = w.mutations();
    for (given, says) in [
        ("abcdef0", "ambiguous"),
        ("fffffff", "no image of pipeline scenario was baked for commit fffffff"),
        (w.stack.image_id.as_str(), "not baked by pipeline scenario"),
        ("ami-0000000000000dead", "not found"),
        ("3", "revoke names a release by its commit"),
        ("previous", "revoke names a release by its commit"),
    ] {
        let err = revoke::find(&w.ctx, &TargetSpec::parse(given).unwrap(), given).await.unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE, "{given}: {err}");
        assert!(err.to_string().contains(says), "{given}: {err}");
    }
    assert_eq!(w.mutations(), before);
}

#[tokio::test(start_paused = true)]
async fn protection_covers_what_runs_and_the_rollback_target_and_prune_lifts_it_only_from_what_it_deletes() {
    let w = two_envs();
    let mut images = Vec::new();
    for commit in ["1111111", "2222222", "3333333", "4444444"] {
        let ami = baked(&w, commit, Health::Healthy).await;
        deploy_to(&w, "staging", &ami, commit, false).await.1.expect("staging");
        images.push(ami);
    }
    let [one, two, three, four] = [&images[0], &images[1], &images[2], &images[3]];
    // Each verified deploy protected the image it ran and the one before it.
    assert!(images.iter().all(|i| protected(&w, i)), "{images:?}");
    // The rollback target (3) is revoked: the target becomes 2, and 3 is no reason to keep anything.
    let image = w.fake.image(three).unwrap();
    revoke::revoke(&w.ctx, &image, "bad").await.unwrap();
    let decision = crate::prune_plan(&w.ctx, 0).await;
    let kept: Vec<&str> = decision.decision.keep.iter().map(|k| k.ami.as_str()).collect();
    let deleted: Vec<&str> = decision.decision.delete.iter().map(|d| d.ami.as_str()).collect();
    assert_eq!(kept, [four.as_str(), two.as_str()], "in use, and the rollback target past the revoked one: {:?}", decision.decision.keep);
    assert_eq!(deleted, [three.as_str(), one.as_str()]);
    assert!(decision.decision.delete.iter().all(|d| d.protected));
    let (done, result) = prune_execute(std::slice::from_ref(&decision)).await;
    result.expect("pruned");
    assert_eq!(done.done.len(), 2);
    assert!(protected(&w, four) && protected(&w, two), "what stays keeps its protection");
    assert_eq!(w.calls("ec2:DisableImageDeregistrationProtection"), 2, "only on the images it deleted");
    assert!(w.fake.images().iter().all(|i| i.id != *one && i.id != *three));
}

#[tokio::test(start_paused = true)]
async fn ship_asks_the_guard_before_it_bakes() {
    let w = two_envs();
    let prod = env(&w, "production");
    let req = BakeRequest { commit: "9999999".into(), build_instance: None, extra_tags: Default::default(), provenance: Default::default() };
    // A commit never baked cannot have been verified in staging: refused before any build instance.
    let (shipped, result) = ship::ship(&w.ctx, &prod, &req, false).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("commit 9999999 may not be deployed to production: it is not baked yet"), "{err}");
    assert!(shipped.baked.is_none() && w.calls("ec2:RunInstances") == 0);
    assert_eq!(shipped.deploy.and_then(|d| d.promotion).map(|p| p.verdict), Some(GuardVerdict::Refused));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_reports_the_guard_and_plans_the_mark_and_the_protection() {
    let w = two_envs();
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let req = DeployRequest { env: "production".into(), image_id: b.clone(), commit: Some("bbbbbbb".into()), force: false, targets: Default::default(), images: Default::default() };
    let err = deploy(&ctx, &env(&w, "production"), &req).await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "a dry run refuses as the real run would: {err}");

    let plan = DryRun::default();
    let ctx = context(&plan, &w.ctx);
    let req = DeployRequest { env: "staging".into(), ..req };
    deploy(&ctx, &env(&w, "staging"), &req).await.1.expect("planned");
    let writes: Vec<String> = plan.steps().into_iter().filter(|s| s.kind == StepKind::Write).filter_map(|s| s.action).collect();
    assert!(writes.contains(&"ec2:CreateTags".to_string()) && writes.contains(&"ec2:EnableImageDeregistrationProtection".to_string()), "{writes:?}");
    assert!(tag(&w, &b, "bakeroll:verified:staging").is_none() && !protected(&w, &b), "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn a_stopped_release_marks_nothing() {
    let w = two_envs();
    let b = baked(&w, "bbbbbbb", Health::Healthy).await;
    let (ctx, staging) = (w.ctx.clone(), env(&w, "staging"));
    let req = DeployRequest { env: "staging".into(), image_id: b.clone(), commit: Some("bbbbbbb".into()), force: false, targets: Default::default(), images: Default::default() };
    let deploying = tokio::spawn(async move { deploy(&ctx, &staging, &req).await });
    w.until_refresh("shop-web", "InProgress").await;
    w.ctx.stop.request("SIGTERM");
    let (report, result) = deploying.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), exit::INTERRUPTED);
    assert_eq!(report.mark, None, "a stop says nothing about the release");
    let tags = w.fake.image(&b).unwrap().tags;
    assert!(!tags.keys().any(|k| k.starts_with("bakeroll:verified:") || k.starts_with("bakeroll:failed:")), "{tags:?}");
}

//! Smoke test of every `bakeroll::aws` adapter call against a *local* AWS (moto, or the emulator in
//! scripts/local-aws). It refuses to run unless AWS_ENDPOINT_URL points at 127.0.0.1 / localhost.
//!
//!     /tmp/moto-venv/bin/moto_server -H 127.0.0.1 -p 5055 &
//!     AWS_ENDPOINT_URL=http://127.0.0.1:5055 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x \
//!     AWS_SECRET_ACCESS_KEY=x AWS_EC2_METADATA_DISABLED=true cargo run --example adapter_smoke
//!
//! Optional: SMOKE_INSTANCE_PROFILE=<name of an existing instance profile> also launches by name and by ARN
//! (moto checks that the profile exists in its IAM). Scaffolding the traits cannot create (VPC, launch
//! template, target group, group) is made with the raw SDK clients. Exit status 1 if a check failed.

use std::error::Error;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification as AsgLt;
use aws_sdk_ec2::types::{InstanceAttributeName, RequestLaunchTemplateData};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
use bakeroll::aws::{connect_with, ConnectOptions};
use bakeroll::cloud::{CloudError, CloudResult, ErrorKind};
use bakeroll::core::model::*;

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Default)]
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: impl Debug) {
        println!("{} {name}: {detail:?}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failed.push(name.to_string());
        }
    }
    /// An expected error: prints kind and code so the report can say what the emulator answers.
    fn error<T: Debug>(&mut self, name: &str, r: CloudResult<T>, want: impl Fn(&CloudError) -> bool) {
        match r {
            Err(e) => {
                let detail =
                    format!("{:?} code={:?} msg={}", e.kind, e.code, e.message.chars().take(120).collect::<String>());
                self.check(name, want(&e), detail);
            }
            Ok(v) => self.check(name, false, format!("expected an error, got {v:?}")),
        }
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::main]
async fn main() -> Res<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost")) {
        return Err("AWS_ENDPOINT_URL must point at a local AWS (http://127.0.0.1:PORT)".into());
    }
    let run = std::process::id().to_string();
    let mut c = Checks::default();
    // One attempt unless SMOKE_MAX_ATTEMPTS says otherwise: plain moto answers instance-refresh calls with
    // HTTP 500, which the SDK would retry with backoff.
    let max_attempts = std::env::var("SMOKE_MAX_ATTEMPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let cloud =
        connect_with(ConnectOptions { region: Some("us-east-1".into()), max_attempts: Some(max_attempts), ..ConnectOptions::default() }).await;
    let conf = aws_config::defaults(BehaviorVersion::latest()).region("us-east-1").load().await;
    let (ec2, asg, elb) = (
        aws_sdk_ec2::Client::new(&conf),
        aws_sdk_autoscaling::Client::new(&conf),
        aws_sdk_elasticloadbalancingv2::Client::new(&conf),
    );

    // --- images ---
    let filter = ImageFilter { owners: vec!["amazon".into()], name: Some("al2023-ami-*".into()), ..Default::default() };
    let base = cloud.ec2.find_images(&filter).await?;
    c.check("find_images by owner+name", !base.is_empty(), base.len());
    let base_ami = base.first().ok_or("no base image")?.id.clone();
    let by_id = cloud.ec2.find_images(&ImageFilter { ids: vec![base_ami.clone()], ..Default::default() }).await?;
    c.check("find_images by id", by_id.len() == 1 && by_id[0].state == ImageState::Available, &by_id[0].state);
    let unknown = ImageFilter { ids: vec!["ami-0123456789abcdef0".into()], ..Default::default() };
    c.error("find_images unknown id", cloud.ec2.find_images(&unknown).await, |e| e.kind == ErrorKind::NotFound);

    // --- scaffolding the traits do not create ---
    let vpc = ec2.create_vpc().cidr_block("10.42.0.0/16").send().await?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).ok_or("vpc id")?.to_string();
    let subnet =
        ec2.create_subnet().vpc_id(&vpc_id).cidr_block("10.42.1.0/24").availability_zone("us-east-1a").send().await?;
    let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).ok_or("subnet id")?.to_string();
    // A load balancer needs subnets in two zones.
    let subnet_b =
        ec2.create_subnet().vpc_id(&vpc_id).cidr_block("10.42.2.0/24").availability_zone("us-east-1b").send().await?;
    let subnet_b_id = subnet_b.subnet().and_then(|s| s.subnet_id()).ok_or("subnet id")?.to_string();
    let sg = ec2
        .create_security_group()
        .group_name(format!("smoke-{run}"))
        .description("smoke")
        .vpc_id(&vpc_id)
        .send()
        .await?;
    let sg_id = sg.group_id().ok_or("sg id")?.to_string();

    // --- build instance ---
    let profile = std::env::var("SMOKE_INSTANCE_PROFILE").ok();
    let bake_tags = tags(&[("bakeroll:run", &run), ("Name", "smoke-bake")]);
    let spec = LaunchSpec {
        image_id: base_ami.clone(),
        instance_type: "t3.micro".into(),
        subnet_id: Some(subnet_id.clone()),
        security_group_ids: vec![sg_id.clone()],
        iam_instance_profile: profile.clone(),
        user_data: Some("#!/bin/sh\necho hello\n".into()),
        tags: bake_tags.clone(),
    };
    let inst = cloud.ec2.launch_instance(&spec).await?;
    c.check("launch_instance", inst.image_id == base_ami && inst.tags == bake_tags, (&inst.id, &inst.state));
    let raw = ec2.describe_instances().instance_ids(&inst.id).send().await?;
    let raw_i = raw.reservations().first().and_then(|r| r.instances().first()).ok_or("raw instance")?;
    c.check(
        "  subnet + security group sent",
        raw_i.subnet_id() == Some(subnet_id.as_str())
            && raw_i.security_groups().iter().any(|g| g.group_id() == Some(sg_id.as_str())),
        raw_i.subnet_id(),
    );
    let ud = ec2
        .describe_instance_attribute()
        .instance_id(&inst.id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await?;
    let ud = ud.user_data().and_then(|u| u.value()).unwrap_or_default().to_string();
    c.check("  user data base64-encoded once", ud == "IyEvYmluL3NoCmVjaG8gaGVsbG8K", &ud);
    let vols = ec2
        .describe_volumes()
        .filters(aws_sdk_ec2::types::Filter::builder().name("attachment.instance-id").values(&inst.id).build())
        .send()
        .await?;
    let vol_tagged = vols.volumes().iter().any(|v| v.tags().iter().any(|t| t.key() == Some("bakeroll:run")));
    c.check("  volume tagged at launch", vol_tagged, vols.volumes().len());
    if let Some(p) = &profile {
        let arn = raw_i.iam_instance_profile().and_then(|p| p.arn()).unwrap_or_default().to_string();
        c.check("  instance profile by name", arn.ends_with(&format!("/{p}")), &arn);
        let by_arn =
            cloud.ec2.launch_instance(&LaunchSpec { iam_instance_profile: Some(arn.clone()), ..spec.clone() }).await;
        c.check("  instance profile by ARN", by_arn.is_ok(), by_arn.as_ref().map(|i| &i.id).map_err(|e| e.to_string()));
        if let Ok(i) = by_arn {
            cloud.ec2.terminate_instances(&[i.id]).await?;
        }
    }

    let ghost = "i-0123456789abcdef0".to_string();
    let seen = cloud.ec2.describe_instances(&[inst.id.clone(), ghost.clone()]).await?;
    c.check("describe_instances skips unknown ids", seen.len() == 1 && seen[0].id == inst.id, seen.len());
    let none = cloud.ec2.describe_instances(std::slice::from_ref(&ghost)).await?;
    c.check("describe_instances only unknown -> empty", none.is_empty(), none.len());
    let found = cloud.ec2.find_instances(&tags(&[("bakeroll:run", &run)])).await?;
    c.check("find_instances by tag", found.iter().any(|i| i.id == inst.id), found.len());
    let status = poll(|| cloud.ec2.instance_status_ok(&inst.id), |s| *s == Some(true)).await?;
    c.check("instance_status_ok", status == Some(true), status);
    let status = cloud.ec2.instance_status_ok(&ghost).await;
    c.check("instance_status_ok unknown id -> None", matches!(status, Ok(None)), status.map_err(|e| e.to_string()));
    let console = cloud.ec2.console_output(&inst.id).await?;
    c.check("console_output decoded", console.contains("Linux"), console.lines().next());

    // --- bake ---
    let name = format!("smoke-{run}");
    let ami = cloud.ec2.create_image(&inst.id, &name, "smoke bake", true, &bake_tags).await?;
    let baked =
        cloud.ec2.find_images(&ImageFilter { tags: tags(&[("bakeroll:run", &run)]), ..Default::default() }).await?;
    let img = baked.iter().find(|i| i.id == ami).ok_or("baked image not found by tag")?.clone();
    c.check(
        "create_image + find by tag",
        img.name == name && !img.snapshot_ids.is_empty(),
        (&img.state, &img.snapshot_ids),
    );
    // AWS refuses a second image with the same name; plain moto 5.2.5 accepts it (no check at all).
    match cloud.ec2.create_image(&inst.id, &name, "again", true, &Tags::new()).await {
        Ok(second) => {
            println!(
                "info create_image duplicate name: accepted ({second}); this emulator does not enforce unique names"
            );
            cloud.ec2.deregister_image(&second).await?;
        }
        Err(e) => c.check("create_image duplicate name", e.is("InvalidAMIName.Duplicate"), (e.kind, e.code)),
    }
    let snap = img.snapshot_ids[0].clone();
    cloud.ec2.create_tags(&[ami.clone(), snap.clone()], &tags(&[("stage", "smoke")])).await?;
    let retagged = cloud.ec2.find_images(&ImageFilter { ids: vec![ami.clone()], ..Default::default() }).await?;
    c.check("create_tags", retagged[0].tags.get("stage").map(String::as_str) == Some("smoke"), &retagged[0].tags);

    // --- launch template versions ---
    let lt = ec2
        .create_launch_template()
        .launch_template_name(format!("smoke-{run}"))
        .launch_template_data(
            RequestLaunchTemplateData::builder().image_id(&base_ami).instance_type("t3.micro".into()).build(),
        )
        .send()
        .await?;
    let lt_id = lt.launch_template().and_then(|t| t.launch_template_id()).ok_or("lt id")?.to_string();
    let long = "é".repeat(300);
    let v2 = cloud.ec2.create_launch_template_version(&lt_id, 1, &ami, &long).await?;
    c.check(
        "create_launch_template_version",
        v2.number == 2 && v2.image_id.as_deref() == Some(ami.as_str()),
        (v2.number, v2.description.as_ref().map(|d| d.chars().count())),
    );
    for n in 3..=20 {
        cloud.ec2.create_launch_template_version(&lt_id, 1, &base_ami, &format!("filler {n}")).await?;
    }
    let all = cloud.ec2.launch_template_versions(&lt_id, &[]).await?;
    c.check("launch_template_versions all (>15)", all.len() == 20, all.len());
    cloud.ec2.set_default_version(&lt_id, 2).await?;
    let picked = cloud.ec2.launch_template_versions(&lt_id, &["$Default".into(), "$Latest".into(), "1".into()]).await?;
    let numbers: Vec<_> = picked.iter().map(|v| (v.number, v.is_default)).collect();
    c.check(
        "set_default_version + versions by selector",
        numbers.contains(&(2, true)) && numbers.contains(&(20, false)),
        numbers,
    );
    let bad_lt = cloud.ec2.launch_template_versions("lt-0123456789abcdef0", &[]).await;
    c.error("launch_template_versions unknown template", bad_lt, |e| e.kind == ErrorKind::NotFound);

    // --- group, target health ---
    let tg = elb
        .create_target_group()
        .name(format!("smoke-{run}"))
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc_id)
        .send()
        .await?;
    let tg_arn = tg.target_groups().first().and_then(|t| t.target_group_arn()).ok_or("tg arn")?.to_string();
    // Targets of a group no load balancer forwards to are `unused` (on AWS and the emulator).
    let lb = elb
        .create_load_balancer()
        .name(format!("smoke-{run}"))
        .subnets(&subnet_id)
        .subnets(&subnet_b_id)
        .send()
        .await?;
    let lb_arn = lb.load_balancers().first().and_then(|l| l.load_balancer_arn()).ok_or("lb arn")?.to_string();
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg_arn).build();
    elb.create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward)
        .send()
        .await?;
    let group_name = format!("smoke-{run}");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&group_name)
        .launch_template(AsgLt::builder().launch_template_id(&lt_id).version("1").build())
        .min_size(1)
        .max_size(2)
        .desired_capacity(2)
        .vpc_zone_identifier(&subnet_id)
        .target_group_arns(&tg_arn)
        .send()
        .await?;
    let in_service =
        |g: &Option<Group>| g.as_ref().is_some_and(|g| g.instances.iter().filter(|i| i.in_service()).count() == 2);
    let g = poll(|| cloud.autoscaling.describe_group(&group_name), in_service).await?.ok_or("group not found")?;
    let lt_ref = g.launch_template.clone().ok_or("no template")?;
    c.check(
        "describe_group",
        lt_ref.id == lt_id
            && lt_ref.version == "1"
            && g.instances.len() == 2
            && g.target_group_arns == vec![tg_arn.clone()]
            && g.instances.iter().all(|i| i.in_service()),
        (&lt_ref, g.instances.len()),
    );
    c.check("describe_group unknown -> None", cloud.autoscaling.describe_group("nope").await?.is_none(), "None");
    let version_2 = Configuration::Template(TemplateRef { id: lt_id.clone(), name: String::new(), version: "2".into() });
    cloud.autoscaling.set_group_configuration(&group_name, &version_2).await?;
    let g2 = cloud.autoscaling.describe_group(&group_name).await?.and_then(|g| g.launch_template);
    c.check("set_group_configuration", g2.as_ref().map(|t| t.version.as_str()) == Some("2"), g2);
    let bad_group = cloud.autoscaling.set_group_configuration("nope", &version_2).await;
    c.error("set_group_configuration unknown group", bad_group, |_| true);
    let all_healthy = |h: &Vec<TargetHealth>| h.len() == 2 && h.iter().all(|t| t.state == TargetState::Healthy);
    let first = cloud.elbv2.target_health(&tg_arn).await?;
    println!("info target_health first answer: {:?}", first.iter().map(|t| (&t.state, &t.reason)).collect::<Vec<_>>());
    let health = poll(|| cloud.elbv2.target_health(&tg_arn), all_healthy).await?;
    c.check("target_health", health.len() == 2 && health.iter().all(|h| h.state == TargetState::Healthy), &health);
    let bad_tg = cloud
        .elbv2
        .target_health("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef")
        .await;
    c.error("target_health unknown target group", bad_tg, |e| e.kind == ErrorKind::NotFound);

    // --- CloudWatch (RPC v2 CBOR from the current SDK; scripts/local-aws translates it for moto) ---
    match cloud.cloudwatch.describe_alarms(&["bakeroll-smoke-no-such-alarm".to_string()]).await {
        Ok(alarms) => c.check("describe_alarms of an unknown alarm is empty", alarms.is_empty(), &alarms),
        Err(e) => c.check("describe_alarms answers", false, e.to_string()),
    }

    // --- instance refresh: missing from plain moto (HTTP 500, no code), provided by scripts/local-aws ---
    let prefs = RefreshPrefs {
        min_healthy_percentage: 100,
        max_healthy_percentage: 200,
        instance_warmup: Some(std::time::Duration::from_secs(10)),
        checkpoints: vec![],
        checkpoint_delay: None,
        skip_matching: false,
        auto_rollback: true,
        bake_time: None,
        alarms: vec![],
        standby_instances: None,
        scale_in_protected_instances: None,
    };
    let req = RefreshRequest::template(&group_name, &lt_id, 2, prefs);
    let t0 = Instant::now();
    let started = cloud.autoscaling.start_instance_refresh(&req).await;
    let started_id = started.as_ref().ok().cloned();
    report_refresh(&format!("start_instance_refresh ({:.1} s)", t0.elapsed().as_secs_f64()), started);
    if let Some(id) = started_id {
        // Against the emulator: poll until terminal (its time scale makes this seconds), then check the mapping.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let all = cloud.autoscaling.describe_instance_refreshes(&group_name, &[]).await?;
            let one = cloud.autoscaling.describe_instance_refreshes(&group_name, std::slice::from_ref(&id)).await?;
            let r = one.first().ok_or("refresh not found by id")?;
            println!(
                "info   refresh {} {:?} {:?}% desired={:?} ({} kept)",
                r.id,
                r.status,
                r.percentage_complete,
                r.desired_version,
                all.len()
            );
            if r.status.is_terminal() || std::time::Instant::now() > deadline {
                c.check(
                    "instance refresh reaches a terminal status",
                    r.status.is_terminal() && r.desired_version.as_deref() == Some("2") && r.start_time.is_some(),
                    (&r.status, r.end_time),
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        // The preferences as the service stored them: proves the request carried them (seconds, omissions).
        let raw = asg
            .describe_instance_refreshes()
            .auto_scaling_group_name(&group_name)
            .instance_refresh_ids(&id)
            .send()
            .await?;
        let p = raw.instance_refreshes().first().and_then(|r| r.preferences()).cloned();
        let p_ok = p.as_ref().is_some_and(|p| {
            (p.min_healthy_percentage(), p.max_healthy_percentage(), p.instance_warmup(), p.auto_rollback())
                == (Some(100), Some(200), Some(10), Some(true))
                && p.alarm_specification().is_none()
        });
        c.check("refresh preferences stored as sent", p_ok, p);
        report_refresh(
            "rollback_instance_refresh (after the end)",
            cloud.autoscaling.rollback_instance_refresh(&group_name).await,
        );
        report_refresh(
            "cancel_instance_refresh (after the end)",
            cloud.autoscaling.cancel_instance_refresh(&group_name).await,
        );
        // A second refresh, cancelled and one rolled back while in progress.
        let second = cloud.autoscaling.start_instance_refresh(&RefreshRequest::template(&group_name, &lt_id, 1, req.prefs.clone())).await;
        report_refresh("start_instance_refresh (second)", second);
        let again = cloud.autoscaling.start_instance_refresh(&req).await;
        c.error("start_instance_refresh while one is active", again, |e| e.is("InstanceRefreshInProgress"));
        report_refresh(
            "rollback_instance_refresh (in progress)",
            cloud.autoscaling.rollback_instance_refresh(&group_name).await,
        );
        report_refresh(
            "cancel_instance_refresh (in progress)",
            cloud.autoscaling.cancel_instance_refresh(&group_name).await,
        );
        let last = cloud.autoscaling.describe_instance_refreshes(&group_name, &[]).await?;
        println!(
            "info   refreshes now: {:?}",
            last.iter().map(|r| (&r.id, &r.status, &r.rollback_reason)).collect::<Vec<_>>()
        );
    } else {
        report_refresh(
            "describe_instance_refreshes",
            cloud.autoscaling.describe_instance_refreshes(&group_name, &[]).await,
        );
        report_refresh("rollback_instance_refresh", cloud.autoscaling.rollback_instance_refresh(&group_name).await);
        report_refresh("cancel_instance_refresh", cloud.autoscaling.cancel_instance_refresh(&group_name).await);
    }

    // --- cleanup calls ---
    let in_use = cloud.ec2.delete_snapshot(&snap).await;
    c.error("delete_snapshot still used by an AMI", in_use, |e| e.is("InvalidSnapshot.InUse"));
    cloud.ec2.deregister_image(&ami).await?;
    let gone = cloud.ec2.find_images(&ImageFilter { ids: vec![ami.clone()], ..Default::default() }).await;
    println!("info find_images after deregister: {:?}", gone.map(|v| v.len()).map_err(|e| e.to_string()));
    cloud.ec2.delete_snapshot(&snap).await?;
    c.check("deregister_image + delete_snapshot", true, (&ami, &snap));
    cloud.ec2.terminate_instances(std::slice::from_ref(&inst.id)).await?;
    let ids = [inst.id.clone()];
    let gone = cloud.ec2.describe_instances(&ids).await?;
    c.check("terminate_instances", gone.first().is_some_and(|i| i.state.is_gone()), gone.first().map(|i| &i.state));
    let terminated = |v: &Vec<Instance>| v.first().is_some_and(|i| i.state == InstanceState::Terminated);
    poll(|| cloud.ec2.describe_instances(&ids), terminated).await?;
    let after = cloud.ec2.find_instances(&tags(&[("bakeroll:run", &run)])).await?;
    c.check("find_instances leaves out terminated", !after.iter().any(|i| i.id == inst.id), after.len());
    let bad_term = cloud.ec2.terminate_instances(&[ghost]).await;
    c.error("terminate_instances unknown id", bad_term, |e| e.kind == ErrorKind::NotFound);

    println!("ledger: {:?}", cloud.calls.snapshot());
    if c.failed.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        println!("failed: {:?}", c.failed);
        std::process::exit(1)
    }
}

/// Polls `f` until `done` or 60 s: the scripts/local-aws emulator has pending phases that plain moto skips.
async fn poll<T, Fut>(mut f: impl FnMut() -> Fut, done: impl Fn(&T) -> bool) -> CloudResult<T>
where
    Fut: Future<Output = CloudResult<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = f().await?;
        if done(&v) || Instant::now() > deadline {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Instance-refresh calls are informational here: their outcome depends on the emulator.
fn report_refresh<T: Debug>(name: &str, r: CloudResult<T>) {
    match r {
        Ok(v) => println!("info {name}: ok {v:?}"),
        Err(e) => println!(
            "info {name}: {:?} code={:?} transient={} msg={}",
            e.kind,
            e.code,
            e.is_transient(),
            e.message.chars().take(100).collect::<String>()
        ),
    }
}

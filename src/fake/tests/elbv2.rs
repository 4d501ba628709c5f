//! Target health and group membership: registration, health flips, mixed health, deregistration on leave.

use super::*;
use crate::cloud::ErrorKind;

#[tokio::test(start_paused = true)]
async fn an_instance_leaving_the_group_drains_and_its_replacement_registers() {
    let fake = FakeCloud::new();
    let stack = fake.add_stack(StackSpec::new("shop-web").instances(3).target_groups(2));
    let cloud = fake.cloud();
    let victim = stack.instance_ids[0].clone();
    cloud
        .ec2
        .terminate_instances(std::slice::from_ref(&victim))
        .await
        .unwrap();
    sleep(1).await;
    for arn in &stack.target_group_arns {
        let states = fake.target_states(arn);
        assert!(states.contains(&(victim.clone(), TargetState::Draining)), "{states:?}");
    }
    let members = fake.group_instances("shop-web");
    assert!(
        members.contains(&(victim.clone(), stack.image_id.clone(), "Terminating".into())),
        "{members:?}"
    );
    assert_eq!(members.len(), 4, "a replacement was launched at once");

    sleep(30).await; // deregistration delay
    for arn in &stack.target_group_arns {
        assert!(
            fake.target_states(arn).iter().all(|(id, _)| *id != victim),
            "deregistered target is gone"
        );
    }
    sleep(14).await; // replacement running at 16 s, then `initial` for 3 × 10 s
    let fresh = fake
        .group_instances("shop-web")
        .into_iter()
        .find(|(id, ..)| !stack.instance_ids.contains(id))
        .unwrap()
        .0;
    let health = cloud.elbv2.target_health(&stack.target_group_arns[1]).await.unwrap();
    let fresh_health = health.iter().find(|t| t.target_id == fresh).unwrap();
    assert_eq!(fresh_health.state, TargetState::Initial);
    assert_eq!(fresh_health.reason.as_deref(), Some("Elb.InitialHealthChecking"));
    sleep(30).await;
    assert!(fake
        .target_states(&stack.target_group_arns[1])
        .contains(&(fresh.clone(), TargetState::Healthy)));
    assert_eq!(
        fake.group_instances("shop-web").len(),
        3,
        "terminated member left the group"
    );
    assert_eq!(fake.min_in_service_healthy_seen("shop-web"), Some(2));
}

#[tokio::test(start_paused = true)]
async fn health_can_differ_between_target_groups() {
    let fake = FakeCloud::new();
    let stack = fake.add_stack(
        StackSpec::new("shop-web")
            .instances(2)
            .target_groups(2)
            .ec2_health_check(),
    );
    let (id, tg1, tg2) = (
        &stack.instance_ids[0],
        &stack.target_group_arns[0],
        &stack.target_group_arns[1],
    );
    fake.set_instance_health_in(id, tg2, Health::Unhealthy);
    sleep(20).await; // first failed check at the next tick, then unhealthy threshold 2 × 10 s
    assert!(fake.target_states(tg2).contains(&(id.clone(), TargetState::Healthy)));
    sleep(1).await;
    assert!(fake.target_states(tg2).contains(&(id.clone(), TargetState::Unhealthy)));
    assert!(fake.target_states(tg1).contains(&(id.clone(), TargetState::Healthy)));
    let h = fake.cloud().elbv2.target_health(tg2).await.unwrap();
    assert_eq!(
        h.iter().find(|t| t.target_id == *id).unwrap().reason.as_deref(),
        Some("Target.ResponseCodeMismatch")
    );

    fake.set_instance_health_in(id, tg2, Health::Healthy);
    sleep(31).await; // healthy threshold 3 × 10 s
    assert!(fake.target_states(tg2).contains(&(id.clone(), TargetState::Healthy)));
    assert_eq!(
        fake.group_instances("shop-web").len(),
        2,
        "EC2 health checks ignore target health"
    );
}

#[tokio::test(start_paused = true)]
async fn elb_health_checks_replace_a_broken_instance() {
    let fake = FakeCloud::new();
    let stack = fake.add_stack(StackSpec::new("shop-web").instances(3));
    let broken = stack.instance_ids[1].clone();
    fake.set_instance_health(&broken, Health::Unhealthy);
    sleep(21).await;
    let group = fake.group("shop-web").unwrap();
    let member = group.instances.iter().find(|i| i.id == broken).unwrap();
    assert_eq!(
        (member.lifecycle_state.as_str(), member.health_status.as_str()),
        ("Terminating", "Unhealthy")
    );
    sleep(120).await;
    let images = fake.in_service_images("shop-web");
    assert_eq!(
        images,
        vec![stack.image_id.clone(); 3],
        "replaced from the group's own template"
    );
    assert!(fake.group_instances("shop-web").iter().all(|(id, ..)| *id != broken));
}

#[tokio::test(start_paused = true)]
async fn image_tags_drive_health_like_the_local_emulator() {
    let fake = FakeCloud::new();
    let bad = fake.add_image(ImageSpec::named("bad").tag(HEALTH_TAG, "unhealthy"));
    let stuck = fake.add_image(ImageSpec::named("stuck").tag(HEALTH_TAG, "initial"));
    let a = fake.add_stack(StackSpec::new("a").instances(1).image(bad).ec2_health_check());
    let b = fake.add_stack(StackSpec::new("b").instances(1).image(stuck).ec2_health_check());
    sleep(21).await;
    assert_eq!(
        fake.target_states(&a.target_group_arns[0])[0].1,
        TargetState::Unhealthy,
        "healthy fixture flips"
    );
    assert_eq!(
        fake.target_states(&b.target_group_arns[0])[0].1,
        TargetState::Unhealthy,
        "out of initial, no answer"
    );

    // A fresh target of a stuck image never leaves `initial`.
    let cloud = fake.cloud();
    cloud.ec2.terminate_instances(&b.instance_ids).await.unwrap();
    sleep(600).await;
    let states = fake.target_states(&b.target_group_arns[0]);
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].1, TargetState::Initial);
}

#[tokio::test(start_paused = true)]
async fn unknown_names_answer_like_aws() {
    let fake = FakeCloud::new();
    let cloud = fake.cloud();
    assert_eq!(cloud.autoscaling.describe_group("nope").await.unwrap(), None);
    let e = cloud
        .elbv2
        .target_health("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/0")
        .await
        .unwrap_err();
    assert!(e.is("TargetGroupNotFound") && e.kind == ErrorKind::NotFound);
    let e = cloud
        .autoscaling
        .set_group_configuration("nope", &Configuration::Template(TemplateRef { id: "lt-1".into(), name: String::new(), version: "1".into() }))
        .await
        .unwrap_err();
    assert!(e.is("ValidationError"));
    let e = cloud.autoscaling.cancel_instance_refresh("nope").await.unwrap_err();
    assert!(e.is("ValidationError"));
    assert!(cloud
        .autoscaling
        .describe_instance_refreshes("nope", &[])
        .await
        .unwrap()
        .is_empty());
}

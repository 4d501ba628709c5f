"""The headline guarantee of a launch-before-terminate instance refresh (Min 100 %, Max 200 %):
healthy in-service capacity never drops below the desired capacity, sampled many times per refresh
(Amazon EC2 Auto Scaling User Guide — "Instance maintenance policies", "How an instance refresh
works")."""

from __future__ import annotations

from .conftest import group, make_image, new_version, refresh_status, wait_for

TIME_SCALE = 0.03  # slow enough to sample the fleet many times during one refresh, even on a loaded machine
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


def healthy_in_service(asg, elbv2, tg_arn: str) -> int:
    ids = {i["InstanceId"] for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"}
    states = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return sum(1 for d in states if d["Target"]["Id"] in ids and d["TargetHealth"]["State"] == "healthy")


def test_min100_max200_never_drops_capacity(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=4)
    wait_for(lambda: healthy_in_service(asg, elbv2, seed["target_group_arns"][0]) == 4, what="4 healthy")
    image = make_image(ec2, seed["base_ami"], "shop-v2")
    version = new_version(ec2, image)
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "InstanceWarmup": 60},
    )
    lowest, samples, peak = 99, 0, 0
    while True:
        lowest = min(lowest, healthy_in_service(asg, elbv2, seed["target_group_arns"][0]))
        peak = max(peak, len([i for i in group(asg)["Instances"] if i["LifecycleState"] in ("Pending", "InService")]))
        samples += 1
        if refresh_status(asg)["Status"] in TERMINAL:
            break
    final = refresh_status(asg)
    assert final["Status"] == "Successful"
    assert samples > 20, f"only {samples} samples: the machine is too loaded to prove anything"
    assert lowest >= 4, f"healthy in-service capacity dropped to {lowest}"
    assert peak == 8  # Max 200 % of 4: all replacements launched before any old one is terminated
    instances = group(asg)["Instances"]
    assert len(instances) == 4
    images = {r["Instances"][0]["ImageId"] for r in ec2.describe_instances(
        InstanceIds=[i["InstanceId"] for i in instances])["Reservations"]}
    assert images == {image}
    assert group(asg)["LaunchTemplate"]["Version"] == version  # desired configuration applied on success



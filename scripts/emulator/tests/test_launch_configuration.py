"""Auto Scaling groups on a launch configuration (Amazon EC2 Auto Scaling User Guide — "Create an
Auto Scaling group using a launch configuration", "Migrate your Auto Scaling groups to launch
templates"): instances launch from the configuration, are registered in the target groups and are
health-checked like a template group's; DescribeAutoScalingGroups names the configuration."""

from __future__ import annotations

from .conftest import group, make_image, wait_for, wait_refresh_done

TIME_SCALE = 0.004


def _lc_group(asg, seed, image_id: str, desired: int = 2, name: str = "lc-web", lc: str = "lc-1") -> None:
    asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=image_id, InstanceType="t3.small",
                                    SecurityGroups=[seed["security_group_id"]])
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=lc, MinSize=desired, MaxSize=desired + 2,
        DesiredCapacity=desired, VPCZoneIdentifier=",".join(seed["subnet_ids"]),
        TargetGroupARNs=seed["target_group_arns"], HealthCheckType="ELB", HealthCheckGracePeriod=60)


def _healthy_everywhere(elbv2, seed, ids) -> bool:
    for arn in seed["target_group_arns"]:
        states = {d["Target"]["Id"]: d["TargetHealth"]["State"]
                  for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
        if any(states.get(i) != "healthy" for i in ids):
            return False
    return True


def test_launch_configuration_group_launches_registers_and_reports(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    image = make_image(ec2, seed["base_ami"], "lc-image")
    _lc_group(asg, seed, image)
    g = group(asg, "lc-web")
    assert g["LaunchConfigurationName"] == "lc-1" and "LaunchTemplate" not in g
    assert len(g["Instances"]) == 2
    for i in g["Instances"]:
        assert i["LaunchConfigurationName"] == "lc-1" and "LaunchTemplate" not in i
    ids = [i["InstanceId"] for i in g["Instances"]]
    described = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    assert {i["ImageId"] for i in described} == {image}
    assert {i["InstanceType"] for i in described} == {"t3.small"}
    assert {i["Placement"]["AvailabilityZone"] for i in described} == {"us-east-1a", "us-east-1b"}
    assert {sg["GroupId"] for i in described for sg in i["SecurityGroups"]} == {seed["security_group_id"]}
    wait_for(lambda: {i["LifecycleState"] for i in group(asg, "lc-web")["Instances"]} == {"InService"},
             what="InService")
    wait_for(lambda: _healthy_everywhere(elbv2, seed, ids), what="healthy in both target groups")
    instances = asg.describe_auto_scaling_instances(InstanceIds=ids)["AutoScalingInstances"]
    assert {i["LaunchConfigurationName"] for i in instances} == {"lc-1"}


def test_launch_configuration_group_replaces_an_unhealthy_image(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    broken = make_image(ec2, seed["base_ami"], "lc-broken", unhealthy=True)
    _lc_group(asg, seed, broken, desired=1)
    first = group(asg, "lc-web")["Instances"][0]["InstanceId"]
    wait_for(lambda: any(i["InstanceId"] == first and i["HealthStatus"] == "Unhealthy"
                         for i in group(asg, "lc-web")["Instances"]), what="Unhealthy")
    wait_for(lambda: [i for i in group(asg, "lc-web")["Instances"]
                      if i["InstanceId"] != first and i["LifecycleState"] in ("Pending", "InService")],
             what="replacement")


def test_switching_to_a_launch_template_and_refreshing_migrates_the_group(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    _lc_group(asg, seed, seed["base_ami"])
    old = {i["InstanceId"] for i in group(asg, "lc-web")["Instances"]}
    asg.start_instance_refresh(
        AutoScalingGroupName="lc-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": "1"}},
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0})
    r = wait_refresh_done(asg, "lc-web")
    assert r["Status"] == "Successful", r
    g = group(asg, "lc-web")
    assert g["LaunchTemplate"]["LaunchTemplateName"] == "shop-web" and "LaunchConfigurationName" not in g
    live = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
    assert len(live) == 2 and not old & {i["InstanceId"] for i in live}
    assert all("LaunchConfigurationName" not in i and i["LaunchTemplate"]["Version"] == "1" for i in live)
    # and back: UpdateAutoScalingGroup with a launch configuration makes new instances use it
    asg.update_auto_scaling_group(AutoScalingGroupName="lc-web", LaunchConfigurationName="lc-1", DesiredCapacity=3)
    g = group(asg, "lc-web")
    assert g["LaunchConfigurationName"] == "lc-1" and "LaunchTemplate" not in g
    newest = [i for i in g["Instances"] if i["InstanceId"] not in {x["InstanceId"] for x in live}]
    assert len(newest) == 1 and newest[0]["LaunchConfigurationName"] == "lc-1"

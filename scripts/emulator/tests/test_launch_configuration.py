"""Auto Scaling groups on a launch configuration (Amazon EC2 Auto Scaling User Guide — "Create an
Auto Scaling group using a launch configuration", "Migrate your Auto Scaling groups to launch
templates"): instances launch from the configuration, are registered in the target groups and are
health-checked like a template group's; DescribeAutoScalingGroups names the configuration; switching
to a launch template replaces nothing; a template carrying a configuration's settings keeps them."""

from __future__ import annotations

import base64
import time

import pytest
from botocore.exceptions import ClientError

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


def _ids(asg, name: str = "lc-web") -> list[str]:
    return sorted(i["InstanceId"] for i in group(asg, name)["Instances"])


@pytest.mark.parametrize("by", ["LaunchTemplateId", "LaunchTemplateName"])
def test_update_to_a_launch_template_replaces_no_instance(fresh, clients, by):
    """"Replace a launch configuration with a launch template": "any new instances are launched
    using the new launch template. Existing instances are not affected.\""""
    ec2, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    _lc_group(asg, seed, seed["base_ami"])
    wait_for(lambda: {i["LifecycleState"] for i in group(asg, "lc-web")["Instances"]} == {"InService"},
             what="InService")
    before = _ids(asg)
    ref = seed["launch_template_id"] if by == "LaunchTemplateId" else "shop-web"
    asg.update_auto_scaling_group(AutoScalingGroupName="lc-web", LaunchTemplate={by: ref, "Version": "1"})
    time.sleep(fresh.aws(120))  # long enough for any replacement to have started
    g = group(asg, "lc-web")
    assert "LaunchConfigurationName" not in g
    assert g["LaunchTemplate"] == {"LaunchTemplateId": seed["launch_template_id"], "LaunchTemplateName": "shop-web",
                                   "Version": "1"}
    assert _ids(asg) == before
    for i in g["Instances"]:  # each instance keeps reporting what it was launched from
        assert i["LifecycleState"] == "InService" and i["LaunchConfigurationName"] == "lc-1"
        assert "LaunchTemplate" not in i
    details = asg.describe_auto_scaling_instances(InstanceIds=before)["AutoScalingInstances"]
    assert {d["LaunchConfigurationName"] for d in details} == {"lc-1"}
    states = ec2.describe_instances(InstanceIds=before)["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"running"}
    # a scale-out launches from the template; a scale-in removes a launch-configuration instance first
    asg.set_desired_capacity(AutoScalingGroupName="lc-web", DesiredCapacity=3)
    (added,) = [i for i in group(asg, "lc-web")["Instances"] if i["InstanceId"] not in before]
    assert added["LaunchTemplate"]["LaunchTemplateName"] == "shop-web" and "LaunchConfigurationName" not in added
    asg.set_desired_capacity(AutoScalingGroupName="lc-web", DesiredCapacity=2)
    leaving = [i for i in group(asg, "lc-web")["Instances"] if i["LifecycleState"] == "Terminating"]
    assert len(leaving) == 1 and leaving[0]["InstanceId"] in before


# The launch configuration's settings as launch template data ("Copy launch configurations to launch
# templates"): image, type, key, security groups, user data, profile, volumes, monitoring, metadata
# options, tenancy, a public IP on the primary interface and a Spot maximum price.
LC_AS_TEMPLATE = {
    "InstanceType": "t3.small", "KeyName": "shop-key",
    "UserData": base64.b64encode(b"#!/bin/bash\necho shop\n").decode(),
    "IamInstanceProfile": {"Name": "shop-profile"},
    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3",
                                                              "DeleteOnTermination": True, "Encrypted": False}}],
    "Monitoring": {"Enabled": True},
    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
    "Placement": {"Tenancy": "dedicated"},
    "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.0104"}},
    "EbsOptimized": True,
}


def test_launch_template_with_launch_configuration_fields_round_trips_and_launches(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    data = dict(LC_AS_TEMPLATE, ImageId=seed["base_ami"], NetworkInterfaces=[
        {"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [seed["security_group_id"]],
         "DeleteOnTermination": True}])
    ec2.create_launch_template(LaunchTemplateName="lc-copy", LaunchTemplateData=data)
    ec2.create_launch_template_version(LaunchTemplateName="lc-copy", SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t3.medium"})
    versions = ec2.describe_launch_template_versions(LaunchTemplateName="lc-copy")["LaunchTemplateVersions"]
    by_number = {v["VersionNumber"]: v["LaunchTemplateData"] for v in versions}
    for key, value in data.items():
        assert by_number[1][key] == value, key
        assert by_number[2][key] == (value if key != "InstanceType" else "t3.medium"), key
    # a group on the copy launches instances with those settings (the subnet comes from the group)
    asg.create_auto_scaling_group(AutoScalingGroupName="lc-copy", MinSize=1, MaxSize=1, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateName": "lc-copy", "Version": "2"},
                                  VPCZoneIdentifier=seed["subnet_ids"][0])
    iid = group(asg, "lc-copy")["Instances"][0]["InstanceId"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert (inst["ImageId"], inst["InstanceType"], inst["KeyName"]) == (seed["base_ami"], "t3.medium", "shop-key")
    assert inst["InstanceLifecycle"] == "spot" and inst["Monitoring"]["State"] == "enabled"
    assert inst["Placement"]["Tenancy"] == "dedicated" and inst["EbsOptimized"] is True
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert {b["DeviceName"] for b in inst["BlockDeviceMappings"]} >= {"/dev/xvda"}


def test_refresh_of_a_launch_configuration_group_onto_itself(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _lc_group(asg, seed, seed["base_ami"])
    old = set(_ids(asg))
    with pytest.raises(ClientError) as err:  # nothing to roll back to: a launch configuration
        asg.start_instance_refresh(AutoScalingGroupName="lc-web", Preferences={"AutoRollback": True},
                                   DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web",
                                                                            "Version": "1"}})
    assert err.value.response["Error"]["Code"] == "ValidationError"
    asg.start_instance_refresh(AutoScalingGroupName="lc-web", Preferences={"MinHealthyPercentage": 50,
                                                                           "InstanceWarmup": 0})
    r = wait_refresh_done(asg, "lc-web")
    assert r["Status"] == "Successful", r
    g = group(asg, "lc-web")
    live = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
    assert len(live) == 2 and not old & {i["InstanceId"] for i in live}
    assert g["LaunchConfigurationName"] == "lc-1" and {i["LaunchConfigurationName"] for i in live} == {"lc-1"}

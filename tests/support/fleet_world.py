"""The group shapes of tests/e2e_fleets.rs, set up and read with an independent client (boto3).

Usage (endpoint and credentials from the environment `scripts/local-aws up` writes):
  fleet_world.py full-configuration GROUP SEED_JSON  -> moves GROUP to a launch configuration `GROUP-full`
                                                        that sets every field a template can carry; prints it
  fleet_world.py adoption GROUP                      -> the group, its instances and its template's version 1
  fleet_world.py fleet GROUP                         -> instances (image, type, lifecycle, protection), the
                                                        mixed instances policy, the warm pool with images
  fleet_world.py standby-and-protect GROUP           -> one instance into Standby (the minimum lowered so the
                                                        capacity can shrink), another protected; prints both
"""

import json
import sys
import time

import boto3

asg = boto3.client("autoscaling")
ec2 = boto3.client("ec2")


def group(name):
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def images(ids):
    out = {}
    if ids:
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = {"image": i["ImageId"], "type": i["InstanceType"], "state": i["State"]["Name"]}
    return out


def full_configuration(name, seed_path):
    seed = json.load(open(seed_path))
    lc = f"{name}-full"
    ec2.create_key_pair(KeyName="shop-ops")
    boto3.client("iam").create_instance_profile(InstanceProfileName="shop-web-profile")
    asg.create_launch_configuration(
        LaunchConfigurationName=lc,
        ImageId=seed["base_ami"],
        InstanceType="t3.micro",
        KeyName="shop-ops",
        SecurityGroups=[seed["security_group_id"]],
        UserData="#!/bin/bash\necho shop\n",
        IamInstanceProfile="shop-web-profile",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 16, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": True}}],
        InstanceMonitoring={"Enabled": False},
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
        PlacementTenancy="default",
        AssociatePublicIpAddress=True,
        EbsOptimized=False,
    )
    asg.update_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=lc)
    print(json.dumps(asg.describe_launch_configurations(LaunchConfigurationNames=[lc])["LaunchConfigurations"][0], default=str))


def adoption(name):
    g = group(name)
    lt = g.get("LaunchTemplate") or {}
    data = None
    if lt:
        v = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["1"])["LaunchTemplateVersions"][0]
        data = {"data": v["LaunchTemplateData"], "description": v.get("VersionDescription"), "name": v["LaunchTemplateName"]}
    print(json.dumps({
        "launch_template": lt,
        "launch_configuration": g.get("LaunchConfigurationName"),
        "instances": sorted(i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] != "Terminating"),
        "template_v1": data,
    }, default=str))


def fleet(name):
    g = group(name)
    members = [i for i in g["Instances"]]
    try:
        pool = asg.describe_warm_pool(AutoScalingGroupName=name)["Instances"]
    except Exception:  # noqa: BLE001 - a group without a pool
        pool = []
    seen = images([i["InstanceId"] for i in members + pool])
    row = lambda i: dict(id=i["InstanceId"], lifecycle=i["LifecycleState"], protected=i.get("ProtectedFromScaleIn", False), **seen.get(i["InstanceId"], {}))
    print(json.dumps({
        "desired": g["DesiredCapacity"],
        "mixed_instances_policy": g.get("MixedInstancesPolicy"),
        "launch_template": g.get("LaunchTemplate"),
        "instances": [row(i) for i in members],
        "warm_pool": [row(i) for i in pool],
    }, default=str))


def standby_and_protect(name):
    asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=1)
    ids = [i["InstanceId"] for i in group(name)["Instances"] if i["LifecycleState"] == "InService"]
    standby, protected = ids[0], ids[1]
    asg.enter_standby(AutoScalingGroupName=name, InstanceIds=[standby], ShouldDecrementDesiredCapacity=True)
    asg.set_instance_protection(AutoScalingGroupName=name, InstanceIds=[protected], ProtectedFromScaleIn=True)
    for _ in range(300):
        states = {i["InstanceId"]: i["LifecycleState"] for i in group(name)["Instances"]}
        if states.get(standby) == "Standby":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"{standby} never reached Standby: {states}")
    print(json.dumps({"standby": standby, "protected": protected}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"full-configuration": full_configuration, "adoption": adoption, "fleet": fleet, "standby-and-protect": standby_and_protect}[command](*args)

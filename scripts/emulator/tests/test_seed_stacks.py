"""`seed --region/--account`: the storefront stack in another region and another account (through its
role bakeroll-deploy), recorded under seed.json's `stacks` while the default keys stay as they were; and
a release baked in the default account, copied to that region, shared, and rejected by the other
account's target group, rolled back there by the instance refresh."""

from __future__ import annotations

import boto3

from emulator import seed as seed_module

from .accounts import OTHER_ACCOUNT, Account
from .conftest import wait_for, wait_refresh_done

REGION = "ap-southeast-1"
DEFAULT_KEYS = {"region", "vpc_id", "subnet_ids", "security_group_id", "launch_template_id", "launch_template_name",
                "base_ami", "target_group_arns", "load_balancer_arn", "asg_name", "alarm_names"}


def _healthy(asg, elbv2, entry: dict) -> bool:
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[entry["asg_name"]])["AutoScalingGroups"][0]["Instances"]
    ids = [m["InstanceId"] for m in members if m["LifecycleState"] == "InService"]
    states = [d["TargetHealth"]["State"] for arn in entry["target_group_arns"]
              for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] if d["Target"]["Id"] in ids]
    return len(ids) == 3 and states == ["healthy"] * 6


def test_seed_builds_the_stack_in_another_region_and_account_and_keeps_the_default_keys(fresh):
    plain = fresh.seed()
    assert set(plain) == DEFAULT_KEYS
    regional = fresh.seed("--region", REGION)
    assert {k: regional[k] for k in DEFAULT_KEYS} == plain
    mine = regional["stacks"][f"123456789012/{REGION}"]
    assert set(mine) == DEFAULT_KEYS | {"account"} and (mine["account"], mine["region"]) == ("123456789012", REGION)
    assert "role_arn" not in mine and mine["vpc_id"] != plain["vpc_id"] and mine["base_ami"] != plain["base_ami"]

    both = fresh.seed("--account", OTHER_ACCOUNT, "--region", REGION)
    assert {k: both[k] for k in DEFAULT_KEYS} == plain
    theirs = both["stacks"][f"{OTHER_ACCOUNT}/{REGION}"]
    assert both["stacks"][f"123456789012/{REGION}"] == mine  # kept from the earlier run
    assert theirs["role_arn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:role/bakeroll-deploy"
    assert theirs["target_group_arns"][0].startswith(f"arn:aws:elasticloadbalancing:{REGION}:{OTHER_ACCOUNT}:")

    other = Account(fresh, theirs["role_arn"])
    ec2, asg, elbv2 = other.client("ec2", REGION), other.client("autoscaling", REGION), other.client("elbv2", REGION)
    assert _healthy(asg, elbv2, theirs)  # seed waited for it
    zones = {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=theirs["subnet_ids"])["Subnets"]}
    assert zones == {f"{REGION}a", f"{REGION}b"}
    assert other.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []  # not in us-east-1
    again = fresh.seed("--account", OTHER_ACCOUNT, "--region", REGION)  # idempotent
    assert again["stacks"] == both["stacks"]


def test_bad_region_or_account_is_refused(fresh, capsys):
    assert seed_module.main(["--region", "xx-nowhere-1"], fresh.endpoint, fresh.dir) == 2
    assert "--region 'xx-nowhere-1'" in capsys.readouterr().err
    assert seed_module.main(["--account", "22"], fresh.endpoint, fresh.dir) == 2


def test_a_release_copied_shared_and_rejected_in_the_other_account_rolls_back_there(fresh):
    seeded = fresh.seed("--account", OTHER_ACCOUNT, "--region", REGION)
    stack = seeded["stacks"][f"{OTHER_ACCOUNT}/{REGION}"]
    owner = fresh.client("ec2")
    owner_remote = boto3.client("ec2", endpoint_url=fresh.endpoint, region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
    build = owner.run_instances(ImageId=seeded["base_ami"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    release = owner.create_image(InstanceId=build, Name="shop-2", TagSpecifications=[{"ResourceType": "image", "Tags": [
        {"Key": "local-aws:health:shop-web", "Value": "unhealthy"}]}])["ImageId"]
    wait_for(lambda: owner.describe_images(ImageIds=[release])["Images"][0]["State"] == "available", what="release")
    copy_id = owner_remote.copy_image(SourceImageId=release, SourceRegion="us-east-1", Name="shop-2",
                                      CopyImageTags=True)["ImageId"]
    wait_for(lambda: owner_remote.describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "available", what="copy")
    owner_remote.modify_image_attribute(ImageId=copy_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})

    other = Account(fresh, stack["role_arn"])
    ec2, asg = other.client("ec2", REGION), other.client("autoscaling", REGION)
    assert ec2.describe_images(ImageIds=[copy_id])["Images"][0].get("Tags", []) == []  # the rule stays the owner's
    version = ec2.create_launch_template_version(LaunchTemplateId=stack["launch_template_id"], SourceVersion="1",
                                                 LaunchTemplateData={"ImageId": copy_id})["LaunchTemplateVersion"]
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": stack["launch_template_id"],
                                                 "Version": str(version["VersionNumber"])}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "InstanceWarmup": 60,
                     "AutoRollback": True})
    done = wait_refresh_done(asg, "shop-web", timeout=120)
    assert done["Status"] == "RollbackSuccessful", done
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])["AutoScalingGroups"][0]["Instances"]
    assert {m["LaunchTemplate"]["Version"] for m in members if m["LifecycleState"] == "InService"} == {"1"}
    # the default account's stack in us-east-1 never saw any of it
    assert fresh.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName="shop-web")["InstanceRefreshes"] == []

"""`scripts/local-aws seed --shape ...`: the launch-configuration, mixed-instances and warm-pool groups
next to the default stack, healthy in both target groups when seed returns, recorded in seed.json;
the default seed stays as it was."""

from __future__ import annotations

import json

from .conftest import group

TIME_SCALE = 0.005
DEFAULT_KEYS = {"region", "vpc_id", "subnet_ids", "security_group_id", "launch_template_id", "launch_template_name",
                "base_ami", "target_group_arns", "load_balancer_arn", "asg_name", "alarm_names"}


def _healthy(elbv2, arns, ids) -> bool:
    for arn in arns:
        health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
        if {d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]} != {"healthy"}:
            return False
    return True


def test_default_seed_is_unchanged(fresh):
    seed = fresh.seed("--no-wait")
    assert set(seed) == DEFAULT_KEYS
    names = [g["AutoScalingGroupName"] for g in fresh.client("autoscaling").describe_auto_scaling_groups()[
        "AutoScalingGroups"]]
    assert names == ["shop-web"]


def test_shapes_are_created_next_to_the_default_stack_and_healthy(fresh):
    asg, elbv2, ec2 = fresh.client("autoscaling"), fresh.client("elbv2"), fresh.client("ec2")
    out = fresh.run("seed", "--shape", "launch-configuration", "--shape", "mixed-instances", "--shape", "warm-pool")
    seed = json.loads(out.stdout)
    assert seed == json.loads((fresh.dir / "seed.json").read_text())
    assert DEFAULT_KEYS < set(seed) and seed["asg_name"] == "shop-web"
    assert {s: v["asg_name"] for s, v in seed["shapes"].items()} == {
        "launch-configuration": "shop-lc", "mixed-instances": "shop-mixed", "warm-pool": "shop-warm"}
    arns = seed["target_group_arns"]
    for name in ("shop-web", "shop-lc", "shop-mixed", "shop-warm"):
        g = group(asg, name)
        ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
        assert len(ids) == (3 if name == "shop-web" else 2), name
        assert sorted(g["TargetGroupARNs"]) == sorted(arns) and _healthy(elbv2, arns, ids), name  # already, at return
    lc = group(asg, "shop-lc")
    assert lc["LaunchConfigurationName"] == "shop-lc" == seed["shapes"]["launch-configuration"]["launch_configuration_name"]
    assert {i["LaunchConfigurationName"] for i in lc["Instances"]} == {"shop-lc"}
    mixed = group(asg, "shop-mixed")
    assert "LaunchTemplate" not in mixed and mixed["MixedInstancesPolicy"]["InstancesDistribution"][
        "OnDemandBaseCapacity"] == 1
    lifecycles = [i.get("InstanceLifecycle", "on-demand") for r in ec2.describe_instances(
        InstanceIds=[i["InstanceId"] for i in mixed["Instances"]])["Reservations"] for i in r["Instances"]]
    assert sorted(lifecycles) == ["on-demand", "spot"]
    pool = asg.describe_warm_pool(AutoScalingGroupName="shop-warm")
    assert [i["LifecycleState"] for i in pool["Instances"]] == ["Warmed:Stopped"] * 2
    assert pool["WarmPoolConfiguration"]["MinSize"] == 1
    # idempotent: a second run finds everything
    again = fresh.run("seed", "--shape", "warm-pool")
    assert "exists  auto scaling grp shop-warm" in again.stderr
    assert [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]].count(
        "shop-warm") == 1

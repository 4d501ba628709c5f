"""`scripts/local-aws seed --shape tiers` (groups shop-canary and shop-worker, each in its own target
group, healthy when seed returns, the default stack unchanged) and the per-target-group health tag
`local-aws:health:<target-group-name>` on an image (Elastic Load Balancing User Guide — "Health checks
for Application Load Balancer target groups", "Listener rules": weighted target groups)."""

from __future__ import annotations

import json
import time

from .conftest import group, make_image

TIME_SCALE = 0.005


def _health(elbv2, arn: str, ids: list[str]) -> list[str]:
    return [d["TargetHealth"]["State"] for d in elbv2.describe_target_health(
        TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])["TargetHealthDescriptions"]]


def test_tiers_are_created_next_to_the_default_stack_and_healthy(fresh):
    asg, elbv2, ec2 = fresh.client("autoscaling"), fresh.client("elbv2"), fresh.client("ec2")
    out = fresh.run("seed", "--shape", "tiers")
    seed = json.loads(out.stdout)
    assert seed == json.loads((fresh.dir / "seed.json").read_text())
    tiers = seed["shapes"]["tiers"]["groups"]
    assert set(tiers) == {"shop-canary", "shop-worker"}
    for name, info in tiers.items():
        assert set(info) >= {"asg_name", "desired_capacity", "launch_template_id", "launch_template_name",
                             "target_group_arns", "load_balancer_arn"}, info
        g = group(asg, name)
        ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
        assert len(ids) == info["desired_capacity"] == {"shop-canary": 1, "shop-worker": 2}[name]
        assert g["TargetGroupARNs"] == info["target_group_arns"] and g["HealthCheckType"] == "ELB"
        assert g["LaunchTemplate"]["LaunchTemplateName"] == name and g["LaunchTemplate"]["Version"] == "1"
        assert set(g["VPCZoneIdentifier"].split(",")) == set(seed["subnet_ids"])
        assert _health(elbv2, info["target_group_arns"][0], ids) == ["healthy"] * len(ids)  # already, at return
        data = ec2.describe_launch_template_versions(LaunchTemplateId=info["launch_template_id"], Versions=["1"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]
        assert data["ImageId"] == seed["base_ami"]  # the same base image as shop-web
        (tg,) = elbv2.describe_target_groups(TargetGroupArns=info["target_group_arns"])["TargetGroups"]
        assert tg["TargetGroupName"] == name and tg["LoadBalancerArns"] == [info["load_balancer_arn"]]
    assert tiers["shop-canary"]["load_balancer_arn"] == seed["load_balancer_arn"]  # shop-alb
    (worker_lb,) = elbv2.describe_load_balancers(LoadBalancerArns=[tiers["shop-worker"]["load_balancer_arn"]])[
        "LoadBalancers"]
    assert worker_lb["Scheme"] == "internal" and worker_lb["Type"] == "application"
    # the canary is served by a weighted rule next to shop-web; the listener's default action is untouched
    (port80,) = [li for li in elbv2.describe_listeners(LoadBalancerArn=seed["load_balancer_arn"])["Listeners"]
                 if li["Port"] == 80]
    assert port80["DefaultActions"][0]["TargetGroupArn"] == seed["target_group_arns"][0]
    (rule,) = elbv2.describe_rules(RuleArns=[tiers["shop-canary"]["listener_rule_arn"]])["Rules"]
    weights = {t["TargetGroupArn"]: t["Weight"] for t in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {seed["target_group_arns"][0]: 90, tiers["shop-canary"]["target_group_arns"][0]: 10}
    # the default stack is as the default seed makes it
    web = group(asg, "shop-web")
    web_ids = [i["InstanceId"] for i in web["Instances"]]
    assert len(web_ids) == 3 and sorted(web["TargetGroupARNs"]) == sorted(seed["target_group_arns"])
    for arn in seed["target_group_arns"]:
        assert _health(elbv2, arn, web_ids) == ["healthy"] * 3
        assert elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]["LoadBalancerArns"] == [
            seed["load_balancer_arn"]]  # once, although a listener and a rule both forward to shop-web
    # idempotent
    again = json.loads(fresh.run("seed", "--shape", "tiers").stdout)
    assert again["shapes"] == seed["shapes"]
    assert [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]].count(
        "shop-worker") == 1


def _settled(fresh, elbv2, arns: dict[str, str], iid: str, limit_aws: float = 200) -> dict[str, str]:
    """The state of `iid` in each target group once none is `initial` any more."""
    end = time.monotonic() + fresh.aws(limit_aws)
    while True:
        states = {name: _health(elbv2, arn, [iid])[0] for name, arn in arns.items()}
        if "initial" not in states.values() or time.monotonic() > end:
            return states
        time.sleep(0.005)


def test_a_health_tag_for_one_target_group_breaks_the_image_there_only(fresh):
    ec2, elbv2 = fresh.client("ec2"), fresh.client("elbv2")
    seed = fresh.seed("--shape", "tiers")
    tiers = seed["shapes"]["tiers"]["groups"]
    arns = {"shop-worker": tiers["shop-worker"]["target_group_arns"][0],
            "shop-canary": tiers["shop-canary"]["target_group_arns"][0], "shop-web": seed["target_group_arns"][0]}
    # on the AMI from its creation, as `bakeroll ship --tag local-aws:health:shop-worker=unhealthy` bakes it
    inst = ec2.run_instances(ImageId=seed["base_ami"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=inst, Name="rejected-by-worker", TagSpecifications=[{
        "ResourceType": "image", "Tags": [{"Key": "local-aws:health:shop-worker", "Value": "unhealthy"}]}])["ImageId"]
    other = make_image(ec2, seed["base_ami"], "fine-everywhere")
    for ami in (image, other):
        iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=seed["subnet_ids"][0])["Instances"][0][
            "InstanceId"]
        for arn in arns.values():
            elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
        states = _settled(fresh, elbv2, arns, iid)
        if ami == image:
            assert states == {"shop-worker": "unhealthy", "shop-canary": "healthy", "shop-web": "healthy"}, states
        else:
            assert states == {"shop-worker": "healthy", "shop-canary": "healthy", "shop-web": "healthy"}, states
    # the plain tag still breaks the image in every target group
    broken = make_image(ec2, seed["base_ami"], "broken-everywhere", unhealthy=True)
    iid = ec2.run_instances(ImageId=broken, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for arn in arns.values():
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    assert set(_settled(fresh, elbv2, arns, iid).values()) == {"unhealthy"}

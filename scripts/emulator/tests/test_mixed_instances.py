"""Auto Scaling groups with a MixedInstancesPolicy (Amazon EC2 Auto Scaling User Guide — "Auto Scaling
groups with multiple instance types and purchase options", "Use multiple launch templates", "Use an
instance refresh with skip matching"; API Reference — "MixedInstancesPolicy", "DesiredConfiguration",
"RefreshPreferences" AutoRollback): what is launched and reported, UpdateAutoScalingGroup keeping the
policy, and instance refreshes to a new policy (applied on success, rolled back, skip matching per
override)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.004


def _policy(version: str = "1", overrides=None, base: int = 0, pct: int = 100, template: str = "shop-web") -> dict:
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": template, "Version": version},
            "Overrides": overrides or [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}],
        },
        "InstancesDistribution": {"OnDemandBaseCapacity": base, "OnDemandPercentageAboveBaseCapacity": pct,
                                  "SpotAllocationStrategy": "price-capacity-optimized"},
    }


def _mixed_group(asg, seed, policy: dict, desired: int = 2, name: str = "mixed") -> None:
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, MixedInstancesPolicy=policy, MinSize=desired, MaxSize=desired + 3,
        DesiredCapacity=desired, VPCZoneIdentifier=",".join(seed["subnet_ids"]),
        TargetGroupARNs=seed["target_group_arns"], HealthCheckType="ELB", HealthCheckGracePeriod=60,
        DefaultInstanceWarmup=0)


def _alt_template(ec2, seed, image_id: str) -> str:
    return ec2.create_launch_template(LaunchTemplateName="shop-alt", LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.small", "SecurityGroupIds": [seed["security_group_id"]]})[
        "LaunchTemplate"]["LaunchTemplateId"]


def _described(ec2, ids) -> dict:
    return {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
            for i in r["Instances"]}


def _live(asg, name: str = "mixed") -> list[dict]:
    return [i for i in group(asg, name)["Instances"] if i["LifecycleState"] in ("Pending", "InService")]


def test_policy_launches_its_overrides_and_distribution(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    alt_image = make_image(ec2, seed["base_ami"], "shop-alt")
    alt_id = _alt_template(ec2, seed, alt_image)
    overrides = [{"InstanceType": "t3.micro"},
                 {"InstanceType": "t3.small", "LaunchTemplateSpecification": {"LaunchTemplateId": alt_id, "Version": "1"}}]
    _mixed_group(asg, seed, _policy(overrides=overrides, base=1, pct=50), desired=5)
    g = group(asg, "mixed")
    assert "LaunchTemplate" not in g and "LaunchConfigurationName" not in g
    assert g["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][1]["LaunchTemplateSpecification"][
        "LaunchTemplateId"] == alt_id
    assert g["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandBaseCapacity"] == 1
    described = _described(ec2, [i["InstanceId"] for i in g["Instances"]])
    spot = [i for i in g["Instances"] if described[i["InstanceId"]].get("InstanceLifecycle") == "spot"]
    on_demand = [i for i in g["Instances"] if i not in spot]
    # base 1, then 50 % of the other 4 (rounded up in favour of On-Demand): 3 On-Demand, 2 Spot
    assert len(on_demand) == 3 and len(spot) == 2
    assert {i["InstanceType"] for i in on_demand} == {"t3.micro"}  # prioritized: the first override
    assert sorted(i["InstanceType"] for i in spot) == ["t3.micro", "t3.small"]  # Spot spread over the pools
    for i in g["Instances"]:
        inst = described[i["InstanceId"]]
        assert inst["InstanceType"] == i["InstanceType"]
        if i["InstanceType"] == "t3.small":  # the override's own template
            assert i["LaunchTemplate"] == {"LaunchTemplateId": alt_id, "LaunchTemplateName": "shop-alt",
                                           "Version": "1"}
            assert inst["ImageId"] == alt_image
        else:
            assert i["LaunchTemplate"] == {"LaunchTemplateId": seed["launch_template_id"],
                                           "LaunchTemplateName": "shop-web", "Version": "1"}
            assert inst["ImageId"] == seed["base_ami"]


def test_update_without_the_policy_keeps_it(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    # the first override is not the template's own type (t3.micro): instances show where they came from
    _mixed_group(asg, seed, _policy(overrides=[{"InstanceType": "t3.small"}, {"InstanceType": "t3a.micro"}]))
    asg.update_auto_scaling_group(AutoScalingGroupName="mixed", MaxSize=9, DesiredCapacity=4)
    g = group(asg, "mixed")
    assert g["MaxSize"] == 9 and len(g["Instances"]) == 4
    assert {i["InstanceType"] for i in g["Instances"]} == {"t3.small"}  # all On-Demand: the first override
    assert [o["InstanceType"] for o in g["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == [
        "t3.small", "t3a.micro"]
    asg.update_auto_scaling_group(AutoScalingGroupName="mixed", MixedInstancesPolicy={
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 0}})
    policy = group(asg, "mixed")["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] == "shop-web"
    before = {i["InstanceId"] for i in g["Instances"]}
    asg.set_desired_capacity(AutoScalingGroupName="mixed", DesiredCapacity=5)
    (added,) = [i["InstanceId"] for i in _live(asg) if i["InstanceId"] not in before]
    assert _described(ec2, [added])[added]["InstanceLifecycle"] == "spot"  # 0 % On-Demand above the base now
    # a launch template replaces the policy
    asg.update_auto_scaling_group(AutoScalingGroupName="mixed", LaunchTemplate={"LaunchTemplateName": "shop-web",
                                                                                "Version": "1"})
    g = group(asg, "mixed")
    assert "MixedInstancesPolicy" not in g and g["LaunchTemplate"]["LaunchTemplateName"] == "shop-web"


def test_refresh_to_a_new_policy_applies_it_only_on_success(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _mixed_group(asg, seed, _policy())
    old = {i["InstanceId"] for i in group(asg, "mixed")["Instances"]}
    image = make_image(ec2, seed["base_ami"], "shop-v2")
    version = new_version(ec2, image)
    desired = _policy(version=version, overrides=[{"InstanceType": "t3.small"}, {"InstanceType": "t3.micro"}])
    asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration={"MixedInstancesPolicy": desired},
                               Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0})
    wait_for(lambda: refresh_status(asg, "mixed")["Status"] == "InProgress", what="InProgress")
    policy = group(asg, "mixed")["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "1"  # not yet applied
    r = wait_refresh_done(asg, "mixed")
    assert r["Status"] == "Successful", r
    assert r["DesiredConfiguration"]["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][0]["InstanceType"] == "t3.small"
    g = group(asg, "mixed")
    assert g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == version
    assert [o["InstanceType"] for o in g["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == [
        "t3.small", "t3.micro"]
    live = _live(asg)
    assert len(live) == 2 and not old & {i["InstanceId"] for i in live}
    assert {i["InstanceType"] for i in live} == {"t3.small"} and {i["LaunchTemplate"]["Version"] for i in live} == {version}
    assert {i["ImageId"] for i in _described(ec2, [i["InstanceId"] for i in live]).values()} == {image}


def test_skip_matching_compares_each_override(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    # all Spot, spread: one t3.micro and one t3a.micro
    _mixed_group(asg, seed, _policy(pct=0))
    by_type = {i["InstanceType"]: i["InstanceId"] for i in group(asg, "mixed")["Instances"]}
    assert set(by_type) == {"t3.micro", "t3a.micro"}
    # the desired policy drops t3a.micro: only that instance does not match
    desired = _policy(pct=0, overrides=[{"InstanceType": "t3.micro"}, {"InstanceType": "t3.small"}])
    asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration={"MixedInstancesPolicy": desired},
                               Preferences={"SkipMatching": True, "MinHealthyPercentage": 50, "InstanceWarmup": 0})
    r = wait_refresh_done(asg, "mixed")
    assert r["Status"] == "Successful", r
    live = {i["InstanceId"]: i for i in _live(asg)}
    assert by_type["t3.micro"] in live and by_type["t3a.micro"] not in live
    assert {i["InstanceType"] for i in live.values()} <= {"t3.micro", "t3.small"}
    # an override naming its own template: instances of that type match only with that template
    alt_id = _alt_template(ec2, seed, seed["base_ami"])
    desired = _policy(pct=0, overrides=[
        {"InstanceType": "t3.micro", "LaunchTemplateSpecification": {"LaunchTemplateId": alt_id, "Version": "1"}},
        {"InstanceType": "t3.small"}])
    matching = {i for i, s in live.items() if s["InstanceType"] == "t3.small"}
    asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration={"MixedInstancesPolicy": desired},
                               Preferences={"SkipMatching": True, "MinHealthyPercentage": 50, "InstanceWarmup": 0})
    r = wait_refresh_done(asg, "mixed")
    assert r["Status"] == "Successful", r
    now = {i["InstanceId"]: i for i in _live(asg)}
    assert by_type["t3.micro"] not in now and matching <= set(now)
    for i in now.values():
        if i["InstanceType"] == "t3.micro":
            assert i["LaunchTemplate"]["LaunchTemplateId"] == alt_id


def test_auto_rollback_restores_the_previous_policy(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _mixed_group(asg, seed, _policy())
    wait_for(lambda: len([i for i in group(asg, "mixed")["Instances"] if i["LifecycleState"] == "InService"]) == 2,
             what="InService")
    bad = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-bad", unhealthy=True))
    desired = {"MixedInstancesPolicy": _policy(version=bad, overrides=[{"InstanceType": "t3.small"}])}
    asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration=desired,
                               Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200,
                                            "AutoRollback": True, "InstanceWarmup": 0})
    seen = set()
    while (r := refresh_status(asg, "mixed"))["Status"] not in ("RollbackSuccessful", "RollbackFailed", "Failed",
                                                                  "Successful", "Cancelled"):
        seen.add(r["Status"])
    assert r["Status"] == "RollbackSuccessful" and "RollbackInProgress" in seen, r
    g = group(asg, "mixed")
    assert g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "1"
    live = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
    assert len(live) == 2 and {i["InstanceType"] for i in live} <= {"t3.micro", "t3a.micro"}
    assert {i["LaunchTemplate"]["Version"] for i in live} == {"1"}


def test_auto_rollback_needs_numbered_versions_in_the_groups_policy(fresh, clients):
    _, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _mixed_group(asg, seed, _policy(version="$Latest"))
    desired = {"MixedInstancesPolicy": _policy(version="1")}
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration=desired,
                                   Preferences={"AutoRollback": True})
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "$Latest" in err.value.response["Error"]["Message"]
    asg.start_instance_refresh(AutoScalingGroupName="mixed", DesiredConfiguration=desired)
    with pytest.raises(ClientError) as err:
        asg.rollback_instance_refresh(AutoScalingGroupName="mixed")
    assert err.value.response["Error"]["Code"] == "IrreversibleInstanceRefresh"

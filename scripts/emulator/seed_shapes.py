"""`scripts/local-aws seed --shape NAME`: the other Auto Scaling group shapes teams run, next to the
default storefront stack (which seed.py creates first and leaves as it is). Each shape is one group
of 2 instances (min 2, max 4) in both shop-web target groups, HealthCheckType ELB, grace 60 s,
DefaultInstanceWarmup 60 s, tag app=shop, healthy when seed returns:

* launch-configuration — group shop-lc on launch configuration shop-lc (the seed's image, t3.micro,
  the shop-web security group);
* mixed-instances — group shop-mixed with a MixedInstancesPolicy: launch template shop-web version
  "1", overrides t3.micro and t3a.micro, OnDemandBaseCapacity 1, OnDemandPercentageAboveBaseCapacity
  0, SpotAllocationStrategy price-capacity-optimized (one On-Demand t3.micro and one Spot instance);
* warm-pool — group shop-warm on launch template shop-web version "1" with a warm pool (PoolState
  Stopped, MinSize 1; MaxSize 4 − desired 2 = 2 instances Warmed:Stopped).

`tiers` (groups shop-canary and shop-worker, each in its own target group) is seed_tiers.py's.
"""

from __future__ import annotations

from . import seed_tiers

SHAPES = ("launch-configuration", "mixed-instances", "warm-pool", "tiers")
GROUP_SIZE = 2
WARM_POOL = {"MinSize": 1, "PoolState": "Stopped"}
MIXED_POLICY = {
    "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": "shop-web", "Version": "1"},
                       "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}]},
    "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0,
                              "SpotAllocationStrategy": "price-capacity-optimized"},
}
NAMES = {"launch-configuration": "shop-lc", "mixed-instances": "shop-mixed", "warm-pool": "shop-warm"}


def _group_args(name: str, base: dict) -> dict:
    return dict(AutoScalingGroupName=name, MinSize=GROUP_SIZE, MaxSize=4, DesiredCapacity=GROUP_SIZE,
                VPCZoneIdentifier=",".join(base["subnet_ids"]), TargetGroupARNs=base["target_group_arns"],
                HealthCheckType="ELB", HealthCheckGracePeriod=60, DefaultInstanceWarmup=60,
                Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}])


def create(clients: dict, shape: str, base: dict, note) -> dict:
    """Create (or find) the shape's group; what seed.json records about it."""
    if shape == "tiers":
        return seed_tiers.create(clients, base, note)
    asg = clients["autoscaling"]
    name = NAMES[shape]
    exists = bool(asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"])
    info = {"asg_name": name, "desired_capacity": GROUP_SIZE}
    if shape == "launch-configuration":
        info["launch_configuration_name"] = name
        if not asg.describe_launch_configurations(LaunchConfigurationNames=[name])["LaunchConfigurations"]:
            asg.create_launch_configuration(LaunchConfigurationName=name, ImageId=base["base_ami"],
                                            InstanceType="t3.micro", SecurityGroups=[base["security_group_id"]])
        if not exists:
            asg.create_auto_scaling_group(LaunchConfigurationName=name, **_group_args(name, base))
    elif shape == "mixed-instances":
        info["instance_types"] = [o["InstanceType"] for o in MIXED_POLICY["LaunchTemplate"]["Overrides"]]
        if not exists:
            asg.create_auto_scaling_group(MixedInstancesPolicy=MIXED_POLICY, **_group_args(name, base))
    else:
        info["warm_pool"] = dict(WARM_POOL, Size=4 - GROUP_SIZE)
        if not exists:
            asg.create_auto_scaling_group(LaunchTemplate={"LaunchTemplateName": "shop-web", "Version": "1"},
                                          **_group_args(name, base))
            asg.put_warm_pool(AutoScalingGroupName=name, **WARM_POOL)
    note("auto scaling grp", f"{name} ({shape})", not exists)
    return info


def ready(asg, elbv2, info: dict, target_group_arns: list[str]) -> bool:
    """The shape's instances InService and healthy in every target group (and its warm pool warmed)."""
    if "groups" in info:
        return seed_tiers.ready(asg, elbv2, info)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[info["asg_name"]])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    if len(ids) < info["desired_capacity"]:
        return False
    for arn in target_group_arns:
        health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
        if any(d["TargetHealth"]["State"] != "healthy" for d in health["TargetHealthDescriptions"]):
            return False
    if "warm_pool" in info:
        pool = asg.describe_warm_pool(AutoScalingGroupName=info["asg_name"])["Instances"]
        return len(pool) == info["warm_pool"]["Size"] and {i["LifecycleState"] for i in pool} == {"Warmed:Stopped"}
    return True

"""`scripts/local-aws seed --shape tiers`: the groups a release rolls out to in waves, next to the
default storefront stack (which seed.py creates first), in the same VPC and subnets:

* shop-canary — 1 instance (min 1, max 2) on its own launch template shop-canary (the seed's base
  image, t3.micro, security group shop-web, instance tag app=shop) in its own target group shop-canary,
  served by shop-alb: a rule on the port-80 listener forwards to shop-web and shop-canary with weights
  90/10, as canaries are set up on AWS ("weighted target groups" in a forward action);
* shop-worker — 2 instances (min 2, max 4) on launch template shop-worker (same settings) in target
  group shop-worker behind its own internal Application Load Balancer shop-worker-alb (HTTP:80).

Both groups: both subnets, HealthCheckType ELB, grace 60 s, DefaultInstanceWarmup 60 s, tag app=shop
propagated; target groups HTTP:80, /health, interval 10 s, healthy 3, unhealthy 2 (as shop-web).
Healthy in their target groups when seed returns. Idempotent: what exists is found, not made again.
"""

from __future__ import annotations

RULE_PRIORITY = 10  # the canary's weighted rule on shop-alb's port-80 listener
CANARY_WEIGHTS = (90, 10)  # shop-web, shop-canary
WORKER_ALB = "shop-worker-alb"
TIERS = (("shop-canary", 1, 2), ("shop-worker", 2, 4))  # name, desired (= min), max


def _template(ec2, name: str, base: dict, note) -> str:
    found = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
        "LaunchTemplates"]
    note("launch template", name, not found)
    if found:
        return found[0]["LaunchTemplateId"]
    return ec2.create_launch_template(LaunchTemplateName=name, VersionDescription="seed: base image", LaunchTemplateData={
        "ImageId": base["base_ami"], "InstanceType": "t3.micro", "SecurityGroupIds": [base["security_group_id"]],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "shop"}]}]},
    )["LaunchTemplate"]["LaunchTemplateId"]


def _target_group(elbv2, name: str, vpc_id: str, note) -> str:
    existing = [tg for tg in elbv2.describe_target_groups()["TargetGroups"] if tg["TargetGroupName"] == name]
    note("target group", name, not existing)
    if existing:
        return existing[0]["TargetGroupArn"]
    return elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType="instance", HealthCheckProtocol="HTTP",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=5,
        HealthyThresholdCount=3, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]


def _serve_canary(elbv2, base: dict, canary_arn: str, note) -> str:
    """The weighted rule on shop-alb's port-80 listener (its default action stays as seed made it)."""
    listener = next(li for li in elbv2.describe_listeners(LoadBalancerArn=base["load_balancer_arn"])["Listeners"]
                    if li["Port"] == 80)
    for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
        if rule.get("Priority") == str(RULE_PRIORITY):
            note("listener rule", f"shop-alb:80 #{RULE_PRIORITY}", False)
            return rule["RuleArn"]
    note("listener rule", f"shop-alb:80 #{RULE_PRIORITY} → shop-web {CANARY_WEIGHTS[0]} / shop-canary "
                          f"{CANARY_WEIGHTS[1]}", True)
    web_arn = base["target_group_arns"][0]
    return elbv2.create_rule(
        ListenerArn=listener["ListenerArn"], Priority=RULE_PRIORITY,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": web_arn, "Weight": CANARY_WEIGHTS[0]},
            {"TargetGroupArn": canary_arn, "Weight": CANARY_WEIGHTS[1]}]}}],
    )["Rules"][0]["RuleArn"]


def _serve_worker(elbv2, base: dict, worker_arn: str, note) -> str:
    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == WORKER_ALB]
    note("load balancer", f"{WORKER_ALB} (internal)", not lbs)
    if lbs:
        return lbs[0]["LoadBalancerArn"]
    arn = elbv2.create_load_balancer(Name=WORKER_ALB, Subnets=base["subnet_ids"], SecurityGroups=[base["security_group_id"]],
                                     Scheme="internal", Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": worker_arn}])
    return arn


def create(clients: dict, base: dict, note) -> dict:
    """Create (or find) both tiers; what seed.json records under shapes.tiers."""
    ec2, elbv2, asg = clients["ec2"], clients["elbv2"], clients["autoscaling"]
    groups = {}
    for name, desired, max_size in TIERS:
        template_id = _template(ec2, name, base, note)
        tg_arn = _target_group(elbv2, name, base["vpc_id"], note)
        if name == "shop-canary":
            lb_arn = base["load_balancer_arn"]
            served = {"listener_rule_arn": _serve_canary(elbv2, base, tg_arn, note)}
        else:
            lb_arn = _serve_worker(elbv2, base, tg_arn, note)
            served = {}
        exists = bool(asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"])
        if not exists:
            asg.create_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=desired, MaxSize=max_size, DesiredCapacity=desired,
                LaunchTemplate={"LaunchTemplateName": name, "Version": "1"},
                VPCZoneIdentifier=",".join(base["subnet_ids"]), TargetGroupARNs=[tg_arn], HealthCheckType="ELB",
                HealthCheckGracePeriod=60, DefaultInstanceWarmup=60,
                Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}])
        note("auto scaling grp", f"{name} (tiers)", not exists)
        groups[name] = {"asg_name": name, "desired_capacity": desired, "launch_template_id": template_id,
                        "launch_template_name": name, "target_group_arns": [tg_arn], "load_balancer_arn": lb_arn,
                        **served}
    return {"groups": groups}


def ready(asg, elbv2, info: dict) -> bool:
    """Every tier's instances InService and healthy in its target group."""
    for group in info["groups"].values():
        found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group["asg_name"]])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in found["Instances"] if i["LifecycleState"] == "InService"]
        if len(ids) < group["desired_capacity"]:
            return False
        for arn in group["target_group_arns"]:
            health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
            if any(d["TargetHealth"]["State"] != "healthy" for d in health["TargetHealthDescriptions"]):
                return False
    return True

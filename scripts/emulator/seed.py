"""`scripts/local-aws seed`: the storefront demo stack, one region, two AZs, a web tier behind an
Application Load Balancer. Idempotent: a second run finds and reports what exists.

Creates (us-east-1): VPC shop-vpc with an internet gateway and subnets shop-a (us-east-1a) and
shop-b (us-east-1b); security group shop-web; launch template shop-web version 1 (newest
`al2023-ami-*-x86_64` owned by amazon, t3.micro, the security group, instance tag app=shop); ALB
shop-alb; target groups shop-web (HTTP:80, /health, interval 10 s, healthy 3, unhealthy 2) and
shop-web-admin (HTTP:8080, interval 10 s, healthy 2); listeners HTTP:80 → shop-web and
HTTP:8080 → shop-web-admin (AWS reports the targets of a target group that no load balancer uses
as `unused`, so the admin group needs a listener too); ASG shop-web (min 3, max 6, desired 3, both
subnets, both target groups, HealthCheckType ELB, grace 60 s, DefaultInstanceWarmup 60 s, launch
template version "1" or --version-ref); CloudWatch alarm shop-web-5xx (HTTPCode_ELB_5XX_Count of
shop-alb, Sum over 60 s > 10, state OK). Then waits until the 3 instances are healthy in both target
groups and writes seed.json. `--shape` adds other group shapes next to it (seed_shapes.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import seed_shapes

NAME = "shop-web"
ALARM = "shop-web-5xx"
WAIT_LIMIT = 900.0  # real seconds; the scaled wait is ~45 AWS seconds


def _tag(key: str, value: str) -> dict:
    return {"Key": key, "Value": value}


def _find_by_name(items: list, name: str) -> dict | None:
    for item in items:
        if any(t["Key"] == "Name" and t["Value"] == name for t in item.get("Tags", [])):
            return item
    return None


def main(argv: list[str], endpoint: str, state_dir: Path) -> int:
    import boto3
    from botocore.exceptions import ClientError

    parser = argparse.ArgumentParser(prog="scripts/local-aws seed")
    parser.add_argument("--version-ref", default="1", help='ASG launch template version: "1" (default), "$Latest", "$Default"')
    parser.add_argument("--no-wait", action="store_true", help="do not wait for healthy targets")
    parser.add_argument("--shape", action="append", default=[], choices=seed_shapes.SHAPES,
                        help="also create this group shape next to shop-web (repeatable): shop-lc, shop-mixed, "
                             "shop-warm, or the tiers shop-canary and shop-worker")
    args = parser.parse_args(argv)
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2, elbv2, asg = boto3.client("ec2", **kw), boto3.client("elbv2", **kw), boto3.client("autoscaling", **kw)
    cloudwatch = boto3.client("cloudwatch", **kw)
    made: list[str] = []

    def note(kind: str, ident: str, created: bool) -> None:
        made.append(f"  {'created' if created else 'exists '} {kind:<16} {ident}")

    vpc = _find_by_name(ec2.describe_vpcs()["Vpcs"], "shop-vpc")
    if vpc is None:
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [_tag("Name", "shop-vpc")]}])["Vpc"]
        igw = ec2.create_internet_gateway(TagSpecifications=[
            {"ResourceType": "internet-gateway", "Tags": [_tag("Name", "shop-igw")]}])["InternetGateway"]
        ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc["VpcId"])
        note("vpc", vpc["VpcId"], True)
    else:
        note("vpc", vpc["VpcId"], False)
    vpc_id = vpc["VpcId"]

    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    subnet_ids = []
    for name, az, cidr in (("shop-a", "us-east-1a", "10.20.1.0/24"), ("shop-b", "us-east-1b", "10.20.2.0/24")):
        sn = _find_by_name(subnets, name)
        created = sn is None
        if created:
            sn = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=az, TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [_tag("Name", name)]}])["Subnet"]
        subnet_ids.append(sn["SubnetId"])
        note(f"subnet {az}", sn["SubnetId"], created)

    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                {"Name": "group-name", "Values": [NAME]}])["SecurityGroups"]
    if sgs:
        sg_id = sgs[0]["GroupId"]
        note("security group", sg_id, False)
    else:
        sg_id = ec2.create_security_group(GroupName=NAME, Description="shop web tier", VpcId=vpc_id)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for p in (80, 8080)])
        note("security group", sg_id, True)

    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    if not images:
        print("local-aws seed: no al2023-ami-*-x86_64 image owned by amazon in the catalogue", file=sys.stderr)
        return 1
    # "Newest wins" as bakeroll resolves a filter; moto gives every catalogue AMI the same CreationDate,
    # so ties break on the name (later release names sort higher), then the id, for a reproducible pick.
    base_ami = max(images, key=lambda i: (i.get("CreationDate", ""), i.get("Name", ""), i["ImageId"]))["ImageId"]

    try:
        lt = ec2.describe_launch_templates(LaunchTemplateNames=[NAME])["LaunchTemplates"][0]
        note("launch template", lt["LaunchTemplateId"], False)
        base_ami = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["1"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"]
    except ClientError:
        lt = ec2.create_launch_template(LaunchTemplateName=NAME, VersionDescription="seed: base image", LaunchTemplateData={
            "ImageId": base_ami, "InstanceType": "t3.micro", "SecurityGroupIds": [sg_id],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [_tag("app", "shop")]}]})["LaunchTemplate"]
        note("launch template", lt["LaunchTemplateId"], True)

    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == "shop-alb"]
    if lbs:
        lb_arn = lbs[0]["LoadBalancerArn"]
        note("load balancer", "shop-alb", False)
    else:
        lb_arn = elbv2.create_load_balancer(Name="shop-alb", Subnets=subnet_ids, SecurityGroups=[sg_id],
                                           Scheme="internet-facing", Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        note("load balancer", "shop-alb", True)

    existing_tgs = {tg["TargetGroupName"]: tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]}
    tg_arns = []
    for name, port, healthy, unhealthy in ((NAME, 80, 3, 2), (f"{NAME}-admin", 8080, 2, 2)):
        arn = existing_tgs.get(name)
        if arn is None:
            arn = elbv2.create_target_group(
                Name=name, Protocol="HTTP", Port=port, VpcId=vpc_id, TargetType="instance",
                HealthCheckProtocol="HTTP", HealthCheckPath="/health", HealthCheckIntervalSeconds=10,
                HealthCheckTimeoutSeconds=5, HealthyThresholdCount=healthy, UnhealthyThresholdCount=unhealthy,
            )["TargetGroups"][0]["TargetGroupArn"]
            elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
            note("target group", name, True)
        else:
            note("target group", name, False)
        tg_arns.append(arn)

    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])["AutoScalingGroups"]
    if groups:
        note("auto scaling grp", NAME, False)
    else:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=NAME, MinSize=3, MaxSize=6, DesiredCapacity=3,
            LaunchTemplate={"LaunchTemplateName": NAME, "Version": args.version_ref},
            VPCZoneIdentifier=",".join(subnet_ids), TargetGroupARNs=tg_arns, HealthCheckType="ELB",
            HealthCheckGracePeriod=60, DefaultInstanceWarmup=60,
            Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}],
        )
        note("auto scaling grp", f"{NAME} (version {args.version_ref})", True)

    # The ALB's 5xx alarm an instance refresh can watch (AlarmSpecification). The dimension value is the
    # part of the load balancer ARN after "loadbalancer/" (CloudWatch metrics for Application Load Balancers).
    if cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]:
        note("alarm", ALARM, False)
    else:
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM, AlarmDescription="shop-alb answers 5xx", Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_ELB_5XX_Count", Dimensions=[{"Name": "LoadBalancer", "Value": lb_arn.split(":loadbalancer/", 1)[1]}],
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching")
        note("alarm", ALARM, True)

    seed = {
        "region": "us-east-1", "vpc_id": vpc_id, "subnet_ids": subnet_ids, "security_group_id": sg_id,
        "launch_template_id": lt["LaunchTemplateId"], "launch_template_name": NAME, "base_ami": base_ami,
        "target_group_arns": tg_arns, "load_balancer_arn": lb_arn, "asg_name": NAME, "alarm_names": [ALARM],
    }
    clients = {"ec2": ec2, "elbv2": elbv2, "autoscaling": asg}
    shapes = {shape: seed_shapes.create(clients, shape, seed, note) for shape in dict.fromkeys(args.shape)}
    if shapes:  # only then: the default seed.json stays exactly as it was
        seed["shapes"] = shapes
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "seed.json").write_text(json.dumps(seed, indent=2) + "\n")
    print("local-aws seed (us-east-1):", file=sys.stderr)
    print("\n".join(made), file=sys.stderr)

    if not args.no_wait:
        t0 = time.monotonic()
        while True:
            ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])
                   ["AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"]
            states = [elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
                      ["TargetHealthDescriptions"] if ids else [] for arn in tg_arns]
            if len(ids) >= 3 and all(d["TargetHealth"]["State"] == "healthy" for s in states for d in s):
                break
            if time.monotonic() - t0 > WAIT_LIMIT:
                print("local-aws seed: instances did not become healthy in time", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"  3 instances healthy in both target groups after {time.monotonic() - t0:.2f} s: {', '.join(ids)}",
              file=sys.stderr)
        for shape, info in shapes.items():
            while not seed_shapes.ready(asg, elbv2, info, tg_arns):
                if time.monotonic() - t0 > WAIT_LIMIT:
                    print(f"local-aws seed: the {shape} shape did not become healthy in time", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            names = ", ".join(info["groups"]) if "groups" in info else info["asg_name"]
            print(f"  {names} ({shape}) healthy after {time.monotonic() - t0:.2f} s", file=sys.stderr)
    print(f"  wrote {state_dir / 'seed.json'}", file=sys.stderr)
    json.dump(seed, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0

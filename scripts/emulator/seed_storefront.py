"""The storefront demo stack in one region of one account, given clients for them: VPC shop-vpc with
an internet gateway, subnets shop-a and shop-b in the region's first two Availability Zones, security
group shop-web, launch template shop-web version 1 (newest `al2023-ami-*-x86_64` owned by amazon in
the region's catalogue), ALB shop-alb, target groups shop-web and shop-web-admin behind listeners
HTTP:80 and HTTP:8080, Auto Scaling group shop-web (min 3, max 6, desired 3, ELB health checks, grace
60 s, DefaultInstanceWarmup 60 s) and alarm shop-web-5xx. Idempotent: a second run finds and reports
what exists. seed.py builds it in us-east-1 of the default account (the seed contract in the README),
seed_stacks.py in other regions and accounts.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

NAME = "shop-web"
ALARM = "shop-web-5xx"
SIZE = 3


class SeedError(Exception):
    """The stack cannot be built (told to the user, exit code 1)."""


def _tag(key: str, value: str) -> dict:
    return {"Key": key, "Value": value}


def _find_by_name(items: list, name: str) -> dict | None:
    for item in items:
        if any(t["Key"] == "Name" and t["Value"] == name for t in item.get("Tags", [])):
            return item
    return None


def zones(ec2) -> list[str]:
    """The region's first two Availability Zones (shop-a, shop-b)."""
    names = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])
    if len(names) < 2:
        raise SeedError("the region has fewer than two Availability Zones")
    return names[:2]


def build(clients: dict, region: str, version_ref: str, note) -> dict:
    """Create (or find) the stack with clients for one region of one account; what seed.json records."""
    ec2, elbv2, asg, cloudwatch = clients["ec2"], clients["elbv2"], clients["autoscaling"], clients["cloudwatch"]
    az_a, az_b = zones(ec2)
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
    for name, az, cidr in (("shop-a", az_a, "10.20.1.0/24"), ("shop-b", az_b, "10.20.2.0/24")):
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
        raise SeedError(f"no al2023-ami-*-x86_64 image owned by amazon in the catalogue of {region}")
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
            AutoScalingGroupName=NAME, MinSize=SIZE, MaxSize=6, DesiredCapacity=SIZE,
            LaunchTemplate={"LaunchTemplateName": NAME, "Version": version_ref},
            VPCZoneIdentifier=",".join(subnet_ids), TargetGroupARNs=tg_arns, HealthCheckType="ELB",
            HealthCheckGracePeriod=60, DefaultInstanceWarmup=60,
            Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}],
        )
        note("auto scaling grp", f"{NAME} (version {version_ref})", True)

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
        "region": region, "vpc_id": vpc_id, "subnet_ids": subnet_ids, "security_group_id": sg_id,
        "launch_template_id": lt["LaunchTemplateId"], "launch_template_name": NAME, "base_ami": base_ami,
        "target_group_arns": tg_arns, "load_balancer_arn": lb_arn, "asg_name": NAME, "alarm_names": [ALARM],
    }
    return seed


def ready(asg, elbv2, tg_arns: list[str]) -> list[str] | None:
    """The ids of shop-web's InService instances once there are SIZE of them, healthy in every target
    group; None before."""
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])
           ["AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"]
    if len(ids) < SIZE:
        return None
    for arn in tg_arns:
        health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
        if not all(d["TargetHealth"]["State"] == "healthy" for d in health["TargetHealthDescriptions"]):
            return None
    return ids

"""Helpers for the Application Load Balancer metric tests: a load balancer with one target group,
images with the traffic tags, and GetMetricData series as (timestamp, value) lists."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

NS = "AWS/ApplicationELB"


def dim(arn: str) -> str:
    """CloudWatch's dimension value for a load balancer or target group ARN."""
    return arn.split(":", 5)[5].removeprefix("loadbalancer/")


def base_ami(ec2) -> str:
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    return max(imgs, key=lambda i: (i["CreationDate"], i["Name"]))["ImageId"]


def image(ec2, base: str, name: str, **tags: str) -> str:
    """An AMI made from an instance of `base`, with these tags from its creation."""
    inst = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    spec = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    ami = ec2.create_image(InstanceId=inst, Name=name, TagSpecifications=spec)["ImageId"]
    ec2.terminate_instances(InstanceIds=[inst])
    return ami


def network(ec2) -> tuple[str, list[str]]:
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in ((1, "us-east-1a"), (2, "us-east-1b"))]
    return vpc, subnets


def balanced_group(elbv2, vpc: str, subnets: list[str], name: str, kind: str = "application",
                   rpm: str | None = None) -> tuple[str, str]:
    """(load balancer ARN, target group ARN): a target group (healthy after 2 checks 10 s apart) behind a
    listener of its own load balancer."""
    protocol = "HTTP" if kind == "application" else "TCP"
    tg = elbv2.create_target_group(Name=name, Protocol=protocol, Port=80, VpcId=vpc, HealthCheckIntervalSeconds=10,
                                   HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    if rpm is not None:
        elbv2.add_tags(ResourceArns=[tg], Tags=[{"Key": "local-aws:requests-per-minute", "Value": rpm}])
    lb = elbv2.create_load_balancer(Name=f"{name}-lb", Subnets=subnets, Type=kind)["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(LoadBalancerArn=lb, Protocol=protocol, Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    return lb, tg


def launch(ec2, elbv2, ami: str, subnet: str, *target_groups: str) -> str:
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    for tg in target_groups:
        elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    return iid


def state(elbv2, tg: str, iid: str) -> str:
    return elbv2.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": iid}])[
        "TargetHealthDescriptions"][0]["TargetHealth"]["State"]


def query(metric: str, stat: str, dims: dict, period: int = 60, qid: str = "q", unit: str | None = None) -> dict:
    ms = {"Metric": {"Namespace": NS, "MetricName": metric,
                     "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}, "Period": period, "Stat": stat}
    if unit:
        ms["Unit"] = unit
    return {"Id": qid, "MetricStat": ms}


def series(cw, metric: str, stat: str, dims: dict, start: datetime, end: datetime | None = None,
           period: int = 60, **kw) -> list[tuple[datetime, float]]:
    """Ascending (timestamp, value) pairs."""
    end = end or datetime.now(timezone.utc) + timedelta(seconds=1)
    res = cw.get_metric_data(MetricDataQueries=[query(metric, stat, dims, period, **kw)], StartTime=start, EndTime=end,
                             ScanBy="TimestampAscending")["MetricDataResults"][0]
    assert res["StatusCode"] == "Complete", res
    return list(zip(res["Timestamps"], res["Values"]))


def minutes(srv, n: float) -> float:
    """Real seconds of n minutes of AWS time on this server."""
    return srv.aws(60 * n)


def wait_minutes(srv, n: float) -> None:
    time.sleep(minutes(srv, n))


def now() -> datetime:
    return datetime.now(timezone.utc)

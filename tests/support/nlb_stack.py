"""Adds a group behind a Network Load Balancer beside the seeded stack, for tests of what bakeroll does
where no Application Load Balancer metrics exist: launch template `shop-tcp` (a copy of shop-web version
1), target group `shop-tcp` (TCP:80) behind the listener of its own Network Load Balancer `shop-nlb`, and
Auto Scaling group `shop-tcp` (2 instances, ELB health checks). Waits until both instances are healthy.

Usage: nlb_stack.py SEED_JSON -> prints {"asg_name", "target_group_arn", "load_balancer_arn"}.
"""

import json
import sys
import time

import boto3

NAME = "shop-tcp"


def main(seed_path):
    seed = json.load(open(seed_path))
    ec2, asg, elb = boto3.client("ec2"), boto3.client("autoscaling"), boto3.client("elbv2")
    v1 = ec2.describe_launch_template_versions(LaunchTemplateId=seed["launch_template_id"], Versions=["1"])
    data = v1["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    lt = ec2.create_launch_template(LaunchTemplateName=NAME, VersionDescription="test: base image", LaunchTemplateData={
        "ImageId": data["ImageId"], "InstanceType": data["InstanceType"], "SecurityGroupIds": [seed["security_group_id"]],
    })["LaunchTemplate"]
    tg = elb.create_target_group(
        Name=NAME, Protocol="TCP", Port=80, VpcId=seed["vpc_id"], TargetType="instance",
        HealthCheckIntervalSeconds=10, HealthyThresholdCount=3, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    nlb = elb.create_load_balancer(Name="shop-nlb", Subnets=seed["subnet_ids"], Type="network",
                                   Scheme="internet-facing")["LoadBalancers"][0]["LoadBalancerArn"]
    # Without a listener AWS (and the local AWS) reports every target `unused`.
    elb.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    asg.create_auto_scaling_group(
        AutoScalingGroupName=NAME, MinSize=2, MaxSize=4, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
        VPCZoneIdentifier=",".join(seed["subnet_ids"]), TargetGroupARNs=[tg], HealthCheckType="ELB",
        HealthCheckGracePeriod=60, DefaultInstanceWarmup=60,
    )
    deadline = time.monotonic() + 60
    while True:
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
        health = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        healthy = {d["Target"]["Id"] for d in health if d["TargetHealth"]["State"] == "healthy"}
        if len(ids) == 2 and set(ids) <= healthy:
            break
        if time.monotonic() > deadline:
            print(f"nlb_stack: {NAME} not healthy in time: {ids} {health}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps({"asg_name": NAME, "target_group_arn": tg, "load_balancer_arn": nlb}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

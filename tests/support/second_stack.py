"""Adds a production stack beside the seeded one, for tests that promote a release from staging
(`shop-web`, from `scripts/local-aws seed`) to production: launch template `shop-web-production`
(a copy of shop-web version 1), target group `shop-web-production` behind a listener on port 81 of
the seeded ALB, and Auto Scaling group `shop-web-production` (2 instances, ELB health checks). Waits
until both instances are healthy.

Usage: second_stack.py SEED_JSON -> prints {"asg_name", "launch_template_id", "target_group_arn"}.
"""

import json
import sys
import time

import boto3

NAME = "shop-web-production"


def main(seed_path):
    seed = json.load(open(seed_path))
    ec2, asg, elb = boto3.client("ec2"), boto3.client("autoscaling"), boto3.client("elbv2")
    v1 = ec2.describe_launch_template_versions(LaunchTemplateId=seed["launch_template_id"], Versions=["1"])
    data = v1["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    lt = ec2.create_launch_template(LaunchTemplateName=NAME, VersionDescription="test: base image", LaunchTemplateData={
        "ImageId": data["ImageId"], "InstanceType": data["InstanceType"], "SecurityGroupIds": [seed["security_group_id"]],
    })["LaunchTemplate"]
    tg = elb.create_target_group(
        Name=NAME, Protocol="HTTP", Port=80, VpcId=seed["vpc_id"], TargetType="instance", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=10, HealthyThresholdCount=3, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    # Without a listener AWS (and the local AWS) reports every target `unused`.
    elb.create_listener(LoadBalancerArn=seed["load_balancer_arn"], Protocol="HTTP", Port=81,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
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
            print(f"second_stack: {NAME} not healthy in time: {ids} {health}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps({"asg_name": NAME, "launch_template_id": lt["LaunchTemplateId"], "target_group_arn": tg}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""The storefront stack of another account and region (`scripts/local-aws seed --account A --region R`),
seen and changed the way bakeroll's deploy role sees it: credentials from AssumeRole of the stack's
`role_arn`, the region's endpoint.

    regional.py SEED_JSON KEY reject NAME   adds target group NAME behind a listener on port 82 of the
                                            stack's ALB and attaches it to shop-web, so a release tagged
                                            `local-aws:health:NAME=unhealthy` is rejected there only; waits
                                            until shop-web's instances are healthy in it
    regional.py SEED_JSON KEY fleet         prints {"images": [image of each InService instance],
                                            "healthy": bool, "refreshes": [status, newest first]}

KEY is seed.json's `stacks` key, `<account>/<region>`.
"""

import json
import sys
import time

import boto3


def clients(stack: dict, region: str):
    kw = {"region_name": region}
    if stack.get("role_arn"):
        creds = boto3.client("sts").assume_role(RoleArn=stack["role_arn"], RoleSessionName="e2e-test")["Credentials"]
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    return boto3.client("ec2", **kw), boto3.client("autoscaling", **kw), boto3.client("elbv2", **kw)


def fleet(asg, ec2, elb) -> dict:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
    images = []
    if ids:
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            images.extend(i["ImageId"] for i in r["Instances"])
    healthy = len(ids) == g["DesiredCapacity"]
    for arn in g.get("TargetGroupARNs", []):
        states = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
        healthy = healthy and all(states.get(i) == "healthy" for i in ids)
    refreshes = [r["Status"] for r in asg.describe_instance_refreshes(AutoScalingGroupName="shop-web").get("InstanceRefreshes", [])]
    return {"images": sorted(images), "healthy": healthy, "refreshes": refreshes}


def reject(stack: dict, ec2, asg, elb, name: str) -> int:
    tg = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=stack["vpc_id"], TargetType="instance",
                                 HealthCheckPath="/health", HealthCheckIntervalSeconds=10, HealthyThresholdCount=3,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    # Without a listener AWS (and the local AWS) reports every target `unused`.
    elb.create_listener(LoadBalancerArn=stack["load_balancer_arn"], Protocol="HTTP", Port=82,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    asg.attach_load_balancer_target_groups(AutoScalingGroupName="shop-web", TargetGroupARNs=[tg])
    deadline = time.monotonic() + 60
    while not fleet(asg, ec2, elb)["healthy"]:
        if time.monotonic() > deadline:
            print(f"regional: shop-web not healthy in {name} in time", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps({"target_group_arn": tg}))
    return 0


def main(seed_path: str, key: str, command: str, *args: str) -> int:
    stack = json.load(open(seed_path))["stacks"][key]
    region = key.split("/", 1)[1]
    ec2, asg, elb = clients(stack, region)
    if command == "reject":
        return reject(stack, ec2, asg, elb, args[0])
    print(json.dumps(fleet(asg, ec2, elb)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

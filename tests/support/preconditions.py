"""Builds, beside the seeded stack, every cloud precondition the bad-input corpus (tests/e2e_bad_input.rs)
needs, each on its own group so they coexist on one local AWS, and waits until each is steady (so that a
before/after state dump sees only what bakeroll did):

* `shop-notg`: a group (of the seeded template, no instances) in no target group;
* `shop-lc`: a group on a launch configuration (no instances);
* `shop-locked`: a group (no instances) whose deploy lock `bakeroll:lock` another host holds for a day;
* `shop-sick`: 1 instance, its own target group behind port 82 of the seeded ALB, unhealthy there
  (instance tag `local-aws:health=unhealthy`); EC2 health checks, so Auto Scaling never replaces it;
* `shop-busy`: 2 instances, EC2 health checks, an instance refresh (not bakeroll's) holding at its 50 %
  checkpoint for 48 AWS hours;
* image `shop-foreign1`: an AMI of this account named as pipeline `local` would name commit `foreign1`'s
  image, without the pipeline tag;
* region us-west-2 looked at once: moto builds a region's defaults (default VPC, ...) the first time it is
  asked about it, which is no change of bakeroll's when a wrong-region case asks.

Usage: preconditions.py SEED_JSON -> prints {"foreign_image"}.
"""

import json
import sys
import time

import boto3


def wait(what, predicate, timeout=90):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit(f"preconditions: timed out waiting for {what}")
        time.sleep(0.1)


def main(seed_path):
    seed = json.load(open(seed_path))
    ec2, asg, elb = boto3.client("ec2"), boto3.client("autoscaling"), boto3.client("elbv2")
    subnets = ",".join(seed["subnet_ids"])
    base = {"LaunchTemplateId": seed["launch_template_id"], "Version": "1"}
    empty = dict(MinSize=0, MaxSize=2, DesiredCapacity=0, VPCZoneIdentifier=subnets)
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-notg", LaunchTemplate=base, **empty)
    asg.create_launch_configuration(LaunchConfigurationName="shop-lc", ImageId=seed["base_ami"], InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-lc", LaunchConfigurationName="shop-lc", **empty)
    now = int(time.time())
    holder = f"run=0123456789ab commit=cafe001 job=4242 host=ci-runner-7 pid=4242 since={now} until={now + 86400}"
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-locked", LaunchTemplate=base, **empty, Tags=[
        {"ResourceId": "shop-locked", "ResourceType": "auto-scaling-group", "Key": "bakeroll:lock", "Value": holder,
         "PropagateAtLaunch": False}])

    data = ec2.describe_launch_template_versions(LaunchTemplateId=seed["launch_template_id"], Versions=["1"])
    data = data["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    sick_lt = ec2.create_launch_template(LaunchTemplateName="shop-sick", LaunchTemplateData={
        "ImageId": data["ImageId"], "InstanceType": data["InstanceType"],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "local-aws:health", "Value": "unhealthy"}]}],
    })["LaunchTemplate"]["LaunchTemplateId"]
    tg = elb.create_target_group(Name="shop-sick", Protocol="HTTP", Port=80, VpcId=seed["vpc_id"], TargetType="instance",
                                 HealthCheckPath="/health", HealthCheckIntervalSeconds=10, UnhealthyThresholdCount=2)
    tg = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=seed["load_balancer_arn"], Protocol="HTTP", Port=82,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-sick", MinSize=1, MaxSize=2, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateId": sick_lt, "Version": "1"}, VPCZoneIdentifier=subnets,
                                  TargetGroupARNs=[tg], HealthCheckType="EC2")

    asg.create_auto_scaling_group(AutoScalingGroupName="shop-busy", MinSize=2, MaxSize=4, DesiredCapacity=2,
                                  LaunchTemplate=base, VPCZoneIdentifier=subnets, HealthCheckType="EC2")
    in_service = lambda name, n: sum(i["LifecycleState"] == "InService" for i in asg.describe_auto_scaling_groups(  # noqa: E731
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]) == n
    wait("shop-busy in service", lambda: in_service("shop-busy", 2))
    asg.start_instance_refresh(AutoScalingGroupName="shop-busy", Preferences={
        "MinHealthyPercentage": 50, "InstanceWarmup": 0, "CheckpointPercentages": [50, 100], "CheckpointDelay": 172800})

    def at_checkpoint():
        r = asg.describe_instance_refreshes(AutoScalingGroupName="shop-busy")["InstanceRefreshes"][0]
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-busy"])["AutoScalingGroups"][0]
        return r["Status"] == "InProgress" and r.get("PercentageComplete") == 50 and len(g["Instances"]) == 2 \
            and all(i["LifecycleState"] == "InService" for i in g["Instances"])

    wait("shop-busy's refresh at its checkpoint", at_checkpoint)
    wait("shop-sick in service", lambda: in_service("shop-sick", 1))
    wait("shop-sick unhealthy", lambda: [d["TargetHealth"]["State"] for d in
                                         elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]] == ["unhealthy"])

    image = ec2.register_image(Name="shop-foreign1", Architecture="x86_64", RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    west = {name: boto3.client(name, region_name="us-west-2") for name in ("ec2", "autoscaling", "elbv2")}
    west["ec2"].describe_vpcs()
    west["ec2"].describe_images(Owners=["self"])
    west["autoscaling"].describe_auto_scaling_groups()
    west["elbv2"].describe_target_groups()
    print(json.dumps({"foreign_image": image}))


if __name__ == "__main__":
    main(sys.argv[1])

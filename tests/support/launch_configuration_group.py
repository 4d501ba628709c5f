"""Adds a group on a launch configuration beside the seeded stack (the shape of the bash script bakeroll
replaces): launch configuration `shop-lc` (the seed's base image), group `shop-lc` (1 instance, in the
seeded shop-web target group). Usage: launch_configuration_group.py SEED_JSON -> prints {"asg_name"}."""

import json
import sys

import boto3


def main(seed_path):
    seed = json.load(open(seed_path))
    asg = boto3.client("autoscaling")
    asg.create_launch_configuration(
        LaunchConfigurationName="shop-lc", ImageId=seed["base_ami"], InstanceType="t3.micro", SecurityGroups=[seed["security_group_id"]]
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="shop-lc", LaunchConfigurationName="shop-lc", MinSize=1, MaxSize=2, DesiredCapacity=1,
        VPCZoneIdentifier=",".join(seed["subnet_ids"]), TargetGroupARNs=[seed["target_group_arns"][0]],
    )
    print(json.dumps({"asg_name": "shop-lc"}))


if __name__ == "__main__":
    main(sys.argv[1])

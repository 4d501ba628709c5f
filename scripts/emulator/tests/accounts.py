"""Clients in other accounts and regions of one local-aws server, selected as a real client selects
them: `region_name`, and credentials from sts.assume_role on a role the other account trusts. The other
account's own set-up (creating that role, as its administrator would) uses moto's x-moto-account-id
header, the only way to act as an account before any role exists. Also a minimal Auto Scaling group and
an image, for tests that need one in any account.
"""

from __future__ import annotations

import json

import boto3

DEFAULT_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "222222222222"
ROLE = "bakeroll-deploy"


def admin(server, service: str, account: str, region: str = "us-east-1"):
    """A client acting as `account`'s administrator (x-moto-account-id)."""
    client = boto3.client(service, endpoint_url=server.endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.meta.events.register("before-sign.*.*",
                                lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


def trust_role(server, account: str = OTHER_ACCOUNT, name: str = ROLE, trusted: str = DEFAULT_ACCOUNT,
               external_id: str | None = None) -> str:
    """Create role `name` in `account` whose trust policy lets `trusted` (its root) assume it; its ARN."""
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{trusted}:root"}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return admin(server, "iam", account).create_role(RoleName=name, AssumeRolePolicyDocument=policy)["Role"]["Arn"]


class Account:
    """Clients with credentials from sts.assume_role (the default account's credentials assume it)."""

    def __init__(self, server, role_arn: str, **assume):
        creds = server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="emulator-test",
                                                 **assume)["Credentials"]
        self.server = server
        self.session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"])

    def client(self, service: str, region: str = "us-east-1"):
        return self.session.client(service, endpoint_url=self.server.endpoint, region_name=region)


def other_account(server, account: str = OTHER_ACCOUNT) -> Account:
    return Account(server, trust_role(server, account))


def base_ami(ec2) -> str:
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])
    return sorted(i["ImageId"] for i in images["Images"])[0]


def image(ec2, name: str, tags: dict | None = None) -> str:
    """A new image (pending for the emulator's image time) made from an instance of the catalogue AMI."""
    inst = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    spec = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    image_id = ec2.create_image(InstanceId=inst["InstanceId"], Name=name, TagSpecifications=spec)["ImageId"]
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    return image_id


def small_group(ec2, asg, image_id: str, name: str = "web", zone: str = "us-east-1a", size: int = 1) -> str:
    """A group without load balancer (HealthCheckType EC2) on launch template `name` version 1; the id
    of that template."""
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=size, MaxSize=size + 2, DesiredCapacity=size,
                                  LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"}, AvailabilityZones=[zone],
                                  DefaultInstanceWarmup=0)
    return lt

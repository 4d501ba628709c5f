"""ClientToken idempotency (Amazon EC2 Developer Guide — "Ensuring idempotency in Amazon EC2 API
requests": same token and parameters → the original result, nothing done again; same token and
different parameters → IdempotentParameterMismatch; RunInstances is zonal when a zone or subnet is
given)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_for


def _ami(ec2) -> str:
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    return max(imgs, key=lambda i: i["CreationDate"])["ImageId"]


def _all_instance_ids(ec2) -> set[str]:
    return {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}


def test_run_instances_same_token_returns_the_original_reservation(fresh, clients):
    ec2, _, _ = clients
    ami = _ami(ec2)
    first = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="build-42")
    iid = first["Instances"][0]["InstanceId"]
    assert first["Instances"][0]["State"]["Name"] == "pending"
    wait_for(lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
             == "running", what="running")
    again = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="build-42")
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [iid]
    assert again["Instances"][0]["State"]["Name"] == "running"  # the replay shows the current state
    assert _all_instance_ids(ec2) == {iid}  # nothing launched twice
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert described["ClientToken"] == "build-42"


def test_run_instances_same_token_other_parameters_is_a_mismatch(fresh, clients):
    ec2, _, _ = clients
    ami = _ami(ec2)
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="tok-1")
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.large", ClientToken="tok-1")
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(_all_instance_ids(ec2)) == 1
    # another token launches again
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="tok-2")
    assert len(_all_instance_ids(ec2)) == 2


def test_run_instances_token_is_zonal_when_a_subnet_names_the_zone(fresh, clients):
    ec2, _, _ = clients
    ami = _ami(ec2)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    in_a = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=a, ClientToken="zonal")
    in_b = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=b, ClientToken="zonal")
    assert in_a["ReservationId"] != in_b["ReservationId"]  # one launch per zone
    assert in_b["Instances"][0]["Placement"]["AvailabilityZone"] == "us-east-1b"
    again = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=a, ClientToken="zonal")
    assert again["ReservationId"] == in_a["ReservationId"]
    assert len(_all_instance_ids(ec2)) == 2


def test_dry_run_with_a_token_does_not_use_it(fresh, clients):
    ec2, _, _ = clients
    ami = _ami(ec2)
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="dry", DryRun=True)
    assert err.value.response["Error"]["Code"] == "DryRunOperation"
    out = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="dry")
    assert _all_instance_ids(ec2) == {out["Instances"][0]["InstanceId"]}


def test_create_launch_template_version_same_token(fresh, clients):
    ec2, _, _ = clients
    lt = ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={
        "ImageId": "ami-11111111", "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    kw = dict(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-22222222"},
              VersionDescription="bake 7")
    first = ec2.create_launch_template_version(ClientToken="release-7", **kw)["LaunchTemplateVersion"]
    again = ec2.create_launch_template_version(ClientToken="release-7", **kw)["LaunchTemplateVersion"]
    assert first["VersionNumber"] == again["VersionNumber"] == 2
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in versions] == [2, 1]  # no third version
    with pytest.raises(ClientError) as err:
        ec2.create_launch_template_version(ClientToken="release-7", LaunchTemplateId=lt, SourceVersion="1",
                                           LaunchTemplateData={"ImageId": "ami-33333333"})
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    third = ec2.create_launch_template_version(ClientToken="release-8", **kw)["LaunchTemplateVersion"]
    assert third["VersionNumber"] == 3

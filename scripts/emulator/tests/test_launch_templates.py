"""Launch template versions (Amazon EC2 API Reference — "CreateLaunchTemplateVersion",
"DescribeLaunchTemplateVersions")."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError


def _template(ec2) -> str:
    return ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={
        "ImageId": "ami-11111111", "InstanceType": "t3.micro", "SecurityGroupIds": ["sg-1"],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "shop"}]}]})[
        "LaunchTemplate"]["LaunchTemplateId"]


def test_source_version_is_copied_then_overridden(clients):
    ec2, _, _ = clients
    lt = _template(ec2)
    v2 = ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                            LaunchTemplateData={"ImageId": "ami-22222222"})["LaunchTemplateVersion"]
    data = v2["LaunchTemplateData"]
    assert v2["VersionNumber"] == 2
    assert data["ImageId"] == "ami-22222222"
    assert data["InstanceType"] == "t3.micro"
    assert data["SecurityGroupIds"] == ["sg-1"]
    assert data["TagSpecifications"][0]["Tags"] == [{"Key": "app", "Value": "shop"}]
    v3 = ec2.create_launch_template_version(LaunchTemplateId=lt, LaunchTemplateData={"ImageId": "ami-3"})
    assert "InstanceType" not in v3["LaunchTemplateVersion"]["LaunchTemplateData"]  # no SourceVersion: nothing copied


def test_versions_page_beyond_15_newest_first(clients):
    ec2, _, _ = clients
    lt = _template(ec2)
    for n in range(2, 21):
        ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", VersionDescription=f"v{n}",
                                           LaunchTemplateData={"ImageId": f"ami-{n:08d}"})
    numbers, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = ec2.describe_launch_template_versions(LaunchTemplateId=lt, MaxResults=7, **kw)
        assert len(page["LaunchTemplateVersions"]) <= 7
        numbers += [v["VersionNumber"] for v in page["LaunchTemplateVersions"]]
        token = page.get("NextToken")
        if not token:
            break
    assert numbers == list(range(20, 0, -1))
    everything = ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert len(everything) == 20
    paginated = [v["VersionNumber"] for p in ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateId=lt, PaginationConfig={"PageSize": 5}) for v in p["LaunchTemplateVersions"]]
    assert len(paginated) == 20


def test_versions_list_with_latest_and_default(clients):
    ec2, _, _ = clients
    lt = _template(ec2)
    for n in range(2, 5):
        ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={})
    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")
    got = ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["$Latest", "$Default", "1"])
    assert [(v["VersionNumber"], v["DefaultVersion"]) for v in got["LaunchTemplateVersions"]] == [
        (4, False), (2, True), (1, False)]
    with pytest.raises(ClientError) as err:
        ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["9"])
    assert err.value.response["Error"]["Code"] == "InvalidLaunchTemplateId.VersionNotFound"


def test_user_data_of_a_new_version_launches(clients, fresh):
    ec2, asg, _ = clients
    seed = fresh.seed()
    script = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    ec2.create_launch_template_version(LaunchTemplateName="shop-web", SourceVersion="1",
                                       LaunchTemplateData={"UserData": script})
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web",
                                  LaunchTemplate={"LaunchTemplateName": "shop-web", "Version": "2"})
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=4)
    new = [i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])["AutoScalingGroups"][0][
        "Instances"] if i["LaunchTemplate"]["Version"] == "2"]
    assert len(new) == 1
    attr = ec2.describe_instance_attribute(InstanceId=new[0]["InstanceId"], Attribute="userData")
    assert attr["UserData"]["Value"] == script
    assert seed


def test_delete_versions_never_reuses_numbers_and_keeps_the_default(clients):
    ec2, _, _ = clients
    lt = _template(ec2)
    for _ in range(3):
        ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={})
    out = ec2.delete_launch_template_versions(LaunchTemplateId=lt, Versions=["1", "3", "9"])
    assert [v["VersionNumber"] for v in out["SuccessfullyDeletedLaunchTemplateVersions"]] == [3]
    codes = {v["VersionNumber"]: v["ResponseError"]["Code"] for v in out["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert codes[9] == "launchTemplateVersionDoesNotExist" and 1 in codes  # 1 is the default
    new = ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="2", LaunchTemplateData={})
    assert new["LaunchTemplateVersion"]["VersionNumber"] == 5
    listed = [v["VersionNumber"] for v in ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]]
    assert listed == [5, 4, 2, 1]
    assert ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["$Latest"])[
        "LaunchTemplateVersions"][0]["VersionNumber"] == 5

"""Images shared across accounts on one endpoint: launch permissions, what the other account sees
(by id, ExecutableUsers=self, not Owners=self, no owner tags), launches refused until shared (directly
and by an Auto Scaling group's instance refresh), snapshot createVolumePermission, refusals."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .accounts import OTHER_ACCOUNT, base_ami, image, other_account, small_group
from .conftest import wait_for, wait_refresh_done


def _available(ec2, image_id: str) -> None:
    wait_for(lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available",
             what=f"{image_id} available")


def _code(call, **kw) -> str:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"]


@pytest.fixture
def two(fresh):
    """(owner's EC2 client, the other account) with one available image of the owner's, tagged."""
    ec2 = fresh.client("ec2")
    image_id = image(ec2, "release-1", {"bakeroll:release": "abc123"})
    _available(ec2, image_id)
    return ec2, other_account(fresh), image_id


def test_the_other_account_sees_a_shared_image_by_id_and_executable_users_but_not_as_its_own(two):
    ec2, other, image_id = two
    theirs = other.client("ec2")
    assert _code(theirs.describe_images, ImageIds=[image_id]) == "InvalidAMIID.NotFound"
    assert image_id not in [i["ImageId"] for i in theirs.describe_images(ExecutableUsers=["self"])["Images"]]

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == [
        {"UserId": OTHER_ACCOUNT}]
    seen = theirs.describe_images(ImageIds=[image_id])["Images"][0]
    assert (seen["OwnerId"], seen["State"], seen["Name"]) == ("123456789012", "available", "release-1")
    assert [i["ImageId"] for i in theirs.describe_images(ExecutableUsers=["self"])["Images"]] == [image_id]
    assert [i["ImageId"] for i in theirs.describe_images(ExecutableUsers=[OTHER_ACCOUNT])["Images"]] == [image_id]
    assert image_id not in [i["ImageId"] for i in theirs.describe_images(Owners=["self"])["Images"]]
    assert image_id in [i["ImageId"] for i in theirs.describe_images(Owners=["123456789012"])["Images"]]
    # the owner's own images are not "executable by self": only explicit launch permissions count
    assert image_id not in [i["ImageId"] for i in ec2.describe_images(ExecutableUsers=["self"])["Images"]]
    assert [i["ImageId"] for i in ec2.describe_images(ExecutableUsers=[OTHER_ACCOUNT])["Images"]] == [image_id]

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": OTHER_ACCOUNT}]})
    assert _code(theirs.describe_images, ImageIds=[image_id]) == "InvalidAMIID.NotFound"


def test_tags_do_not_cross_accounts(two):
    ec2, other, image_id = two
    theirs = other.client("ec2")
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert theirs.describe_images(ImageIds=[image_id])["Images"][0].get("Tags", []) == []
    assert theirs.describe_images(Filters=[{"Name": "tag:bakeroll:release", "Values": ["abc123"]}])["Images"] == []
    theirs.create_tags(Resources=[image_id], Tags=[{"Key": "seen-by", "Value": "prod"}])  # its own tag
    assert theirs.describe_images(ImageIds=[image_id])["Images"][0]["Tags"] == [{"Key": "seen-by", "Value": "prod"}]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Tags"] == [{"Key": "bakeroll:release", "Value": "abc123"}]


def test_a_launch_from_an_image_not_shared_is_refused_and_works_once_shared(two):
    ec2, other, image_id = two
    theirs = other.client("ec2")
    kw = dict(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert _code(theirs.run_instances, **kw) == "InvalidAMIID.NotFound"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    instance = theirs.run_instances(**kw)["Instances"][0]
    assert instance["ImageId"] == image_id
    assert theirs.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["OwnerId"] == OTHER_ACCOUNT
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": OTHER_ACCOUNT}]})
    assert _code(theirs.run_instances, **kw) == "InvalidAMIID.NotFound"


def test_an_image_of_another_region_is_not_found_there(two):
    _, other, image_id = two
    import boto3
    remote = boto3.client("ec2", endpoint_url=other.server.endpoint, region_name="ap-southeast-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # the owner, elsewhere
    assert _code(remote.run_instances, ImageId=image_id, MinCount=1, MaxCount=1) == "InvalidAMIID.NotFound"
    assert _code(remote.describe_images, ImageIds=[image_id]) == "InvalidAMIID.NotFound"


def test_only_the_owner_reads_and_changes_launch_permissions(two):
    ec2, other, image_id = two
    theirs = other.client("ec2")
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert _code(theirs.describe_image_attribute, ImageId=image_id, Attribute="launchPermission") == "AuthFailure"
    assert _code(theirs.modify_image_attribute, ImageId=image_id,
                 LaunchPermission={"Add": [{"UserId": "333333333333"}]}) == "AuthFailure"
    assert _code(ec2.modify_image_attribute, ImageId=image_id,
                 LaunchPermission={"Add": [{"UserId": "12345"}]}) == "InvalidAMIAttributeItemValue"


def test_a_pending_image_cannot_be_shared(fresh):
    ec2 = fresh.client("ec2")
    image_id = image(ec2, "still-pending")
    assert _code(ec2.modify_image_attribute, ImageId=image_id,
                 LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]}) == "InvalidAMIID.Unavailable"


def test_snapshot_create_volume_permission(two):
    ec2, _, image_id = two
    snapshot = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add",
                                  UserIds=[OTHER_ACCOUNT])
    got = ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
    assert got["CreateVolumePermissions"] == [{"UserId": OTHER_ACCOUNT}]
    ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="remove",
                                  UserIds=[OTHER_ACCOUNT])
    assert ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []


def test_a_refresh_in_the_other_account_onto_an_image_not_shared_fails_on_its_launches(two):
    ec2, other, image_id = two
    theirs, asg = other.client("ec2"), other.client("autoscaling")
    lt = small_group(theirs, asg, base_ami(theirs))
    wait_for(lambda: [i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"], what="web in service")
    version = theirs.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={
        "ImageId": image_id})["LaunchTemplateVersion"]["VersionNumber"]
    desired = {"LaunchTemplate": {"LaunchTemplateId": lt, "Version": str(version)}}
    prefs = {"MinHealthyPercentage": 0, "InstanceWarmup": 0}
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=desired, Preferences=prefs)
    refresh = wait_refresh_done(asg, "web")
    assert refresh["Status"] == "Failed", refresh
    assert "could not be launched" in refresh["StatusReason"] and image_id in refresh["StatusReason"], refresh
    activities = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    assert activities and activities[0]["StatusCode"] == "Failed"
    assert f"The image id '[{image_id}]' does not exist" in activities[0]["StatusMessage"]

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    asg.start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=desired, Preferences=prefs)
    assert wait_refresh_done(asg, "web")["Status"] == "Successful"
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"]
    ids = [m["InstanceId"] for m in members if m["LifecycleState"] == "InService"]
    images = {i["ImageId"] for r in theirs.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    assert images == {image_id}

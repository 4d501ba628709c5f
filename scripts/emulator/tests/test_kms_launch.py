"""Encrypted images across accounts: the AWS managed EBS key cannot be shared; a customer managed key
lets another account launch only when its key policy allows that account, and lets an Auto Scaling group
launch only when the policy or a grant allows the group's service-linked role; otherwise the instance
terminates with Client.InternalError, and an instance refresh fails on it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .accounts import DEFAULT_ACCOUNT, OTHER_ACCOUNT, base_ami, image, other_account, small_group
from .conftest import wait_for, wait_refresh_done

ROLE = "arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
GRANT_OPERATIONS = ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                    "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"]


def _code(call, **kw) -> str:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"]


def _encrypted_copy(ec2, image_id: str, name: str, key_id: str | None = None) -> str:
    """An available copy of `image_id` in its own region, encrypted with `key_id` (default EBS key if None)."""
    kw = {"KmsKeyId": key_id} if key_id else {}
    copy_id = ec2.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name=name, Encrypted=True, **kw)["ImageId"]
    wait_for(lambda: ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "available", what="copy")
    return copy_id


def _policy(*principals: str) -> str:
    statements = [{"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"},
                   "Action": "kms:*", "Resource": "*"}]
    if principals:
        statements.append({"Sid": "use", "Effect": "Allow", "Principal": {"AWS": list(principals)},
                           "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                      "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"], "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture
def release(fresh):
    ec2 = fresh.client("ec2")
    image_id = image(ec2, "release-1")
    wait_for(lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available", what="release")
    return ec2, image_id


def _share(ec2, image_id: str) -> None:
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    snapshot = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add",
                                  UserIds=[OTHER_ACCOUNT])


def _ends(ec2, instance_id: str) -> dict:
    return wait_for(lambda: (lambda i: i if i["State"]["Name"] in ("running", "terminated") else None)(
        ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]), what="launch outcome")


def test_an_image_encrypted_with_the_aws_managed_key_cannot_be_shared(release):
    ec2, image_id = release
    copy_id = _encrypted_copy(ec2, image_id, "default-key")
    assert _code(ec2.modify_image_attribute, ImageId=copy_id,
                 LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]}) == "InvalidParameter"
    assert _code(ec2.modify_image_attribute, ImageId=copy_id,
                 LaunchPermission={"Add": [{"Group": "all"}]}) == "UnsupportedOperation"
    snapshot = ec2.describe_images(ImageIds=[copy_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert _code(ec2.modify_snapshot_attribute, SnapshotId=snapshot, Attribute="createVolumePermission",
                 OperationType="add", UserIds=[OTHER_ACCOUNT]) == "OperationNotPermitted"
    assert ec2.describe_image_attribute(ImageId=copy_id, Attribute="launchPermission")["LaunchPermissions"] == []


def test_another_account_launches_a_customer_key_image_only_when_the_key_policy_allows_it(release, fresh):
    ec2, image_id = release
    kms = fresh.client("kms")
    key = kms.create_key(Description="releases")["KeyMetadata"]
    copy_id = _encrypted_copy(ec2, image_id, "cmk", key["Arn"])
    _share(ec2, copy_id)
    theirs = other_account(fresh).client("ec2")
    refused = theirs.run_instances(ImageId=copy_id, MinCount=1, MaxCount=1)["Instances"][0]
    assert refused["State"]["Name"] == "pending"
    ended = _ends(theirs, refused["InstanceId"])
    assert ended["State"]["Name"] == "terminated"
    assert ended["StateReason"] == {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}

    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=_policy(f"arn:aws:iam::{OTHER_ACCOUNT}:root"))
    allowed = theirs.run_instances(ImageId=copy_id, MinCount=1, MaxCount=1)["Instances"][0]
    assert _ends(theirs, allowed["InstanceId"])["State"]["Name"] == "running"

    kms.disable_key(KeyId=key["KeyId"])
    disabled = theirs.run_instances(ImageId=copy_id, MinCount=1, MaxCount=1)["Instances"][0]
    assert "Client.InvalidKMSKey.InvalidState" in _ends(theirs, disabled["InstanceId"])["StateReason"]["Message"]


def test_an_auto_scaling_group_needs_a_grant_or_policy_for_its_service_linked_role(release, fresh):
    ec2, image_id = release
    kms = fresh.client("kms")
    key = kms.create_key(Description="releases", Policy=_policy(f"arn:aws:iam::{OTHER_ACCOUNT}:root"))["KeyMetadata"]
    copy_id = _encrypted_copy(ec2, image_id, "cmk", key["Arn"])
    _share(ec2, copy_id)
    other = other_account(fresh)
    theirs, asg, their_kms = other.client("ec2"), other.client("autoscaling"), other.client("kms")
    lt = small_group(theirs, asg, base_ami(theirs), size=2)
    wait_for(lambda: len([i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"]) == 2, what="web in service")
    version = theirs.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={
        "ImageId": copy_id})["LaunchTemplateVersion"]["VersionNumber"]
    start = dict(AutoScalingGroupName="web", Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0},
                 DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt, "Version": str(version)}})
    asg.start_instance_refresh(**start)
    failed = wait_refresh_done(asg, "web")
    assert failed["Status"] == "Failed"
    assert "failed to launch (Client.InternalError: Client error on launch)" in failed["StatusReason"], failed
    activities = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    assert any("Client.InternalError: Client error on launch" in a["Description"] for a in activities)

    # AWS's cross-account recipe: the deploy account creates a grant for its service-linked role
    role = ROLE.format(OTHER_ACCOUNT)
    assert their_kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    their_kms.create_grant(KeyId=key["Arn"], GranteePrincipal=role, Operations=GRANT_OPERATIONS)
    assert [g["GranteePrincipal"] for g in their_kms.list_grants(KeyId=key["Arn"])["Grants"]] == [role]
    asg.start_instance_refresh(**start)
    assert wait_refresh_done(asg, "web")["Status"] == "Successful"


def test_a_grant_needs_the_key_policy_to_allow_the_other_account(release, fresh):
    key = fresh.client("kms").create_key(Description="private")["KeyMetadata"]
    their_kms = other_account(fresh).client("kms")
    assert _code(their_kms.create_grant, KeyId=key["Arn"], GranteePrincipal=ROLE.format(OTHER_ACCOUNT),
                 Operations=["Decrypt", "CreateGrant"]) == "AccessDeniedException"
    assert _code(their_kms.describe_key, KeyId=key["Arn"]) == "AccessDeniedException"


def test_in_its_own_account_a_group_needs_the_key_policy_to_name_its_service_linked_role(release, fresh):
    ec2, image_id = release
    kms, asg = fresh.client("kms"), fresh.client("autoscaling")
    key = kms.create_key(Description="own")["KeyMetadata"]  # default policy: the account root only
    copy_id = _encrypted_copy(ec2, image_id, "own-cmk", key["Arn"])
    direct = ec2.run_instances(ImageId=copy_id, MinCount=1, MaxCount=1)["Instances"][0]
    assert _ends(ec2, direct["InstanceId"])["State"]["Name"] == "running"  # the account's own callers may
    small_group(ec2, asg, copy_id, size=1)
    wait_for(lambda: any("Client error on launch" in a["Description"] for a in
                         asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]), what="failure")
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=_policy(ROLE.format(DEFAULT_ACCOUNT)))
    wait_for(lambda: [i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0][
        "Instances"] if i["LifecycleState"] == "InService"], timeout=60, what="a member in service")

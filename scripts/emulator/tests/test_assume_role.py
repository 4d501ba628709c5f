"""AssumeRole on one endpoint: credentials act in the role's account, only when the role exists and its
trust policy allows the caller (ExternalId, role chaining), and the emulator's behaviour keeps each
account's and region's resources apart even under the same names."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from .accounts import OTHER_ACCOUNT, Account, admin, base_ami, small_group, trust_role
from .conftest import wait_for, wait_refresh_done


def _denied(server, role_arn: str, **kw) -> dict:
    with pytest.raises(ClientError) as e:
        server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="denied", **kw)
    return e.value.response


def test_assumed_credentials_act_in_the_roles_account(fresh):
    other = Account(fresh, trust_role(fresh))
    me = other.client("sts").get_caller_identity()
    assert me["Account"] == OTHER_ACCOUNT
    assert me["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/bakeroll-deploy/emulator-test"
    theirs = other.client("ec2")
    theirs.create_launch_template(LaunchTemplateName="shop-web", LaunchTemplateData={"ImageId": base_ami(theirs)})
    assert fresh.client("ec2").describe_launch_templates()["LaunchTemplates"] == []
    assert [t["LaunchTemplateName"] for t in theirs.describe_launch_templates()["LaunchTemplates"]] == ["shop-web"]


def test_a_role_that_does_not_exist_or_does_not_trust_the_caller_is_refused(fresh):
    missing = f"arn:aws:iam::{OTHER_ACCOUNT}:role/bakeroll-deploy"
    answer = _denied(fresh, missing)
    assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "is not authorized to perform: sts:AssumeRole on resource: " + missing in answer["Error"]["Message"]
    untrusting = trust_role(fresh, trusted="999999999999")
    assert _denied(fresh, untrusting)["Error"]["Code"] == "AccessDenied"


def test_an_external_id_the_trust_policy_requires_must_be_given(fresh):
    role = trust_role(fresh, name="vendor", external_id="ci-7")
    assert _denied(fresh, role)["Error"]["Code"] == "AccessDenied"
    assert _denied(fresh, role, ExternalId="ci-8")["Error"]["Code"] == "AccessDenied"
    assert Account(fresh, role, ExternalId="ci-7").client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT


def test_role_chaining_trusts_the_session_as_its_role(fresh):
    first = Account(fresh, trust_role(fresh))
    third = "333333333333"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/bakeroll-deploy"}}]}
    chained = admin(fresh, "iam", third).create_role(RoleName="prod", AssumeRolePolicyDocument=json.dumps(policy))[
        "Role"]["Arn"]
    assert _denied(fresh, chained)["Error"]["Code"] == "AccessDenied"  # the default account is not trusted
    creds = first.client("sts").assume_role(RoleArn=chained, RoleSessionName="chain")["Credentials"]
    sts = boto3.client("sts", endpoint_url=fresh.endpoint, region_name="us-east-1",
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])
    assert sts.get_caller_identity()["Account"] == third


def test_groups_and_refreshes_of_the_same_name_stay_apart_per_account_and_region(fresh):
    other = Account(fresh, trust_role(fresh))
    places = {
        ("default", "us-east-1"): (fresh.client("ec2"), fresh.client("autoscaling")),
        ("default", "ap-southeast-1"): (
            boto3.client("ec2", endpoint_url=fresh.endpoint, region_name="ap-southeast-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing"),
            boto3.client("autoscaling", endpoint_url=fresh.endpoint, region_name="ap-southeast-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")),
        ("other", "us-east-1"): (other.client("ec2"), other.client("autoscaling")),
    }
    templates = {}
    for (who, region), (ec2, asg) in places.items():
        templates[(who, region)] = small_group(ec2, asg, base_ami(ec2), zone=f"{region}a", size=2)
    for ec2, asg in places.values():
        wait_for(lambda: len([i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
            "AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"]) == 2, what="web in service")
    ec2, asg = places[("other", "us-east-1")]
    lt = templates[("other", "us-east-1")]
    version = ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={
        "InstanceType": "t3.small"})["LaunchTemplateVersion"]["VersionNumber"]
    asg.start_instance_refresh(AutoScalingGroupName="web", Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0},
                               DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt, "Version": str(version)}})
    assert wait_refresh_done(asg, "web")["Status"] == "Successful"
    for where, (ec2_, asg_) in places.items():
        refreshes = asg_.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"]
        group = asg_.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
        versions = {i["LaunchTemplate"]["Version"] for i in group["Instances"]}
        if where == ("other", "us-east-1"):
            assert len(refreshes) == 1 and versions == {str(version)}, where
        else:
            assert refreshes == [] and versions == {"1"}, where
        assert len(group["Instances"]) == 2, where


def _code(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_an_explicit_deny_in_the_roles_policy_refuses_its_sessions_in_that_region_only(fresh):
    role = trust_role(fresh)
    # The IAM User Guide's "Denies access to AWS based on the requested Region", allowing us-east-1 only.
    region_fence = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}}}]}
    admin(fresh, "iam", OTHER_ACCOUNT).put_role_policy(RoleName="bakeroll-deploy", PolicyName="fence",
                                                        PolicyDocument=json.dumps(region_fence))
    other = Account(fresh, role)
    assert other.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []  # us-east-1: allowed
    code, status, message = _code(lambda: other.client("autoscaling", "ap-southeast-1").describe_auto_scaling_groups())
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/bakeroll-deploy/emulator-test is not authorized "
                       "to perform: autoscaling:DescribeAutoScalingGroups with an explicit deny in an identity-based policy")
    code, status, message = _code(lambda: other.client("ec2", "ap-southeast-1").describe_images(Owners=["self"]))
    assert (code, status) == ("UnauthorizedOperation", 403) and "ec2:DescribeImages with an explicit deny" in message
    code, _, _ = _code(lambda: other.client("elbv2", "ap-southeast-1").describe_target_groups())
    assert code == "AccessDenied"
    assert other.client("iam", "ap-southeast-1").get_role(RoleName="bakeroll-deploy")["Role"]["Arn"] == role  # NotAction
    # The caller's own credentials, and the role's sessions once the policy is gone, are not fenced.
    mine = boto3.client("autoscaling", endpoint_url=fresh.endpoint, region_name="ap-southeast-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    assert mine.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    admin(fresh, "iam", OTHER_ACCOUNT).delete_role_policy(RoleName="bakeroll-deploy", PolicyName="fence")
    assert other.client("autoscaling", "ap-southeast-1").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_which_deny_statements_apply():
    from emulator.role_policies import denies

    def doc(**statement):
        return {"Statement": [dict({"Effect": "Deny", "Resource": "*"}, **statement)]}

    tagging = doc(Action="autoscaling:CreateOrUpdate*")
    assert denies(tagging, "autoscaling:CreateOrUpdateTags", "us-east-1")
    assert not denies(tagging, "autoscaling:DeleteTags", "us-east-1")
    assert denies(doc(Action=["ec2:*"]), "EC2:DescribeImages", "eu-west-1"), "actions match in any case"
    assert not denies({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "ec2:RunInstances", "eu-west-1")
    like = doc(Action="*", Condition={"StringLike": {"aws:RequestedRegion": "ap-*"}})
    assert denies(like, "ec2:RunInstances", "ap-southeast-1") and not denies(like, "ec2:RunInstances", "us-east-1")
    # Not evaluated here, so the statement does not apply: other condition keys, named resources.
    assert not denies(doc(Action="*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), "ec2:RunInstances", "us-east-1")
    assert not denies(doc(Action="*", Resource="arn:aws:ec2:*:*:instance/*"), "ec2:RunInstances", "us-east-1")

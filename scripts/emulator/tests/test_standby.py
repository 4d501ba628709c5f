"""Standby instances and scale-in protection (Amazon EC2 Auto Scaling User Guide — "Temporarily remove
instances from your Auto Scaling group", "Use instance scale-in protection", "Start an instance
refresh"; API Reference — "EnterStandby", "ExitStandby", "SetInstanceProtection", "RefreshPreferences"
StandbyInstances): standby instances are deregistered and keep running, and an instance refresh
terminates, ignores or waits for them."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.004


def _state(asg, iid: str) -> str | None:
    return next((i["LifecycleState"] for i in group(asg)["Instances"] if i["InstanceId"] == iid), None)


def _targets(elbv2, seed, iid: str) -> list[str]:
    return [d["TargetHealth"]["State"] for arn in seed["target_group_arns"]
            for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if d["Target"]["Id"] == iid]


def _ec2_state(ec2, iid: str) -> str:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _code(call) -> str:
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Code"]


def test_standby_deregisters_keeps_running_and_returns(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    a, b, _ = [i["InstanceId"] for i in group(asg)["Instances"]]
    # decrementing below MinSize 3 is refused
    assert _code(lambda: asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[a],
                                           ShouldDecrementDesiredCapacity=True)) == "ValidationError"
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=1)
    asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[a], ShouldDecrementDesiredCapacity=True)
    assert _state(asg, a) == "EnteringStandby"
    assert _targets(elbv2, seed, a) == ["draining", "draining"]
    assert group(asg)["DesiredCapacity"] == 2
    wait_for(lambda: _state(asg, a) == "Standby", what="Standby after the deregistration delay")
    assert _ec2_state(ec2, a) == "running" and _targets(elbv2, seed, a) == []
    time.sleep(fresh.aws(120))
    assert len(group(asg)["Instances"]) == 3  # decremented: no replacement
    assert _code(lambda: asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[a],
                                           ShouldDecrementDesiredCapacity=True)) == "ValidationError"
    assert _code(lambda: asg.exit_standby(AutoScalingGroupName="shop-web", InstanceIds=[b])) == "ValidationError"
    asg.exit_standby(AutoScalingGroupName="shop-web", InstanceIds=[a])
    assert group(asg)["DesiredCapacity"] == 3
    wait_for(lambda: _state(asg, a) == "InService", what="back InService")
    wait_for(lambda: _targets(elbv2, seed, a) == ["healthy", "healthy"], what="registered and healthy again")
    # without the decrement the group launches a replacement
    asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[b], ShouldDecrementDesiredCapacity=False)
    wait_for(lambda: len([i for i in group(asg)["Instances"] if i["LifecycleState"] in ("Pending", "InService")]) == 3,
             what="a replacement for the standby instance")
    assert group(asg)["DesiredCapacity"] == 3 and _state(asg, b) in ("EnteringStandby", "Standby")
    assert _code(lambda: asg.set_instance_protection(AutoScalingGroupName="shop-web", InstanceIds=["i-00000000"],
                                                     ProtectedFromScaleIn=True)) == "ValidationError"


@pytest.mark.parametrize("mode", ["Terminate", "Ignore", "Wait"])
def test_refresh_standby_instances(fresh, clients, mode):
    ec2, asg, _ = clients
    seed = fresh.seed()
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=1)
    standby = group(asg)["Instances"][0]["InstanceId"]
    asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[standby], ShouldDecrementDesiredCapacity=True)
    wait_for(lambda: _state(asg, standby) == "Standby", what="Standby")
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0, "StandbyInstances": mode})
    if mode == "Wait":  # all InService instances are replaced, then the refresh waits for the standby one
        r = wait_for(lambda: (lambda r: r if "Standby" in (r.get("StatusReason") or "") else None)(
            refresh_status(asg)), what="waiting for the standby instance")
        assert r["Status"] == "InProgress" and standby in r["StatusReason"]
        live = [i for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"]
        assert len(live) == 2 and {i["LaunchTemplate"]["Version"] for i in live} == {version}
        asg.exit_standby(AutoScalingGroupName="shop-web", InstanceIds=[standby])
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful", r
    if mode == "Terminate":
        assert _state(asg, standby) is None and _ec2_state(ec2, standby) in ("shutting-down", "terminated")
    elif mode == "Ignore":
        assert _state(asg, standby) == "Standby" and _ec2_state(ec2, standby) == "running"
    else:
        assert _state(asg, standby) in (None, "Terminating")  # back in service, then replaced
    live = [i for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"]
    assert {i["LaunchTemplate"]["Version"] for i in live} == {version}
    assert len(live) == (3 if mode == "Wait" else 2)


@pytest.mark.parametrize("blocker", ["standby", "protected"])
def test_refresh_waiting_fails_after_one_hour(fresh, clients, blocker):
    """StandbyInstances and ScaleInProtectedInstances default to Wait: they wait one hour for the
    instances, "Otherwise, the instance refresh will fail"."""
    ec2, asg, _ = clients
    seed = fresh.seed()
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=1)
    held = group(asg)["Instances"][0]["InstanceId"]
    if blocker == "standby":
        asg.enter_standby(AutoScalingGroupName="shop-web", InstanceIds=[held], ShouldDecrementDesiredCapacity=True)
    else:
        asg.set_instance_protection(AutoScalingGroupName="shop-web", InstanceIds=[held], ProtectedFromScaleIn=True)
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 0})
    word = "Standby" if blocker == "standby" else "protected"
    wait_for(lambda: word in (refresh_status(asg).get("StatusReason") or ""), what="waiting")
    t0 = time.monotonic()
    r = wait_refresh_done(asg, timeout=60)
    assert r["Status"] == "Failed" and held in r["StatusReason"] and word in r["StatusReason"], r
    assert (time.monotonic() - t0) / fresh.scale >= 3500  # one hour (AWS seconds)
    assert group(asg)["LaunchTemplate"]["Version"] == "1"

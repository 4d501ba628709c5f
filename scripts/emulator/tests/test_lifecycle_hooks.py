"""Launch lifecycle hooks (Amazon EC2 Auto Scaling User Guide — "Amazon EC2 Auto Scaling lifecycle
hooks", "Complete a lifecycle action"; API Reference — "PutLifecycleHook", "CompleteLifecycleAction",
"RecordLifecycleActionHeartbeat"): Pending:Wait until CONTINUE / ABANDON / the heartbeat timeout,
registration in the target groups only after CONTINUE, and the test-controlled tag rule."""

from __future__ import annotations

import re
import time

import pytest
from botocore.exceptions import ClientError

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.01
HOOK = "bootstrap"


def _hook(asg, **kw) -> None:
    asg.put_lifecycle_hook(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", **kw)


def _scale_out(asg) -> str:
    """Desired 3 → 4; the id of the new instance."""
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=4)
    (new,) = [i["InstanceId"] for i in group(asg)["Instances"] if i["InstanceId"] not in before]
    return new


def _state(asg, iid: str) -> str | None:
    return next((i["LifecycleState"] for i in group(asg)["Instances"] if i["InstanceId"] == iid), None)


def _registered(elbv2, seed, iid: str) -> list[str]:
    """The target states of `iid` in the target groups that list it (registered or draining)."""
    out = []
    for arn in seed["target_group_arns"]:
        for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            if d["Target"]["Id"] == iid:
                out.append(d["TargetHealth"]["State"])
    return out


def test_launch_waits_for_continue_then_registers_and_counts_health_from_registration(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    _hook(asg, HeartbeatTimeout=3600)
    iid = _scale_out(asg)
    assert _state(asg, iid) == "Pending:Wait"
    assert asg.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"][0][
        "LifecycleState"] == "Pending:Wait"
    time.sleep(fresh.aws(100))  # long past the 15 s boot: EC2 runs it, the group still holds it back
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    assert _state(asg, iid) == "Pending:Wait"
    assert _registered(elbv2, seed, iid) == []  # not in any target group while waiting
    asg.complete_lifecycle_action(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                                  LifecycleActionResult="CONTINUE", InstanceId=iid)
    t0 = time.monotonic()
    wait_for(lambda: _state(asg, iid) == "InService", what="InService")
    assert _registered(elbv2, seed, iid) == ["initial", "initial"]
    wait_for(lambda: _registered(elbv2, seed, iid) == ["healthy", "healthy"], what="healthy")
    # health checks count from registration (3 x 10 s for shop-web), not from when the instance ran
    assert (time.monotonic() - t0) / fresh.scale >= 25
    with pytest.raises(ClientError) as err:  # the action is complete now
        asg.complete_lifecycle_action(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                                      LifecycleActionResult="CONTINUE", InstanceId=iid)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "No active Lifecycle Action" in err.value.response["Error"]["Message"]


def test_abandon_terminates_and_the_group_launches_another(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    _hook(asg)
    iid = _scale_out(asg)
    asg.complete_lifecycle_action(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                                  LifecycleActionResult="ABANDON", InstanceId=iid)
    wait_for(lambda: _state(asg, iid) is None, what="abandoned instance to leave")
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
    waiting = [i for i in group(asg)["Instances"] if i["LifecycleState"] == "Pending:Wait"]
    assert len(waiting) == 1 and waiting[0]["InstanceId"] != iid  # the replacement waits for the hook too
    assert _registered(elbv2, seed, iid) == []


def test_token_from_the_server_log_completes_and_unknown_ones_are_refused(fresh, clients):
    _, asg, _ = clients
    fresh.seed()
    _hook(asg)
    iid = _scale_out(asg)
    log = (fresh.dir / "server.log").read_text()
    (token,) = re.findall(rf"lifecycle action (\S+): group shop-web, hook {HOOK}, instance {iid}", log)
    for kw in ({"LifecycleActionToken": "00000000-0000-0000-0000-000000000000"}, {"InstanceId": "i-00000000"}):
        with pytest.raises(ClientError) as err:
            asg.complete_lifecycle_action(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                                          LifecycleActionResult="CONTINUE", **kw)
        assert err.value.response["Error"]["Code"] == "ValidationError"
    asg.complete_lifecycle_action(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK,
                                  LifecycleActionResult="CONTINUE", LifecycleActionToken=token)
    wait_for(lambda: _state(asg, iid) == "InService", what="InService")


def test_heartbeat_extends_the_timeout_then_the_default_result_applies(fresh, clients):
    _, asg, _ = clients
    fresh.seed()
    _hook(asg, HeartbeatTimeout=60)  # DefaultResult defaults to ABANDON
    hook = asg.describe_lifecycle_hooks(AutoScalingGroupName="shop-web")["LifecycleHooks"][0]
    assert (hook["DefaultResult"], hook["HeartbeatTimeout"], hook["GlobalTimeout"]) == ("ABANDON", 60, 6000)
    t0 = time.monotonic()
    iid = _scale_out(asg)
    time.sleep(fresh.aws(30))
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="shop-web", LifecycleHookName=HOOK, InstanceId=iid)
    time.sleep(max(0.0, fresh.aws(75) - (time.monotonic() - t0)))
    assert _state(asg, iid) == "Pending:Wait"  # without the heartbeat it would have been abandoned at 60 s
    wait_for(lambda: _state(asg, iid) in (None, "Terminating"), what="timeout → ABANDON")
    assert (time.monotonic() - t0) / fresh.scale >= 85


def test_default_result_continue_after_timeout(fresh, clients):
    _, asg, _ = clients
    fresh.seed()
    _hook(asg, HeartbeatTimeout=30, DefaultResult="CONTINUE")
    iid = _scale_out(asg)
    wait_for(lambda: _state(asg, iid) == "InService", what="InService after the timeout")


def test_put_lifecycle_hook_checks_and_group_specifications(fresh, clients):
    _, asg, _ = clients
    seed = fresh.seed("--no-wait")
    with pytest.raises(ClientError) as err:
        _hook(asg, HeartbeatTimeout=10)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        asg.put_lifecycle_hook(AutoScalingGroupName="nope", LifecycleHookName=HOOK,
                               LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    _hook(asg)
    hook = asg.describe_lifecycle_hooks(AutoScalingGroupName="shop-web")["LifecycleHooks"][0]
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"], hook["GlobalTimeout"]) == (3600, "ABANDON", 172800)
    assert "RoleARN" not in hook and "NotificationTargetARN" not in hook
    asg.create_auto_scaling_group(
        AutoScalingGroupName="hooked", MinSize=1, MaxSize=2, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateName": "shop-web", "Version": "1"}, VPCZoneIdentifier=seed["subnet_ids"][0],
        LifecycleHookSpecificationList=[{"LifecycleHookName": "first", "HeartbeatTimeout": 300,
                                         "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}])
    assert [i["LifecycleState"] for i in group(asg, "hooked")["Instances"]] == ["Pending:Wait"]
    asg.delete_auto_scaling_group(AutoScalingGroupName="hooked", ForceDelete=True)
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="hooked")["LifecycleHooks"] == []


def test_tag_rule_continue_after_lets_a_refresh_finish_by_itself(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    _hook(asg)
    image = make_image(ec2, seed["base_ami"], "shop-v2")
    ec2.create_tags(Resources=[image], Tags=[{"Key": "local-aws:lifecycle", "Value": "continue-after:20"}])
    version = new_version(ec2, image)
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "InstanceWarmup": 0})
    r = wait_for(lambda: (lambda r: r if "lifecycle hook" in (r.get("StatusReason") or "") else None)(
        refresh_status(asg)), what="a replacement waiting for the hook")
    assert r["Status"] == "InProgress"
    assert wait_refresh_done(asg)["Status"] == "Successful"


def test_tag_rule_abandon_after_fails_a_refresh(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    _hook(asg)
    image = make_image(ec2, seed["base_ami"], "shop-abandoned")
    ec2.create_tags(Resources=[image], Tags=[{"Key": "local-aws:lifecycle", "Value": "abandon-after:5"}])
    version = new_version(ec2, image)
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 100})
    r = wait_refresh_done(asg)
    assert r["Status"] == "Failed", r
    assert "abandoned" in r["StatusReason"]
    assert group(asg)["LaunchTemplate"]["Version"] == "1"

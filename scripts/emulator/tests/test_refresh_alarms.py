"""CloudWatch alarms in an instance refresh (Amazon EC2 Auto Scaling User Guide — "Undo changes with
a manual or auto rollback", "Start an instance refresh with auto rollback"; API Reference —
"AlarmSpecification"): an alarm in ALARM fails the refresh, or rolls it back with AutoRollback, also
while Baking; alarms not OK (or missing) are refused at start; INSUFFICIENT_DATA holds replacements."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.004
ALARM = "shop-web-5xx"


def _start(asg, version: str, **prefs):
    return asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"AlarmSpecification": {"Alarms": [ALARM]}, **prefs})


def _alarm(cw, state: str, name: str = ALARM) -> None:
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_seed_creates_the_alarm_in_ok(fresh):
    seed = fresh.seed("--no-wait")
    assert seed["alarm_names"] == [ALARM]
    alarm = fresh.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]
    assert alarm["StateValue"] == "OK"
    assert alarm["Namespace"] == "AWS/ApplicationELB" and alarm["MetricName"] == "HTTPCode_ELB_5XX_Count"
    assert alarm["Dimensions"] == [{"Name": "LoadBalancer",
                                    "Value": seed["load_balancer_arn"].split(":loadbalancer/", 1)[1]}]


def test_alarm_fails_the_refresh_without_auto_rollback(fresh, clients):
    ec2, asg, _ = clients
    cw = fresh.client("cloudwatch")
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    _start(asg, version, MinHealthyPercentage=100, MaxHealthyPercentage=100)
    wait_for(lambda: refresh_status(asg)["Status"] == "InProgress", what="InProgress")
    _alarm(cw, "ALARM")
    r = wait_refresh_done(asg)
    assert r["Status"] == "Failed", r
    assert ALARM in r["StatusReason"] and "ALARM" in r["StatusReason"]
    assert "RollbackDetails" not in r
    assert r["Preferences"]["AlarmSpecification"] == {"Alarms": [ALARM]}
    assert group(asg)["LaunchTemplate"]["Version"] == "1"


def test_alarm_while_baking_rolls_back_with_auto_rollback(fresh, clients):
    ec2, asg, _ = clients
    cw = fresh.client("cloudwatch")
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    _start(asg, version, MinHealthyPercentage=100, MaxHealthyPercentage=200, AutoRollback=True, BakeTime=3600)
    wait_for(lambda: refresh_status(asg)["Status"] == "Baking", what="Baking")
    _alarm(cw, "ALARM")
    seen = set()
    while (r := refresh_status(asg))["Status"] not in ("RollbackSuccessful", "RollbackFailed", "Failed", "Successful"):
        seen.add(r["Status"])
        time.sleep(0.005)
    assert "RollbackInProgress" in seen and r["Status"] == "RollbackSuccessful", (seen, r)
    assert ALARM in r["RollbackDetails"]["RollbackReason"]
    assert r["RollbackDetails"]["PercentageCompleteOnRollback"] == 100
    ids = [i["InstanceId"] for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"]
    images = {i["ImageId"] for res in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in res["Instances"]}
    assert images == {seed["base_ami"]}
    assert group(asg)["LaunchTemplate"]["Version"] == "1"


@pytest.mark.parametrize("case", ["ALARM", "INSUFFICIENT_DATA", "missing", "eleven"])
def test_start_refuses_alarms_that_are_not_ok(fresh, clients, case):
    _, asg, _ = clients
    cw = fresh.client("cloudwatch")
    fresh.seed("--no-wait")
    alarms = [ALARM]
    if case in ("ALARM", "INSUFFICIENT_DATA"):
        _alarm(cw, case)
    elif case == "missing":
        alarms = ["no-such-alarm"]
    else:
        alarms = [ALARM] * 11
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="shop-web",
                                   Preferences={"AlarmSpecification": {"Alarms": alarms}})
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert (alarms[0] in err.value.response["Error"]["Message"]) or case == "eleven"
    assert asg.describe_instance_refreshes(AutoScalingGroupName="shop-web")["InstanceRefreshes"] == []


def test_insufficient_data_holds_replacements_until_ok(fresh, clients):
    ec2, asg, _ = clients
    cw = fresh.client("cloudwatch")
    seed = fresh.seed()
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    # An alarm must be OK at the start; to turn it INSUFFICIENT_DATA before anything is replaced without
    # racing the 5 AWS s of Pending (20 ms here), the refresh is held by a suspended InstanceRefresh process.
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["InstanceRefresh"])
    _start(asg, version, MinHealthyPercentage=100, MaxHealthyPercentage=200)
    _alarm(cw, "INSUFFICIENT_DATA")
    asg.resume_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["InstanceRefresh"])
    r = wait_for(lambda: (lambda r: r if ALARM in (r.get("StatusReason") or "") else None)(refresh_status(asg)),
                 what="waiting on the alarm")
    assert r["Status"] == "InProgress"
    time.sleep(fresh.aws(200))
    assert {i["InstanceId"] for i in group(asg)["Instances"]} == before  # nothing launched or terminated
    assert refresh_status(asg)["PercentageComplete"] == 0
    _alarm(cw, "OK")
    assert wait_refresh_done(asg)["Status"] == "Successful"

"""Capacity changes and suspended processes while an instance refresh runs, and suspended processes
in a group (Amazon EC2 Auto Scaling User Guide — "How an instance refresh works": a scale-out during
the refresh launches the desired configuration; "Configure termination policies": scale in removes
instances from the older configuration first; "Suspend and resume a process for an Auto Scaling
group": with Launch, Terminate or InstanceRefresh suspended the refresh does not replace instances)."""

from __future__ import annotations

import time

import pytest

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.004
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


def _start(asg, version: str, **prefs) -> None:
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web", Preferences=prefs,
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}})


def _live(asg) -> list[dict]:
    return [i for i in group(asg)["Instances"] if i["LifecycleState"] in ("Pending", "Pending:Wait", "InService")]


def test_scale_out_during_a_refresh_launches_the_desired_configuration(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    _start(asg, version, MinHealthyPercentage=100, InstanceWarmup=60)
    wait_for(lambda: refresh_status(asg)["PercentageComplete"] >= 33, what="first replacement")
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=5)
    added = [i for i in group(asg)["Instances"] if i["InstanceId"] not in before]
    assert len(added) == 2 and {i["LaunchTemplate"]["Version"] for i in added} == {version}
    while True:
        old = [i for i in _live(asg) if i["LaunchTemplate"]["Version"] != version]
        r = refresh_status(asg)  # read after the group: old instances it counts were there before
        if r["Status"] in TERMINAL:
            break
        assert 0 <= r["PercentageComplete"] <= 100 and r["InstancesToUpdate"] >= 0
        if r["PercentageComplete"] == 100:  # it never claims completion while old instances serve
            assert not old and r["InstancesToUpdate"] == 0, (r, old)
        else:
            assert r["InstancesToUpdate"] > 0
    assert r["Status"] == "Successful", r
    assert r["PercentageComplete"] == 100 and r["InstancesToUpdate"] == 0
    live = _live(asg)
    assert len(live) == 5 and {i["LaunchTemplate"]["Version"] for i in live} == {version}
    assert group(asg)["LaunchTemplate"]["Version"] == version


def test_scale_in_during_a_refresh_removes_old_instances_first(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=1)
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    _start(asg, version, MinHealthyPercentage=100, InstanceWarmup=60)  # one at a time
    new = wait_for(lambda: [i for i in group(asg)["Instances"] if i["LaunchTemplate"]["Version"] == version],
                   what="a replacement")
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=2)
    g = group(asg)
    leaving = [i for i in g["Instances"] if i["LifecycleState"] == "Terminating"
               and i["InstanceId"] != new[0]["InstanceId"]]
    assert [i["LaunchTemplate"]["Version"] for i in leaving if i["LaunchTemplate"]["Version"] == version] == []
    assert any(i["InstanceId"] == new[0]["InstanceId"] and i["LifecycleState"] != "Terminating" for i in g["Instances"])
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful", r
    live = _live(asg)
    assert len(live) == 2 and {i["LaunchTemplate"]["Version"] for i in live} == {version}
    assert new[0]["InstanceId"] in {i["InstanceId"] for i in live}


@pytest.mark.parametrize("process", ["Launch", "Terminate", "InstanceRefresh"])
def test_a_suspended_process_pauses_the_refresh_until_resumed(fresh, clients, process):
    ec2, asg, _ = clients
    seed = fresh.seed()
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=[process])
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    _start(asg, version, MinHealthyPercentage=50, InstanceWarmup=0)
    r = wait_for(lambda: (lambda r: r if "paused" in (r.get("StatusReason") or "") else None)(refresh_status(asg)),
                 what="paused")
    assert r["Status"] == "InProgress" and process in r["StatusReason"]
    time.sleep(fresh.aws(300))
    g = group(asg)
    assert {i["InstanceId"] for i in g["Instances"]} == before  # nothing launched, nothing terminated
    assert {i["LifecycleState"] for i in g["Instances"]} == {"InService"}
    assert refresh_status(asg)["Status"] == "InProgress"  # paused, not failed
    asg.resume_processes(AutoScalingGroupName="shop-web", ScalingProcesses=[process])
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful", r
    assert not before & {i["InstanceId"] for i in _live(asg)}


def test_suspended_processes_in_the_group(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    first = group(asg)["Instances"][0]["InstanceId"]
    # Launch suspended: the desired capacity is not met until it is resumed
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["Launch"])
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=4)
    time.sleep(fresh.aws(60))
    assert len(_live(asg)) == 3
    # AddToLoadBalancer suspended as well: what is launched meanwhile is never registered
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["AddToLoadBalancer"])
    asg.resume_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["Launch"])
    wait_for(lambda: len(_live(asg)) == 4, what="the fourth instance")
    (added,) = [i["InstanceId"] for i in _live(asg)][3:]
    asg.resume_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["AddToLoadBalancer"])
    time.sleep(fresh.aws(60))
    registered = {d["Target"]["Id"] for d in elbv2.describe_target_health(
        TargetGroupArn=seed["target_group_arns"][0])["TargetHealthDescriptions"]}
    assert added not in registered and first in registered
    # ReplaceUnhealthy suspended: an unhealthy instance is marked, not replaced, until resumed
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["ReplaceUnhealthy"])
    ec2.create_tags(Resources=[first], Tags=[{"Key": "local-aws:health", "Value": "unhealthy"}])
    wait_for(lambda: any(i["InstanceId"] == first and i["HealthStatus"] == "Unhealthy"
                         for i in group(asg)["Instances"]), what="marked Unhealthy")
    time.sleep(fresh.aws(60))
    assert next(i for i in group(asg)["Instances"] if i["InstanceId"] == first)["LifecycleState"] == "InService"
    asg.resume_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["ReplaceUnhealthy"])
    wait_for(lambda: all(i["InstanceId"] != first or i["LifecycleState"] == "Terminating"
                         for i in group(asg)["Instances"]), what="replaced after the resume")
    # HealthCheck suspended: not even marked
    second = [i["InstanceId"] for i in _live(asg) if i["InstanceId"] not in (first, added)][0]
    asg.suspend_processes(AutoScalingGroupName="shop-web", ScalingProcesses=["HealthCheck"])
    ec2.create_tags(Resources=[second], Tags=[{"Key": "local-aws:health", "Value": "unhealthy"}])
    time.sleep(fresh.aws(150))
    assert next(i for i in group(asg)["Instances"] if i["InstanceId"] == second)["HealthStatus"] == "Healthy"

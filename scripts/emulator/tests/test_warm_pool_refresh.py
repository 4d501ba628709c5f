"""Instance refresh of a group with a warm pool (Amazon EC2 Auto Scaling User Guide — "Warm pools for
Amazon EC2 Auto Scaling": "An instance refresh first replaces InService instances. Then it replaces
instances in the warm pool."; API Reference — "InstanceRefreshProgressDetails",
"InstanceRefreshWarmPoolProgress"; "Undo changes with a manual or auto rollback")."""

from __future__ import annotations

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done
from .test_warm_pool import _pool_is, _warm_group

TIME_SCALE = 0.004
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


def _versions(asg) -> tuple[set, set]:
    live = {i["LaunchTemplate"]["Version"] for i in group(asg, "warm")["Instances"]
            if i["LifecycleState"] in ("Pending", "InService")}
    warm = {i["LaunchTemplate"]["Version"] for i in asg.describe_warm_pool(AutoScalingGroupName="warm")["Instances"]
            if not i["LifecycleState"].startswith("Warmed:Terminating")}
    return live, warm


def test_refresh_replaces_live_instances_first_then_the_warm_pool(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _warm_group(asg, seed, max_size=4)
    asg.put_warm_pool(AutoScalingGroupName="warm")
    wait_for(lambda: _pool_is(asg, 2), what="2 Warmed:Stopped")
    image = make_image(ec2, seed["base_ami"], "shop-v2")
    version = new_version(ec2, image)
    asg.start_instance_refresh(AutoScalingGroupName="warm", Preferences={"MinHealthyPercentage": 50},
                               DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web",
                                                                        "Version": version}})
    warm_progress = []
    while (r := refresh_status(asg, "warm"))["Status"] not in TERMINAL:
        live, warm = _versions(asg)
        if "1" in live:  # old instances still in service: the warm pool is not touched yet
            assert warm == {"1"}, (live, warm)
        if "WarmPoolProgress" in r.get("ProgressDetails", {}):
            warm_progress.append(r["ProgressDetails"]["WarmPoolProgress"])
    assert r["Status"] == "Successful", r
    assert warm_progress and warm_progress[0]["InstancesToUpdate"] == 2
    assert r["ProgressDetails"]["WarmPoolProgress"] == {"PercentageComplete": 100, "InstancesToUpdate": 0}
    assert r["ProgressDetails"]["LivePoolProgress"] == {"PercentageComplete": 100, "InstancesToUpdate": 0}
    pool = wait_for(lambda: _pool_is(asg, 2), what="2 Warmed:Stopped")
    assert _versions(asg) == ({version}, {version})
    ids = list(pool) + [i["InstanceId"] for i in group(asg, "warm")["Instances"]]
    images = {i["ImageId"] for res in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in res["Instances"]}
    assert images == {image}


def test_rollback_restores_live_and_warm_instances(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    _warm_group(asg, seed, max_size=4)
    asg.put_warm_pool(AutoScalingGroupName="warm")
    wait_for(lambda: _pool_is(asg, 2), what="2 Warmed:Stopped")
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(AutoScalingGroupName="warm", Preferences={"MinHealthyPercentage": 50},
                               DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web",
                                                                        "Version": version}})
    wait_for(lambda: version in _versions(asg)[1], what="the warm pool being replaced")
    asg.rollback_instance_refresh(AutoScalingGroupName="warm")
    r = wait_refresh_done(asg, "warm")
    assert r["Status"] == "RollbackSuccessful", r
    wait_for(lambda: _pool_is(asg, 2), what="2 Warmed:Stopped")
    assert _versions(asg) == ({"1"}, {"1"})
    assert group(asg, "warm")["LaunchTemplate"]["Version"] == "1"

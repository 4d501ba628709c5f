"""Warm pools (Amazon EC2 Auto Scaling User Guide — "Warm pools for Amazon EC2 Auto Scaling", "Use
lifecycle hooks with a warm pool", "Examples for creating and managing warm pools with the AWS CLI";
API Reference — "PutWarmPool", "DescribeWarmPool", "DeleteWarmPool", "InstanceRefreshWarmPoolProgress"):
sizing, the Warmed:* states, scale-out drawing on the pool, reuse on scale in, launch hooks on the
way in and out, deletion. Instance refresh with a warm pool: test_warm_pool_refresh.py."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .conftest import group, wait_for

TIME_SCALE = 0.02  # boot 300 ms, stop and shutdown 200 ms: long enough to see the transitions


def _warm_group(asg, seed, desired: int = 2, max_size: int = 5, name: str = "warm") -> None:
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "shop-web", "Version": "1"},
        MinSize=1, MaxSize=max_size, DesiredCapacity=desired, VPCZoneIdentifier=",".join(seed["subnet_ids"]),
        TargetGroupARNs=seed["target_group_arns"], HealthCheckType="ELB", HealthCheckGracePeriod=60,
        DefaultInstanceWarmup=0)


def _pool(asg, name: str = "warm") -> dict[str, str]:
    return {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_warm_pool(AutoScalingGroupName=name)["Instances"]}


def _pool_is(asg, count: int, state: str = "Warmed:Stopped", name: str = "warm") -> dict[str, str] | None:
    pool = _pool(asg, name)
    return pool if len(pool) == count and set(pool.values()) == {state} else None


def _watch(asg, until, name: str = "warm") -> tuple[set[str], object]:
    """Poll DescribeWarmPool until `until(pool)` is truthy; (every LifecycleState seen, its value)."""
    seen: set[str] = set()

    def check():
        pool = _pool(asg, name)
        seen.update(pool.values())
        return until(pool)

    return seen, wait_for(check, what="warm pool state")


def _ec2_states(ec2, ids) -> dict[str, str]:
    return {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
            for i in r["Instances"]}


def _registered(elbv2, seed) -> set[str]:
    return {d["Target"]["Id"] for arn in seed["target_group_arns"]
            for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] != "draining"}


def test_pool_is_sized_from_the_group_and_kept_outside_it(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    _warm_group(asg, seed)
    asg.put_warm_pool(AutoScalingGroupName="warm")
    seen, pool = _watch(asg, lambda p: _pool_is(asg, 3))  # max 5 - desired 2
    assert "Warmed:Pending" in seen
    assert set(_ec2_states(ec2, pool).values()) == {"stopped"}
    g = group(asg, "warm")
    assert g["WarmPoolSize"] == 3 and g["WarmPoolConfiguration"] == {"MinSize": 0, "PoolState": "Stopped"}
    assert not set(pool) & {i["InstanceId"] for i in g["Instances"]}  # not members of the group
    assert not set(pool) & _registered(elbv2, seed)  # never in the target groups
    details = asg.describe_auto_scaling_instances(InstanceIds=list(pool))["AutoScalingInstances"]
    assert {d["LifecycleState"] for d in details} == {"Warmed:Stopped"}
    # MaxGroupPreparedCapacity 3 - desired 2 = 1: the pool shrinks; MinSize 2 then wins
    asg.put_warm_pool(AutoScalingGroupName="warm", MaxGroupPreparedCapacity=3)
    seen, kept = _watch(asg, lambda p: _pool_is(asg, 1))
    assert "Warmed:Terminating" in seen
    gone = set(pool) - set(kept)
    assert len(gone) == 2 and set(_ec2_states(ec2, gone).values()) == {"terminated"}
    asg.put_warm_pool(AutoScalingGroupName="warm", MaxGroupPreparedCapacity=3, MinSize=2)
    wait_for(lambda: _pool_is(asg, 2), what="pool of MinSize 2")
    assert group(asg, "warm")["WarmPoolConfiguration"]["MaxGroupPreparedCapacity"] == 3


def test_scale_out_draws_on_the_pool_and_scale_in_reuses(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    _warm_group(asg, seed, max_size=4)
    asg.put_warm_pool(AutoScalingGroupName="warm", InstanceReusePolicy={"ReuseOnScaleIn": True})
    pool = wait_for(lambda: _pool_is(asg, 2), what="2 Warmed:Stopped")
    members = {i["InstanceId"] for i in group(asg, "warm")["Instances"]}
    asg.set_desired_capacity(AutoScalingGroupName="warm", DesiredCapacity=3)
    (drawn,) = [i for i in group(asg, "warm")["Instances"] if i["InstanceId"] not in members]
    assert drawn["InstanceId"] in pool and drawn["InstanceId"] not in _pool(asg)  # a warm start
    assert _ec2_states(ec2, [drawn["InstanceId"]])[drawn["InstanceId"]] in ("pending", "running")  # started
    wait_for(lambda: any(i["InstanceId"] == drawn["InstanceId"] and i["LifecycleState"] == "InService"
                         for i in group(asg, "warm")["Instances"]), what="InService")
    assert drawn["InstanceId"] in _registered(elbv2, seed)
    assert _pool_is(asg, 1)  # max 4 - desired 3: the drawn instance is not replaced
    # scale in with ReuseOnScaleIn: back into the pool (deregistered, stopped), not terminated
    asg.set_desired_capacity(AutoScalingGroupName="warm", DesiredCapacity=2)
    in_group = members | {drawn["InstanceId"]}
    (returned,) = wait_for(lambda: [i for i, s in _pool(asg).items() if i in in_group and s == "Warmed:Stopped"],
                           what="an instance returned to the pool")
    assert _ec2_states(ec2, [returned])[returned] == "stopped"
    assert returned not in {i["InstanceId"] for i in group(asg, "warm")["Instances"]}
    assert returned not in _registered(elbv2, seed)
    assert _pool_is(asg, 2)


def test_refusals_running_pool_and_deletion(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--no-wait")
    with pytest.raises(ClientError) as err:
        asg.put_warm_pool(AutoScalingGroupName="nope")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    asg.create_auto_scaling_group(
        AutoScalingGroupName="mixed", MinSize=1, MaxSize=2, DesiredCapacity=1, VPCZoneIdentifier=seed["subnet_ids"][0],
        MixedInstancesPolicy={"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": "shop-web"},
                                                 "Overrides": [{"InstanceType": "t3.micro"}]}})
    with pytest.raises(ClientError) as err:  # "You cannot add a warm pool to ... a mixed instances policy"
        asg.put_warm_pool(AutoScalingGroupName="mixed")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    _warm_group(asg, seed, desired=1, max_size=3)
    asg.put_warm_pool(AutoScalingGroupName="warm", PoolState="Running")
    pool = wait_for(lambda: _pool_is(asg, 2, "Warmed:Running"), what="2 Warmed:Running")
    assert set(_ec2_states(ec2, pool).values()) == {"running"}
    asg.delete_warm_pool(AutoScalingGroupName="warm", ForceDelete=True)  # gone at once, instances terminating
    assert "WarmPoolConfiguration" not in asg.describe_warm_pool(AutoScalingGroupName="warm")
    assert "WarmPoolConfiguration" not in group(asg, "warm")
    wait_for(lambda: set(_ec2_states(ec2, pool).values()) == {"terminated"} and not _pool(asg), what="terminated")
    # without ForceDelete: PendingDelete while an instance's lifecycle action is outstanding
    asg.put_lifecycle_hook(AutoScalingGroupName="warm", LifecycleHookName="init", HeartbeatTimeout=3600,
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    asg.put_warm_pool(AutoScalingGroupName="warm", MaxGroupPreparedCapacity=2)
    (waiting,) = wait_for(lambda: _pool_is(asg, 1, "Warmed:Pending:Wait"), what="Warmed:Pending:Wait")
    asg.delete_warm_pool(AutoScalingGroupName="warm")
    answer = asg.describe_warm_pool(AutoScalingGroupName="warm")
    assert answer["WarmPoolConfiguration"]["Status"] == "PendingDelete"
    assert [i["LifecycleState"] for i in answer["Instances"]] == ["Warmed:Pending:Wait"]
    with pytest.raises(ClientError):  # no second pool while this one is being deleted
        asg.put_warm_pool(AutoScalingGroupName="warm")
    asg.complete_lifecycle_action(AutoScalingGroupName="warm", LifecycleHookName="init",
                                  LifecycleActionResult="CONTINUE", InstanceId=waiting)
    seen, _ = _watch(asg, lambda p: not p and "WarmPoolConfiguration" not in asg.describe_warm_pool(
        AutoScalingGroupName="warm"))
    assert "Warmed:Terminating" in seen
    assert _ec2_states(ec2, [waiting])[waiting] == "terminated"


def test_launch_hook_waits_entering_and_leaving_the_pool(fresh, clients):
    _, asg, elbv2 = clients
    seed = fresh.seed("--no-wait")
    _warm_group(asg, seed, desired=1, max_size=2)
    wait_for(lambda: group(asg, "warm")["Instances"][0]["LifecycleState"] == "InService", what="InService")
    asg.put_lifecycle_hook(AutoScalingGroupName="warm", LifecycleHookName="init", HeartbeatTimeout=3600,
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    asg.put_warm_pool(AutoScalingGroupName="warm")
    (iid,) = wait_for(lambda: _pool_is(asg, 1, "Warmed:Pending:Wait"), what="Warmed:Pending:Wait")
    asg.complete_lifecycle_action(AutoScalingGroupName="warm", LifecycleHookName="init",
                                  LifecycleActionResult="CONTINUE", InstanceId=iid)
    wait_for(lambda: _pool_is(asg, 1), what="Warmed:Stopped")
    asg.set_desired_capacity(AutoScalingGroupName="warm", DesiredCapacity=2)
    state = {i["InstanceId"]: i["LifecycleState"] for i in group(asg, "warm")["Instances"]}
    assert state[iid] == "Pending:Wait"  # the second wait, on the way to InService
    assert iid not in _registered(elbv2, seed)
    asg.complete_lifecycle_action(AutoScalingGroupName="warm", LifecycleHookName="init",
                                  LifecycleActionResult="CONTINUE", InstanceId=iid)
    wait_for(lambda: {i["InstanceId"]: i["LifecycleState"] for i in group(asg, "warm")["Instances"]}[iid]
             == "InService", what="InService")
    assert iid in _registered(elbv2, seed)



"""Warm pools: pre-initialized instances kept next to an Auto Scaling group (Stopped, Running or
Hibernated), sized from the group's capacity, drawn on when the group needs capacity and replenished
with new launches; PutWarmPool, DescribeWarmPool, DeleteWarmPool and what DescribeAutoScalingGroups
and DescribeAutoScalingInstances show of them.

Follows the Amazon EC2 Auto Scaling User Guide — "Warm pools for Amazon EC2 Auto Scaling" (warm pool
size = MaxGroupPreparedCapacity, or the group's MaxSize, minus the desired capacity, at least MinSize;
instances leaving the warm pool count toward the desired capacity; a depleted pool means a cold start
launched directly into the group; "You cannot add a warm pool to Auto Scaling groups that have a mixed
instances policy or that launch Spot Instances"; scale in terminates unless InstanceReusePolicy
ReuseOnScaleIn returns the instance to the pool; a pool larger than needed is shrunk), "Use lifecycle
hooks with a warm pool" (Warmed:Pending → Warmed:Pending:Wait with a launch hook →
Warmed:Pending:Proceed → Warmed:Stopped | Warmed:Running | Warmed:Hibernated; leaving: Pending →
Pending:Wait → InService), "Examples for creating and managing warm pools with the AWS CLI"
(DeleteWarmPool --force-delete terminates the instances and their lifecycle actions at once); API
Reference — "PutWarmPool", "DescribeWarmPool", "DeleteWarmPool", "WarmPoolConfiguration" (Status
PendingDelete). Instance refresh of warm pool instances is in refresh_warm.py.

Our choices (README): only instances that finished entering the pool (Warmed:Stopped/Running/
Hibernated) are drawn on, oldest first, and while an instance refresh runs only those that match its
desired configuration; Hibernated behaves as Stopped (EC2 `stopped`); DeleteWarmPool without
ForceDelete marks the pool PendingDelete and terminates its instances once their outstanding lifecycle
actions are done (ForceDelete "deletes any outstanding lifecycle actions" and does not wait), and the
pool is gone once they are; a ValidationError with our text for the refusals AWS documents without a
code.
"""

from __future__ import annotations

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, FakeWarmPool, InstanceState
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import clock, lifecycle_hooks
from .asg_launch import current_config, launch, launch_instance
from .errors import validation_error
from .group_members import deregister, live_states, reconcile, requested_group, warm_states

READY = ("Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated")
POOL_STATES = ("Stopped", "Running", "Hibernated")


def _int(value, default=None):
    return default if value is None or value == "" else int(value)


def target_size(group: FakeAutoScalingGroup) -> int:
    pool = group.warm_pool
    if pool is None or getattr(pool, "status", None) == "PendingDelete":
        return 0
    prepared = _int(pool.max_group_prepared_capacity)
    if prepared is None or prepared == -1:
        prepared = group.max_size or 0
    return max(_int(pool.min_size, 0), prepared - (group.desired_capacity or 0))


def staying(group: FakeAutoScalingGroup) -> list[InstanceState]:
    """Warm instances that are not on their way out."""
    return [s for s in warm_states(group) if not s.lifecycle_state.startswith("Warmed:Terminating")]


def _final_state(group: FakeAutoScalingGroup) -> str:
    pool_state = getattr(group.warm_pool, "pool_state", None) or "Stopped"
    return f"Warmed:{pool_state}"


def _enter(group: FakeAutoScalingGroup, count: int) -> None:
    """Launch `count` instances into the warm pool (Warmed:Pending, or Warmed:Pending:Wait with hooks)."""
    for _ in range(count):
        state = launch_instance(group)
        if state is None:  # refused: the group tries again later
            break
        group.instance_states.remove(state)
        state.lifecycle_state = "Warmed:Pending"
        lifecycle_hooks.begin(group, state, "Warmed:Pending:Wait")
        warm_states(group).append(state)


def terminate(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    if state.lifecycle_state.startswith("Warmed:Terminating"):
        return
    state.lifecycle_state = "Warmed:Terminating"
    if state.instance.state not in ("shutting-down", "terminated"):
        group.ec2_backend.terminate_instances([state.instance.id])


def take(group: FakeAutoScalingGroup, count: int) -> int:
    """Move up to `count` warmed instances into the group (Pending, or Pending:Wait with hooks); how
    many were taken. While an instance refresh runs, only instances on its desired configuration."""
    override = getattr(group, "_la_launch_override", None)
    ready = [s for s in warm_states(group) if s.lifecycle_state in READY
             and (override is None or override.matches(s.instance))]
    ready.sort(key=lambda s: s.instance.launch_time)
    for state in ready[:count]:
        warm_states(group).remove(state)
        if state.instance.state in ("stopped", "stopping"):
            state.instance.start()
        state.lifecycle_state = "Pending"
        if any(p["ProcessName"] == "AddToLoadBalancer" for p in group.suspended_processes):
            state.instance._la_no_lb = True
        lifecycle_hooks.begin(group, state)  # the second launch-hook wait, before InService
        group.instance_states.append(state)
    reconcile(group)
    return min(count, len(ready))


def add_capacity(group: FakeAutoScalingGroup, count: int) -> None:
    """Capacity the group needs: from the warm pool first (a warm start), then new launches."""
    if count <= 0:
        return
    launch(group, count - take(group, count))


def return_to_pool(group: FakeAutoScalingGroup, state: InstanceState) -> bool:
    """Scale in with ReuseOnScaleIn: the instance leaves the group (deregistered, drained) and goes
    back to the warm pool instead of being terminated. False when the pool does not reuse."""
    pool = getattr(group, "warm_pool", None)
    if pool is None or not (pool.instance_reuse_policy or {}).get("ReuseOnScaleIn"):
        return False
    group.instance_states.remove(state)
    state.lifecycle_state = "Warmed:Pending"
    state._la_warm_after = clock.deadline(deregister(group, state.instance.id))
    warm_states(group).append(state)
    reconcile(group)
    return True


def _tick_pool(group: FakeAutoScalingGroup) -> None:
    final = _final_state(group)
    for state in list(warm_states(group)):
        inst = state.instance
        if state.lifecycle_state.startswith("Warmed:Terminating"):
            if inst.state == "terminated":
                warm_states(group).remove(state)
            continue
        if inst.state in ("shutting-down", "terminated"):  # terminated from under us: the pool replaces it
            state.lifecycle_state = "Warmed:Terminating"
            continue
        if state.lifecycle_state == "Warmed:Pending:Wait":
            result = lifecycle_hooks.decide(group, state)
            if result == "CONTINUE":
                state.lifecycle_state = "Warmed:Pending:Proceed"
            elif result == "ABANDON":
                inst._la_abandoned = True
                terminate(group, state)
            continue
        if getattr(state, "_la_warm_after", 0) > clock.now():
            continue  # a reused instance still draining
        if state.lifecycle_state in ("Warmed:Pending", "Warmed:Pending:Proceed"):
            if final == "Warmed:Running":
                if inst.state == "running":
                    state.lifecycle_state = final
                elif inst.state == "stopped":
                    inst.start()
            elif inst.state == "running":
                inst.stop()
            elif inst.state == "stopped":
                state.lifecycle_state = final
    if group.warm_pool is None:
        return
    if getattr(group.warm_pool, "status", None) == "PendingDelete":
        for state in warm_states(group):
            if state.lifecycle_state != "Warmed:Pending:Wait":  # outstanding lifecycle actions are awaited
                terminate(group, state)
        if not warm_states(group):
            group.warm_pool = None
        return
    suspended = {p["ProcessName"] for p in group.suspended_processes}
    present = staying(group)
    missing = target_size(group) - len(present)
    if missing > 0 and "Launch" not in suspended:
        _enter(group, missing)
    elif missing < 0 and "Terminate" not in suspended:
        current = current_config(group)
        surplus = sorted(present, key=lambda s: (current is not None and current.matches(s.instance),
                                                 s.instance.launch_time))
        for state in surplus[:-missing]:
            terminate(group, state)


def advance_warm_pools() -> None:
    from moto.autoscaling.models import autoscaling_backends

    for backend in clock.backends(autoscaling_backends):
        for group in list(backend.autoscaling_groups.values()):
            if group.warm_pool is not None or warm_states(group):
                _tick_pool(group)


# --- the API ----------------------------------------------------------------------------------

def _launches_spot(group: FakeAutoScalingGroup) -> bool:
    config = current_config(group)
    if config is None:
        return False
    if config.kind == "lc":
        return bool(config.lc.spot_price)
    choice = config.choose(live_states(group))
    return bool(choice and choice.spot)


def put_warm_pool(self: AutoScalingResponse) -> EmptyResult:
    group = requested_group(self)
    if group.mixed_instances_policy or _launches_spot(group):
        raise validation_error("You cannot add a warm pool to an Auto Scaling group that has a mixed instances "
                               "policy or that launches Spot Instances.")
    prepared = _int(self._get_param("MaxGroupPreparedCapacity"))
    min_size = _int(self._get_param("MinSize"))
    pool_state = self._get_param("PoolState") or "Stopped"
    if prepared is not None and prepared < -1:
        raise validation_error(f"1 validation error detected: Value '{prepared}' at 'maxGroupPreparedCapacity' "
                               "failed to satisfy constraint: Member must have value greater than or equal to -1")
    if min_size is not None and min_size < 0:
        raise validation_error(f"1 validation error detected: Value '{min_size}' at 'minSize' failed to satisfy "
                               "constraint: Member must have value greater than or equal to 0")
    if pool_state not in POOL_STATES:
        raise validation_error(f"Invalid value for PoolState: {pool_state!r}; valid values are Stopped | Running | "
                               "Hibernated.")
    if getattr(group.warm_pool, "status", None) == "PendingDelete":
        raise validation_error("The warm pool is being deleted; wait until it is gone before creating another.")
    group.warm_pool = FakeWarmPool(prepared, min_size, pool_state, self._get_param("InstanceReusePolicy"))
    group.warm_pool.status = None
    return EmptyResult()


def _instance_row(state: InstanceState) -> dict:
    row = {"InstanceId": state.instance.id, "InstanceType": state.instance.instance_type,
           "AvailabilityZone": state.availability_zone, "LifecycleState": state.lifecycle_state,
           "HealthStatus": state.health_status, "ProtectedFromScaleIn": bool(state.protected_from_scale_in)}
    if state.launch_template:
        row["LaunchTemplate"] = state.launch_template
    if state.launch_configuration_name:
        row["LaunchConfigurationName"] = state.launch_configuration_name
    return row


def configuration(group: FakeAutoScalingGroup) -> dict | None:
    pool = group.warm_pool
    if pool is None:
        return None
    out = {"MinSize": _int(pool.min_size, 0), "PoolState": pool.pool_state or "Stopped"}
    if _int(pool.max_group_prepared_capacity) is not None:
        out["MaxGroupPreparedCapacity"] = _int(pool.max_group_prepared_capacity)
    if pool.instance_reuse_policy:
        out["InstanceReusePolicy"] = pool.instance_reuse_policy
    if getattr(pool, "status", None):
        out["Status"] = pool.status
    return out


def describe_warm_pool(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    rows = [_instance_row(s) for s in warm_states(group)]
    max_records = self._get_int_param("MaxRecords") or 50
    start = int(self._get_param("NextToken") or 0)
    result = {"Instances": rows[start:start + max_records]}
    if start + max_records < len(rows):
        result["NextToken"] = str(start + max_records)
    if configuration(group) is not None:
        result["WarmPoolConfiguration"] = configuration(group)
    return ActionResult(result)


def delete_warm_pool(self: AutoScalingResponse) -> EmptyResult:
    group = requested_group(self)
    if group.warm_pool is None:
        raise validation_error(f"No warm pool found for Auto Scaling group {group.name}.")
    if self._get_bool_param("ForceDelete", False) or not warm_states(group):
        group.warm_pool = None
        for state in warm_states(group):  # "along with all of its associated instances, without waiting"
            state.__dict__.pop("_la_actions", None)  # "and any outstanding lifecycle actions"
            terminate(group, state)
    else:
        group.warm_pool.status = "PendingDelete"  # _tick_pool terminates, after their lifecycle actions
    return EmptyResult()


_orig_describe_instances = AutoScalingBackend.describe_auto_scaling_instances


def _describe_auto_scaling_instances(self: AutoScalingBackend, instance_ids):
    """Warm pool instances are Auto Scaling instances too (their LifecycleState says Warmed:...)."""
    found = _orig_describe_instances(self, instance_ids)
    for group in self.autoscaling_groups.values():
        found.extend(s for s in warm_states(group) if not instance_ids or s.instance.id in instance_ids)
    return found


def install() -> None:
    AutoScalingResponse.put_warm_pool = put_warm_pool
    AutoScalingResponse.describe_warm_pool = describe_warm_pool
    AutoScalingResponse.delete_warm_pool = delete_warm_pool
    AutoScalingBackend.describe_auto_scaling_instances = _describe_auto_scaling_instances
    FakeAutoScalingGroup.warm_pool_configuration = property(configuration)
    FakeAutoScalingGroup.warm_pool_size = property(lambda self: len(staying(self)) if self.warm_pool else None)

"""The Auto Scaling group lifecycle moto lacks, driven by time: instances that go Pending → InService
→ Terminating (waiting out connection draining) → gone, ELB health-check replacement, desired
capacity kept (replacements of EC2-terminated members too), and the default termination policy.
What new instances launch from is asg_launch; target-group membership is group_members.

Follows the Amazon EC2 Auto Scaling User Guide — "Amazon EC2 Auto Scaling instance lifecycle"
(Pending, InService, Terminating; Pending:Wait → Pending:Proceed with launch lifecycle hooks, decided
in lifecycle_hooks), "Health checks for instances in an Auto Scaling group" and "Set
the health check grace period" (with HealthCheckType ELB, an InService instance whose target is
unhealthy after the grace period is marked Unhealthy and replaced), and "Configure termination
policies" (default policy: scale in from the AZ with most instances, prefer instances on a launch
configuration, then those not on the current configuration, then the oldest), and "Suspend and
resume a process for an Auto Scaling group": Launch suspended → nothing is launched (the desired
capacity is caught up on resume); Terminate suspended → no scale in and no replacement of unhealthy
instances; HealthCheck suspended → instances are not marked Unhealthy; ReplaceUnhealthy suspended →
they are marked, not replaced (replaced on resume); AddToLoadBalancer suspended → instances launched
meanwhile are never registered (group_members). An Unhealthy status set with SetInstanceHealth is
replaced like one the health checks found. Scale-out draws on the warm pool first (warm_pool).

moto made instances InService at once, never deregistered instances that leave, did not register
the replacements of EC2-terminated members and never looked at target health.
"""

from __future__ import annotations

from moto.autoscaling.models import (
    AutoScalingBackend,
    FakeAutoScalingGroup,
    InstanceState,
    TerminateInstanceActivity,
    autoscaling_backends,
)
from moto.autoscaling.responses import AutoScalingResponse

from . import clock, lifecycle_hooks, warm_pool
from .asg_launch import current_config
from .group_members import LIVE, deregister, elb_unhealthy, live_states, reconcile, warm_states


def begin_termination(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    """Terminating: deregister from the target groups, wait out the deregistration delay, then
    terminate the EC2 instance (EC2 Auto Scaling instance lifecycle)."""
    if state.lifecycle_state in ("Terminating", "Terminated"):
        return
    state.lifecycle_state = "Terminating"
    state._la_terminate_at = clock.deadline(deregister(group, state.instance.id))


def _choose_for_scale_in(group: FakeAutoScalingGroup, n: int) -> list[InstanceState]:
    chosen: list[InstanceState] = []
    candidates = [s for s in live_states(group) if not s.protected_from_scale_in]
    current = current_config(group)
    for _ in range(n):
        if not candidates:
            break
        zones: dict[str, int] = {}
        for s in live_states(group):
            if s not in chosen:
                zones[s.availability_zone] = zones.get(s.availability_zone, 0) + 1
        busiest = max(zones.values()) if zones else 0
        pool = [s for s in candidates if zones.get(s.availability_zone, 0) == busiest] or candidates
        # launch configurations first, then instances not on the current configuration, then the oldest
        pool.sort(key=lambda s: (getattr(s.instance, "_la_lc", None) is None, current is not None
                                 and current.matches(s.instance), s.instance.launch_time))
        pick = pool[0]
        chosen.append(pick)
        candidates.remove(pick)
    return chosen


def suspended(group: FakeAutoScalingGroup) -> set[str]:
    return {p["ProcessName"] for p in group.suspended_processes}


def scale_in(group: FakeAutoScalingGroup, n: int) -> None:
    """Remove n instances by the default termination policy: terminated, or returned to the warm
    pool when its InstanceReusePolicy says so. Nothing while Terminate is suspended."""
    if n <= 0 or "Terminate" in suspended(group):
        return
    for state in _choose_for_scale_in(group, n):
        if not warm_pool.return_to_pool(group, state):
            begin_termination(group, state)


def _set_desired_capacity(self: FakeAutoScalingGroup, new_capacity) -> None:
    previous = getattr(self, "desired_capacity", None)  # unset while moto's constructor runs
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    delta = (self.desired_capacity or 0) - len(live_states(self))
    if delta > 0 and "Launch" not in suspended(self):
        warm_pool.add_capacity(self, delta)
    elif delta < 0:
        if getattr(self, "_la_refresh_active", False) and previous is not None:
            # an instance refresh may run above the desired capacity (MaxHealthyPercentage): scale in
            # by the decrease only, not by the refresh's extra instances
            delta = -max(0, min(-delta, previous - self.desired_capacity))
        scale_in(self, -delta)
    reconcile(self)


def _unhealthy(group: FakeAutoScalingGroup, state: InstanceState, stopped: set[str]) -> bool:
    """What the group's health checks say now ("Health checks for instances in an Auto Scaling group"):
    an EC2 instance that is not running, or (HealthCheckType ELB, after the grace period) a target
    that is unhealthy in any of the group's target groups."""
    if "HealthCheck" in stopped:
        return False
    inst = state.instance
    if inst.state in ("stopping", "stopped", "shutting-down", "terminated"):
        return True
    grace_over = state.lifecycle_state == "InService" and (
        clock.aws_elapsed(getattr(state, "_la_in_service_at", clock.now())) >= (group.health_check_grace_period or 0))
    return grace_over and "ELB" in (group.health_check_type or "") and elb_unhealthy(group, inst.id)


def _tick_group(group: FakeAutoScalingGroup) -> None:
    now = clock.now()
    stopped = suspended(group)
    for state in list(group.instance_states):
        inst = state.instance
        if state.lifecycle_state == "Pending:Wait":
            result = lifecycle_hooks.decide(group, state)
            if result == "CONTINUE":
                state.lifecycle_state = "Pending:Proceed"  # registered by reconcile() below
            elif result == "ABANDON":  # "terminates and replaces the instance"
                inst._la_abandoned = True
                begin_termination(group, state)
        if state.lifecycle_state in ("Pending", "Pending:Proceed") and inst.state == "running":
            state.lifecycle_state = "InService"  # the health check grace period starts here
            state._la_in_service_at = now
        if state.lifecycle_state == "Terminating" and getattr(state, "_la_terminate_at", 0) <= now:
            if inst.state not in ("shutting-down", "terminated"):
                group.ec2_backend.terminate_instances([inst.id])
            group.instance_states.remove(state)
            continue
        if state.lifecycle_state not in LIVE:
            continue
        if state.health_status != "Unhealthy" and _unhealthy(group, state, stopped):
            state.health_status = "Unhealthy"  # marked even while ReplaceUnhealthy is suspended
        # ReplaceUnhealthy "calls Terminate first and then Launch": either suspended keeps it
        if state.health_status == "Unhealthy" and not stopped & {"ReplaceUnhealthy", "Terminate"}:
            inst._la_replaced_unhealthy = True
            begin_termination(group, state)
    # Keep the desired capacity: replace members that were terminated (health check replacement,
    # EC2 TerminateInstances). During an instance refresh the refresh itself may run above the
    # desired capacity (MaxHealthyPercentage), so only an idle group is scaled back in.
    missing = (group.desired_capacity or 0) - len(live_states(group))
    if missing > 0 and "Launch" not in stopped:
        warm_pool.add_capacity(group, missing)
    elif missing < 0 and not getattr(group, "_la_refresh_active", False):
        scale_in(group, -missing)
    reconcile(group)


def advance_groups() -> None:
    for backend in clock.backends(autoscaling_backends):
        for group in list(backend.autoscaling_groups.values()):
            _tick_group(group)


def _terminate_instance(self: AutoScalingBackend, instance_id: str, should_decrement: bool):
    for group in self.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id and state.lifecycle_state in LIVE:
                original = group.desired_capacity
                begin_termination(group, state)
                if should_decrement:
                    group.desired_capacity = (group.desired_capacity or 0) - 1
                elif "Launch" not in suspended(group):
                    warm_pool.add_capacity(group, 1)
                return TerminateInstanceActivity(state.instance, original)
    from moto.autoscaling.exceptions import ValidationError

    raise ValidationError("Instance Id not found - No managed instance found for instance ID: " + instance_id)


def _notify_terminate(self: AutoScalingBackend, instance_ids) -> None:
    # EC2 TerminateInstances on members: they leave at once; _tick_group launches replacements.
    for group in self.autoscaling_groups.values():
        group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
        reconcile(group)


def _delete_group(self: AutoScalingBackend, group_name: str) -> None:
    group = self.autoscaling_groups.get(group_name)
    if group is None:
        from moto.autoscaling.exceptions import ValidationError

        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    ids = [s.instance.id for s in group.instance_states + warm_states(group)
           if s.instance.state not in ("terminated",)]
    group.instance_states = []
    group.warm_pool = None
    warm_states(group).clear()
    reconcile(group)
    lifecycle_hooks.forget_group(self, group_name)
    if ids:
        self.ec2_backend.terminate_instances(ids)
    self.autoscaling_groups.pop(group_name, None)


def _update_attached_target_groups(self: AutoScalingBackend, group_name: str) -> None:
    reconcile(self.autoscaling_groups[group_name])


def _with_group_defaults(original, creating: bool):
    """moto ignores DefaultInstanceWarmup and defaults HealthCheckGracePeriod to 300 s; the API's
    default is 0 ("Set the health check grace period": 0 when created with the CLI or an SDK)."""

    def handler(self: AutoScalingResponse):
        result = original(self)
        warmup = self._get_param("DefaultInstanceWarmup")
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None and warmup is not None:
            group.default_instance_warmup = int(warmup)
        if group is not None and creating and self._get_param("HealthCheckGracePeriod") is None:
            group.health_check_grace_period = 0
        return result

    handler.__name__ = original.__name__
    return handler


def install() -> None:
    FakeAutoScalingGroup.set_desired_capacity = _set_desired_capacity
    AutoScalingBackend.terminate_instance = _terminate_instance
    AutoScalingBackend.notify_terminate_instances = _notify_terminate
    AutoScalingBackend.delete_auto_scaling_group = _delete_group
    AutoScalingBackend.update_attached_target_groups = _update_attached_target_groups
    AutoScalingResponse.create_auto_scaling_group = _with_group_defaults(AutoScalingResponse.create_auto_scaling_group, True)
    AutoScalingResponse.update_auto_scaling_group = _with_group_defaults(AutoScalingResponse.update_auto_scaling_group, False)

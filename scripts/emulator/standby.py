"""Standby and scale-in protection: EnterStandby (EnteringStandby while the load balancer drains the
instance, then Standby; the instance keeps running), ExitStandby (Pending, registered again, then
InService), and SetInstanceProtection with the checks moto skipped.

Follows the Amazon EC2 Auto Scaling User Guide — "Temporarily remove instances from your Auto
Scaling group" (only InService instances can enter standby; they are deregistered from the target
groups, with the deregistration delay; the desired capacity is decremented unless
ShouldDecrementDesiredCapacity is false, in which case a replacement is launched; exiting increments
it again and registers the instance; standby instances are not health checked) and "Amazon EC2 Auto
Scaling instance lifecycle" (InService → EnteringStandby → Standby → Pending → InService), and
"Use instance scale-in protection". What an instance refresh does with standby and protected
instances is in refresh.py (StandbyInstances, ScaleInProtectedInstances).

Our readings: decrementing below MinSize, or incrementing above MaxSize on exit, is refused with
ValidationError (as DetachInstances documents for the minimum); error texts are ours.
"""

from __future__ import annotations

from moto.autoscaling.models import (
    EnterStandbyActivity,
    ExitStandbyActivity,
    FakeAutoScalingGroup,
    InstanceState,
    autoscaling_backends,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import clock
from .errors import validation_error
from .group_members import deregister, reconcile, requested_group

STANDBY = ("EnteringStandby", "Standby")


def _members(group: FakeAutoScalingGroup, ids: list[str]) -> list[InstanceState]:
    by_id = {s.instance.id: s for s in group.instance_states}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise validation_error(f"The instance {missing[0]} is not part of Auto Scaling group {group.name}.")
    return [by_id[i] for i in ids]


def enter_standby(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    states = _members(group, self._get_param("InstanceIds", []) or [])
    decrement = self._get_bool_param("ShouldDecrementDesiredCapacity", False)
    for s in states:
        if s.lifecycle_state != "InService":
            raise validation_error(f"The instance {s.instance.id} is not in InService (it is {s.lifecycle_state}); "
                                   "only InService instances can enter standby.")
    original = group.desired_capacity
    if decrement and (original or 0) - len(states) < (group.min_size or 0):
        raise validation_error(f"Decrementing the desired capacity of {group.name} by {len(states)} would put it "
                               f"below the group's minimum size {group.min_size}.")
    activities = []
    for s in states:
        s.lifecycle_state = "EnteringStandby"  # deregistered: draining for the target group's delay
        s._la_standby_at = clock.deadline(deregister(group, s.instance.id))
        activities.append(EnterStandbyActivity(s.instance, original))
    if decrement:
        group.desired_capacity = (original or 0) - len(states)
    reconcile(group)  # without the decrement, the group launches replacements on its next tick
    return ActionResult({"Activities": activities})


def exit_standby(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    states = _members(group, self._get_param("InstanceIds", []) or [])
    for s in states:
        if s.lifecycle_state != "Standby":
            raise validation_error(f"The instance {s.instance.id} is not in Standby (it is {s.lifecycle_state}).")
    original = group.desired_capacity
    if (original or 0) + len(states) > (group.max_size or 0):
        raise validation_error(f"Incrementing the desired capacity of {group.name} by {len(states)} would put it "
                               f"above the group's maximum size {group.max_size}.")
    activities = []
    for s in states:
        s.lifecycle_state = "Pending"  # registered again; InService once the group sees it running
        s.__dict__.pop("_la_in_service_at", None)
        activities.append(ExitStandbyActivity(s.instance, original))
    group.desired_capacity = (original or 0) + len(states)
    reconcile(group)
    return ActionResult({"Activities": activities})


def set_instance_protection(self: AutoScalingResponse) -> EmptyResult:
    group = requested_group(self)
    protect = self._get_bool_param("ProtectedFromScaleIn")
    if protect is None:
        raise validation_error("ProtectedFromScaleIn is required.")
    for s in _members(group, self._get_param("InstanceIds", []) or []):
        s.protected_from_scale_in = protect
    return EmptyResult()


def advance_standby() -> None:
    """EnteringStandby → Standby once the deregistration delay has passed."""
    now = clock.now()
    for backend in clock.backends(autoscaling_backends):
        for group in backend.autoscaling_groups.values():
            for s in group.instance_states:
                if s.lifecycle_state == "EnteringStandby" and getattr(s, "_la_standby_at", 0) <= now:
                    s.lifecycle_state = "Standby"


def install() -> None:
    AutoScalingResponse.enter_standby = enter_standby
    AutoScalingResponse.exit_standby = exit_standby
    AutoScalingResponse.set_instance_protection = set_instance_protection

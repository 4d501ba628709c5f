"""Launches an account may not make: RunInstances (direct, or by an Auto Scaling group) from an image
the account cannot see is refused; one from an image whose snapshots' KMS key the launcher may not use
starts `pending` and terminates with `Client.InternalError`; and an Auto Scaling group records such
failed launches as scaling activities (DescribeScalingActivities), retries after a pause, and lets an
instance refresh count them as failed replacements.

Follows the EC2 API Reference — "RunInstances" and the error codes (`InvalidAMIID.NotFound`: the AMI
does not exist *for the caller*: another account's private image, or one of another Region); the EC2
User Guide — "Troubleshoot Amazon EC2 instance launch issues" (an instance that goes from pending to
terminated; `Client.InternalError: Client error on launch` for an EBS volume whose KMS key the launcher
may not use); the Amazon EC2 Auto Scaling User Guide — "Troubleshoot Amazon EC2 Auto Scaling: AMI
issues" ("The AMI ID … does not exist. Launching EC2 instance failed."), "Troubleshoot … EC2 instance
launch failures" (the KMS key cause), "Verify a scaling activity for an Auto Scaling group"
(DescribeScalingActivities, StatusCode `Failed`, newest first).

Our choices (README): an image id no account ever had (made up in a test) is still accepted, as moto
did; a failing launch stays `pending` FAIL_SECONDS (5 AWS s) before it terminates; a group waits
RETRY_SECONDS (10 AWS s) after a launch that was refused before it tries again; only failed launches
are recorded as activities (moto records none), the newest KEPT (500) per group.
"""

from __future__ import annotations

import json
import uuid

from moto.autoscaling.models import ASG_NAME_TAG
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import InstanceBackend, StateReason

from . import clock, image_access, kms_access
from .errors import AwsError

FAIL_SECONDS = 5.0
RETRY_SECONDS = 10.0
KEPT = 500  # failed launches kept per group (a group failing for hours would otherwise grow without end)


def _image_of(backend, image_id: str | None, kwargs: dict) -> str | None:
    if image_id or not kwargs.get("launch_template"):
        return image_id
    return backend._get_template_from_args(kwargs["launch_template"]).image_id


def _run_instances(self: InstanceBackend, image_id, count, user_data, security_group_names, **kwargs):
    wanted = _image_of(self, image_id, kwargs)
    ami = image_access.visible(self, wanted) if wanted else None
    if wanted and ami is None and image_access.known(wanted):
        raise AwsError("InvalidAMIID.NotFound", f"The image id '[{wanted}]' does not exist")
    by_group = ASG_NAME_TAG in ((kwargs.get("tags") or {}).get("instance") or {})
    problem = kms_access.launch_problem(self, image_access.snapshots(ami), by_group) if ami is not None else None
    reservation = _orig_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    if problem:
        failing = self.__dict__.setdefault("_la_failing", [])
        for instance in reservation.instances:
            instance._la_next = None  # never `running` (ec2_lifecycle)
            instance._la_fail_launch = (clock.deadline(FAIL_SECONDS), problem)
            failing.append(instance)
    return reservation


def advance_failing_launches() -> None:
    """Instances whose launch fails on their KMS key: pending → shutting-down → terminated, with the
    StateReason AWS gives; a group's instance is also recorded as its failed launch."""
    now = clock.now()
    for backend in clock.backends(ec2_backends):
        failing = backend.__dict__.get("_la_failing")
        if not failing:
            continue
        for instance in list(failing):
            due, detail = instance._la_fail_launch
            if due > now:
                continue
            failing.remove(instance)
            if instance.state != "pending":
                continue
            reason = f"Client.InternalError: {detail}"
            instance._la_launch_failed = reason
            backend.terminate_instances([instance.id])
            instance.state_reason = StateReason(reason, "Client.InternalError")
            instance._reason = reason
            group = getattr(instance, "autoscaling_group", None)
            if group is not None:
                record(group, instance, f"Launching a new EC2 instance: {instance.id}.  Status Reason: Instance "
                       f"became unhealthy while waiting for instance to be in InService state. Termination "
                       f"Reason: {reason}", reason, counted=False)  # the refresh counts the instance itself


# --- an Auto Scaling group's failed launches ------------------------------------------------------

class _Attempt:
    """What a refused launch would have been, for Config.matches (an instance refresh's phase)."""

    def __init__(self, key, instance_type):
        self._la_key = key
        self.instance_type = instance_type


def backing_off(group) -> bool:
    return getattr(group, "_la_launch_retry_at", 0.0) > clock.now()


def refused(group, key, instance_type, error: AwsError) -> None:
    """RunInstances refused the group's launch (e.g. an image not shared with the group's account)."""
    group._la_launch_retry_at = clock.deadline(RETRY_SECONDS)
    message = f"{error.message}. Launching EC2 instance failed."
    record(group, _Attempt(key, instance_type), f"Launching a new EC2 instance.  Status Reason: {message}", message)


def record(group, launched, description: str, message: str, counted: bool = True) -> None:
    """A failed launch of the group: an activity (StatusCode Failed) and, when `counted`, a failure an
    instance refresh counts (instances that failed are counted by the refresh itself)."""
    activity_id = str(uuid.uuid4())
    at = clock.wall()
    activities = group.__dict__.setdefault("_la_activities", [])
    activities.insert(0, {
        "ActivityId": activity_id, "AutoScalingGroupName": group.name, "Description": description,
        "Cause": f"At {at.strftime('%Y-%m-%dT%H:%M:%SZ')} an instance was started in response to a difference "
                 "between desired and actual capacity.",
        "StartTime": at, "EndTime": at, "StatusCode": "Failed", "StatusMessage": message, "Progress": 100,
        "Details": json.dumps({"Subnet ID": getattr(launched, "subnet_id", None) or "",
                               "Availability Zone": getattr(getattr(launched, "placement", None), "zone", "") or ""}),
        "AutoScalingGroupARN": group.arn,
    })
    del activities[KEPT:]
    if counted:
        failures = group.__dict__.setdefault("_la_failed_launches", [])
        failures.append((clock.now(), activity_id, launched, message))
        del failures[:-KEPT]


def failures_since(group, since: float, config) -> list[tuple[str, str]]:
    """(activity id, message) of refused launches of `config` since `since` (real monotonic time)."""
    return [(aid, msg) for at, aid, attempt, msg in getattr(group, "_la_failed_launches", [])
            if at >= since and config.matches(attempt)]


def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
    name = self._get_param("AutoScalingGroupName")
    wanted = set(self._get_param("ActivityIds", []) or [])
    groups = self.autoscaling_backend.autoscaling_groups
    chosen = [groups[name]] if name in groups else ([] if name else list(groups.values()))
    out = [a for g in chosen for a in g.__dict__.get("_la_activities", []) if not wanted or a["ActivityId"] in wanted]
    out.sort(key=lambda a: a["StartTime"], reverse=True)
    size = int(self._get_param("MaxRecords") or 100)
    start = int(self._get_param("NextToken") or 0)
    result = {"Activities": out[start:start + size]}
    if start + size < len(out):
        result["NextToken"] = str(start + size)
    return ActionResult(result)


_orig_run_instances = InstanceBackend.run_instances


def install() -> None:
    InstanceBackend.run_instances = _run_instances
    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities

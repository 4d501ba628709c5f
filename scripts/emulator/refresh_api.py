"""The four instance refresh actions as the Auto Scaling query API answers them: validation,
errors and the shape of DescribeInstanceRefreshes.

Follows the Amazon EC2 Auto Scaling API Reference — "StartInstanceRefresh", "RefreshPreferences"
(ranges: MinHealthyPercentage 0-100 default 90, MaxHealthyPercentage 100-200 and at most 100 above
Min, CheckpointPercentages 1-100 ascending, CheckpointDelay 0-172800 default 3600 and only with
CheckpointPercentages, BakeTime 0-172800, InstanceWarmup >= 0; AutoRollback needs a desired
configuration and a group on a numbered launch template version; AlarmSpecification: alarms.py),
"DescribeInstanceRefreshes"
(newest first, MaxRecords up to 100, default 50), "CancelInstanceRefresh" and
"RollbackInstanceRefresh" (errors ActiveInstanceRefreshNotFound, IrreversibleInstanceRefresh), and
the user guide page "Understand the default values for an instance refresh" (SDK defaults).
Error codes are AWS's; message texts are close to, not copies of, AWS's.
"""

from __future__ import annotations

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from . import alarms
from .errors import AwsError, validation_error
from .group_members import requested_group
from .launch_config import Config
from .refresh import Refresh, active, refreshes

DEFAULTS = {
    "MinHealthyPercentage": 90,
    "SkipMatching": False,
    "AutoRollback": False,
    "ScaleInProtectedInstances": "Wait",
    "StandbyInstances": "Wait",
}


def _range(field: str, value, low: int, high: int | None) -> None:
    if value is None:
        return
    if value < low:
        raise validation_error(
            f"1 validation error detected: Value '{value}' at 'preferences.{field[0].lower() + field[1:]}' "
            f"failed to satisfy constraint: Member must have value greater than or equal to {low}"
        )
    if high is not None and value > high:
        raise validation_error(
            f"1 validation error detected: Value '{value}' at 'preferences.{field[0].lower() + field[1:]}' "
            f"failed to satisfy constraint: Member must have value less than or equal to {high}"
        )


def _irreversible_reason(group, desired) -> str | None:
    if not desired:
        return "No desired configuration was specified for the instance refresh, so it cannot be rolled back."
    saved = Config.of_group(group)
    return saved.rollback_blocker() if saved is not None else "The Auto Scaling group has no configuration."


def _check_spec(spec: dict | None, where: str) -> None:
    if not spec or bool(spec.get("LaunchTemplateId")) == bool(spec.get("LaunchTemplateName")):
        raise validation_error(f"Valid requests must contain either launchTemplateId or LaunchTemplateName ({where}).")


def _target(group, desired: dict | None) -> Config:
    """What the refresh launches: the desired configuration, else the group's own."""
    if not desired:
        saved = Config.of_group(group)
        if saved is None:
            raise validation_error("The Auto Scaling group has no launch template or launch configuration.")
        return saved
    if desired.get("LaunchTemplate") and desired.get("MixedInstancesPolicy"):
        raise validation_error("Specify either LaunchTemplate or MixedInstancesPolicy in DesiredConfiguration, "
                               "not both.")
    policy = desired.get("MixedInstancesPolicy")
    if policy:
        lt = policy.get("LaunchTemplate") or {}
        _check_spec(lt.get("LaunchTemplateSpecification"), "MixedInstancesPolicy.LaunchTemplate")
        for override in lt.get("Overrides") or []:
            if override.get("LaunchTemplateSpecification"):
                _check_spec(override["LaunchTemplateSpecification"], "Overrides")
        if group.warm_pool is not None:
            raise validation_error("You cannot use a mixed instances policy with an Auto Scaling group that has a "
                                   "warm pool.")
    elif desired.get("LaunchTemplate"):
        _check_spec(desired["LaunchTemplate"], "DesiredConfiguration.LaunchTemplate")
    else:
        raise validation_error("DesiredConfiguration must contain either LaunchTemplate or MixedInstancesPolicy.")
    return Config.from_desired(group, desired)  # InvalidLaunchTemplate*.NotFound for unknown ones


def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    strategy = self._get_param("Strategy") or "Rolling"
    if strategy != "Rolling":
        raise validation_error(f"local-aws only emulates the Rolling strategy, not {strategy}.")
    prefs = dict(self._get_param("Preferences") or {})
    desired = self._get_param("DesiredConfiguration") or None
    _range("MinHealthyPercentage", prefs.get("MinHealthyPercentage"), 0, 100)
    _range("MaxHealthyPercentage", prefs.get("MaxHealthyPercentage"), 100, 200)
    _range("InstanceWarmup", prefs.get("InstanceWarmup"), 0, None)
    _range("CheckpointDelay", prefs.get("CheckpointDelay"), 0, 172800)
    _range("BakeTime", prefs.get("BakeTime"), 0, 172800)
    for p in prefs.get("CheckpointPercentages") or []:
        _range("CheckpointPercentages", p, 1, 100)
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in prefs.items() if v is not None})
    if merged.get("MaxHealthyPercentage") is not None:
        if merged["MaxHealthyPercentage"] - merged["MinHealthyPercentage"] > 100:
            raise validation_error(
                "The difference between MaxHealthyPercentage and MinHealthyPercentage cannot be greater than 100."
            )
    cps = merged.get("CheckpointPercentages")
    if cps:
        if list(cps) != sorted(set(cps)):
            raise validation_error("CheckpointPercentages must be unique values in ascending order.")
        merged.setdefault("CheckpointDelay", 3600)
    elif "CheckpointDelay" in prefs:
        raise validation_error("CheckpointDelay can only be specified together with CheckpointPercentages.")
    backend = self.autoscaling_backend
    target = _target(group, desired)
    if merged.get("AutoRollback"):
        reason = _irreversible_reason(group, desired)
        if reason:
            raise validation_error(f"AutoRollback is not supported for this request: {reason}")
    alarms.check_at_start(group.account_id, group.region, merged)
    if active(backend, group.name) is not None:
        raise AwsError(
            "InstanceRefreshInProgress",
            "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
        )
    refresh = Refresh(group, merged, desired, target, strategy)
    refreshes(backend).setdefault(group.name, []).append(refresh)
    group._la_launch_override = refresh.launch_override()
    group._la_refresh_active = True
    return ActionResult({"InstanceRefreshId": refresh.id})


def _progress_details(r: Refresh) -> dict:
    live_pct = getattr(r, "live_percentage", r.percentage)
    live_left = r.to_update
    out = {"LivePoolProgress": {"PercentageComplete": live_pct, "InstancesToUpdate": live_left}}
    if r.warm_progress is not None:
        size, done = r.warm_progress
        out["WarmPoolProgress"] = {"PercentageComplete": int(100 * done / size) if size else 100,
                                   "InstancesToUpdate": max(0, size - done)}
    return out


def _describe(r: Refresh) -> dict:
    out = {
        "InstanceRefreshId": r.id,
        "AutoScalingGroupName": r.group_name,
        "Status": r.status,
        "StatusReason": r.status_reason,
        "StartTime": r.start_time,
        "EndTime": r.end_time,
        "PercentageComplete": r.percentage,
        "InstancesToUpdate": r.to_update + (max(0, r.warm_progress[0] - r.warm_progress[1])
                                            if r.warm_progress else 0),
        "ProgressDetails": _progress_details(r),
        "Preferences": {k: v for k, v in r.reported_prefs.items() if v is not None},
        "Strategy": r.strategy,
    }
    if r.desired:
        out["DesiredConfiguration"] = r.desired
    if r.rollback:
        out["RollbackDetails"] = dict(r.rollback)
    return {k: v for k, v in out.items() if v is not None}


def describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("InstanceRefreshIds") or []
    max_records = self._get_int_param("MaxRecords") or 50
    if max_records > 100 or max_records < 1:
        raise validation_error(
            f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to satisfy constraint: "
            "Member must have value less than or equal to 100"
        )
    items = list(reversed(refreshes(self.autoscaling_backend).get(name, [])))
    if ids:
        items = [r for r in items if r.id in ids]
    token = self._get_param("NextToken")
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise AwsError("InvalidNextToken", "The token provided is not valid.")
    page = items[start : start + max_records]
    result = {"InstanceRefreshes": [_describe(r) for r in page]}
    if start + max_records < len(items):
        result["NextToken"] = str(start + max_records)
    return ActionResult(result)


def _not_found(name: str) -> AwsError:
    return AwsError(
        "ActiveInstanceRefreshNotFound",
        f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
    )


def cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    r = active(self.autoscaling_backend, group.name)
    if r is None or r.status == "Cancelling":
        raise _not_found(group.name)
    wait = self._get_param("WaitForTransitioningInstances")
    r.cancel_wait = True if wait is None else bool(wait)
    r.status = "Cancelling"
    r.status_reason = "Instance refresh is being cancelled."
    r.tick(group)
    group._la_launch_override = r.launch_override()
    return ActionResult({"InstanceRefreshId": r.id})


def rollback_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group = requested_group(self)
    r = active(self.autoscaling_backend, group.name)
    if r is None or r.status in ("Cancelling", "RollbackInProgress"):
        raise _not_found(group.name)
    reason = _irreversible_reason(group, r.desired)
    if reason:
        raise AwsError("IrreversibleInstanceRefresh", reason)
    r.start_rollback(group, "Rollback requested by the user (RollbackInstanceRefresh).")
    group._la_launch_override = r.launch_override()
    return ActionResult({"InstanceRefreshId": r.id})


def install() -> None:
    AutoScalingResponse.start_instance_refresh = start_instance_refresh
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh

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


def _group(self: AutoScalingResponse):
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise validation_error(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def _irreversible_reason(group, desired) -> str | None:
    if not desired:
        return "No desired configuration was specified for the instance refresh, so it cannot be rolled back."
    if group.ec2_launch_template is None:
        return "The Auto Scaling group does not use a launch template, so the instance refresh cannot be rolled back."
    ref = group.provided_launch_template_version
    if ref is None or str(ref) in ("$Latest", "$Default"):
        return ("The Auto Scaling group uses the launch template's $Latest or $Default version, so the instance "
                "refresh cannot be rolled back. Use a specific version number.")
    return None


def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    group = _group(self)
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
    if desired and desired.get("MixedInstancesPolicy"):
        raise validation_error("local-aws does not emulate a MixedInstancesPolicy in DesiredConfiguration.")
    if desired and desired.get("LaunchTemplate"):
        lt = desired["LaunchTemplate"]
        if bool(lt.get("LaunchTemplateId")) == bool(lt.get("LaunchTemplateName")):
            raise validation_error("Valid requests must contain either launchTemplateId or LaunchTemplateName")
        ec2 = group.ec2_backend
        template = (ec2.get_launch_template(lt["LaunchTemplateId"]) if lt.get("LaunchTemplateId")
                    else ec2.get_launch_template_by_name(lt["LaunchTemplateName"]))
        version_ref = lt.get("Version") or "$Default"
        template.get_version(version_ref)  # InvalidLaunchTemplateVersion.NotFound if it does not exist
        target = (template, version_ref)
    else:
        if group.ec2_launch_template is None:
            raise validation_error("local-aws only emulates instance refresh for groups with a launch template.")
        target = (group.ec2_launch_template, group.launch_template_version)
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


def _describe(r: Refresh) -> dict:
    out = {
        "InstanceRefreshId": r.id,
        "AutoScalingGroupName": r.group_name,
        "Status": r.status,
        "StatusReason": r.status_reason,
        "StartTime": r.start_time,
        "EndTime": r.end_time,
        "PercentageComplete": r.percentage,
        "InstancesToUpdate": r.to_update,
        "ProgressDetails": {
            "LivePoolProgress": {"PercentageComplete": r.percentage, "InstancesToUpdate": r.to_update}
        },
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
    group = _group(self)
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
    group = _group(self)
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

"""CloudWatch alarms as an instance refresh watches them (RefreshPreferences.AlarmSpecification).

Follows the Amazon EC2 Auto Scaling User Guide — "Undo changes with a manual or auto rollback",
section "Start an instance refresh with auto rollback": up to 10 alarms (metric or composite); an
alarm that goes to `ALARM` while the refresh runs fails it, and with AutoRollback the refresh rolls
back; without AutoRollback it "fails without rolling back"; "If the alarm state is INSUFFICIENT_DATA
or ALARM, you receive an error when you try to start the instance refresh"; while an alarm is
`INSUFFICIENT_DATA` during the refresh, "Amazon EC2 Auto Scaling cannot replace instances until new
data points are found". API Reference — "AlarmSpecification" (1-10 names, each 1-255 characters).

Our readings, where the documentation is silent: an alarm name that does not exist is refused at
StartInstanceRefresh like an alarm that is not `OK` (it cannot be "in a compatible state"), with
`ValidationError` (AWS does not name the code for either case); an alarm deleted while the refresh
runs is ignored; alarms are watched while the refresh is Pending, InProgress or Baking, not while
it is Cancelling or rolling back. moto keeps the alarms (PutMetricAlarm, PutCompositeAlarm,
SetAlarmState); nothing evaluates metrics, so an alarm changes state only through SetAlarmState.
"""

from __future__ import annotations

from moto.cloudwatch.models import cloudwatch_backends

from .errors import validation_error

MAX_ALARMS = 10


def names(prefs: dict) -> list[str]:
    return list((prefs.get("AlarmSpecification") or {}).get("Alarms") or [])


def states(account_id: str, region: str, alarm_names: list[str]) -> dict[str, str | None]:
    """Each alarm's StateValue (OK, ALARM, INSUFFICIENT_DATA), None when it does not exist."""
    if not alarm_names:
        return {}
    backend = cloudwatch_backends[account_id][region]
    return {n: (backend.alarms[n].state_value if n in backend.alarms else None) for n in alarm_names}


def check_at_start(account_id: str, region: str, prefs: dict) -> None:
    """StartInstanceRefresh refuses alarms that are missing or not OK, and more than 10 of them."""
    wanted = names(prefs)
    if len(wanted) > MAX_ALARMS:
        raise validation_error(
            f"1 validation error detected: Value '{wanted}' at 'preferences.alarmSpecification.alarms' failed "
            f"to satisfy constraint: Member must have length less than or equal to {MAX_ALARMS}")
    for name, state in states(account_id, region, wanted).items():
        if state is None:
            raise validation_error(f"The CloudWatch alarm {name} specified in AlarmSpecification does not exist.")
        if state != "OK":
            raise validation_error(
                f"The CloudWatch alarm {name} specified in AlarmSpecification is in {state} state. "
                "Alarms must be in OK state to start an instance refresh.")


def verdict(account_id: str, region: str, prefs: dict) -> tuple[str | None, list[str]]:
    """(the first alarm in ALARM or None, the alarms in INSUFFICIENT_DATA) right now."""
    current = states(account_id, region, names(prefs))
    firing = next((n for n, s in current.items() if s == "ALARM"), None)
    return firing, [n for n, s in current.items() if s == "INSUFFICIENT_DATA"]

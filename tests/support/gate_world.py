"""Changes the local AWS's world for the gate's end-to-end tests, with an independent client (boto3).

Usage (endpoint and credentials from the environment, as `scripts/local-aws up` writes them):
  gate_world.py hook GROUP HEARTBEAT_SECONDS DEFAULT_RESULT   PutLifecycleHook (EC2_INSTANCE_LAUNCHING)
  gate_world.py alarm-when GROUP STATUS ALARM [REASON]       waits (up to 120 s real) until the group's
      newest refresh is in STATUS (or its StatusReason contains REASON), then SetAlarmState ALARM;
      prints the refresh's status at that moment
"""

import sys
import time

import boto3


def hook(group, heartbeat, default_result):
    boto3.client("autoscaling").put_lifecycle_hook(
        LifecycleHookName="app-ready", AutoScalingGroupName=group,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=int(heartbeat), DefaultResult=default_result)


def alarm_when(group, status, alarm, reason=None):
    asg = boto3.client("autoscaling")
    before = {r["InstanceRefreshId"] for r in asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        refreshes = asg.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]
        new = [r for r in refreshes if r["InstanceRefreshId"] not in before]
        if new:
            r = max(new, key=lambda r: r["StartTime"])
            if r["Status"] == status or (reason and reason in (r.get("StatusReason") or "")):
                boto3.client("cloudwatch").set_alarm_state(
                    AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: the end-to-end test")
                print(r["Status"], r.get("StatusReason") or "")
                return
        time.sleep(0.02)
    sys.exit(f"refresh of {group} never reached {status}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"hook": hook, "alarm-when": alarm_when}[cmd](*args)

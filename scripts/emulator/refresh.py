"""The instance refresh state machine: batches that honour Min/MaxHealthyPercentage, warm-up,
checkpoints, bake time, cancel, rollback and auto rollback, all driven by (scaled) time.

Follows the Amazon EC2 Auto Scaling User Guide — "How an instance refresh works" (replace in sets,
wait until new instances pass the group's health checks and finish warming up before moving on; the
desired configuration is applied to the group only when the refresh succeeds), "Instance maintenance
policies" (Min/MaxHealthyPercentage bound the capacity while replacing; Max above 100 launches before
terminating), "Add checkpoints to an instance refresh" (a checkpoint is reached when the percentage of
replaced *and warmed-up* instances reaches it; the last checkpoint below 100 is a partial refresh),
"Use bake time", "Cancel an instance refresh" (stops, does not undo), "Undo changes with a manual or
auto rollback" (replaces what was deployed so far with the configuration last saved on the group),
"Check the status of an instance refresh" (the statuses), AlarmSpecification (alarms.py: an alarm
in ALARM fails the refresh or starts the auto rollback), and the RefreshPreferences reference for
ScaleInProtectedInstances (Refresh replaces protected instances, Ignore skips them, Wait waits up to
one hour for the protection to be removed, then fails).

Choices the documentation leaves open are module constants, listed in the README: Pending lasts
PENDING_SECONDS; Min is rounded up and Max rounded up; at least one instance is always replaced at a
time; the refresh fails after FAIL_AFTER consecutive replacement instances per parallel slot were
found unhealthy and replaced.
"""

from __future__ import annotations

import math
import uuid

from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends

from . import alarms, clock
from .asg import begin_termination
from .asg_launch import forget_launch_configuration, launch
from .group_members import elb_unhealthy, live_states, target_states

PENDING_SECONDS = clock.env_seconds("LOCAL_AWS_REFRESH_PENDING_SECONDS", 5)
FAIL_AFTER = int(clock.env_seconds("LOCAL_AWS_REFRESH_FAIL_AFTER", 3)) or 1
PROTECTION_WAIT_SECONDS = 3600  # ScaleInProtectedInstances / StandbyInstances "Wait": one hour
ACTIVE = ("Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress")
TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")


def key_of(template, version_ref) -> tuple:
    return (template.id, template.get_version(version_ref).number)


class Refresh:
    def __init__(self, group: FakeAutoScalingGroup, prefs: dict, desired: dict | None, target, strategy: str):
        self.id = str(uuid.uuid4())
        self.group_name = group.name
        self.strategy = strategy
        self.status = "Pending"
        self.status_reason: str | None = None
        self.start_time = clock.wall()
        self.end_time = None
        self.prefs = prefs
        self.reported_prefs = dict(prefs)  # a rollback changes how we work, not what was asked
        self.desired = desired
        self.target = target  # (template, version ref) new instances launch from
        self.original = (group.ec2_launch_template, getattr(group, "launch_template_version", None))
        self.pending_until = clock.deadline(PENDING_SECONDS)
        self.rollback: dict | None = None
        self.cancel_wait = True
        self.cp_index = 0
        self.cp_until: float | None = None
        self.bake_until: float | None = None
        self.percentage = 0
        self.to_update = 0
        self._begin_phase(group, target)

    # --- phases -------------------------------------------------------------------------------
    def _begin_phase(self, group, target) -> None:
        self.phase_target = target
        self.phase_key = key_of(*target)
        live = live_states(group)
        self.before = {s.instance.id for s in group.instance_states}
        skip = self.prefs.get("SkipMatching") and self.rollback is None
        ignore_protected = self.prefs.get("ScaleInProtectedInstances") == "Ignore"
        self.to_replace = {
            s.instance.id
            for s in live
            if not (skip and getattr(s.instance, "_la_key", None) == self.phase_key)
            and not (self.rollback is not None and getattr(s.instance, "_la_key", None) == self.phase_key)
            and not (ignore_protected and s.protected_from_scale_in)
        }
        self.blocked_since: float | None = None
        self.n = max(1, group.desired_capacity or len(live) or 1)
        self.skipped = max(0, self.n - len(self.to_replace))
        self.failed: set[str] = set()
        self.failure_causes: dict[str, str] = {}
        self.failed_baseline = 0
        self.ready_seen: set[str] = set()
        self.max_inflight = 1
        self.to_update = len(self.to_replace)
        self.percentage = 100 if not self.to_replace else int(100 * self.skipped / self.n)

    def launch_override(self):
        if self.status in ("Pending", "InProgress", "Baking", "Cancelling") and self.rollback is None:
            return self.target
        return None

    # --- helpers ------------------------------------------------------------------------------
    def warmup(self, group) -> float:
        if self.prefs.get("InstanceWarmup") is not None:
            return float(self.prefs["InstanceWarmup"])
        if getattr(group, "default_instance_warmup", None) is not None:
            return float(group.default_instance_warmup)
        return float(group.health_check_grace_period or 0)

    def _health_wait(self, group, state) -> str | None:
        """Why `state` is not yet a finished replacement, or None when it is one."""
        inst = state.instance
        if state.lifecycle_state == "Pending:Wait":
            return f"{inst.id} is waiting for a launch lifecycle hook"
        if state.lifecycle_state != "InService" or inst.state != "running":
            return f"{inst.id} is not yet in service"
        if "ELB" in (group.health_check_type or "") and any(t != "healthy" for t in target_states(group, inst.id)):
            return f"{inst.id} has insufficient data to evaluate its health with Elastic Load Balancing"
        left = self.warmup(group) - clock.aws_elapsed(getattr(state, "_la_in_service_at", clock.now()))
        if left > 0:
            return f"{inst.id} is warming up"
        return None

    def _old_is_healthy(self, group, state) -> bool:
        if state.lifecycle_state != "InService" or state.instance.state != "running":
            return False
        return not ("ELB" in (group.health_check_type or "") and elb_unhealthy(group, state.instance.id))

    def _finish(self, status: str, reason: str | None = None) -> None:
        self.status = status
        self.status_reason = reason
        self.end_time = clock.wall()

    # --- the clock ----------------------------------------------------------------------------
    def tick(self, group: FakeAutoScalingGroup | None) -> None:
        now = clock.now()
        if self.status in TERMINAL:
            return
        if group is None:
            self._finish("Failed", "The Auto Scaling group was deleted.")
            return
        insufficient: list[str] = []
        if self.status in ("Pending", "InProgress", "Baking") and self.rollback is None:
            firing, insufficient = alarms.verdict(group.account_id, group.region, self.prefs)
            if firing:
                self._fail(group, f"Instance refresh failed: the CloudWatch alarm {firing} went into the ALARM state.")
                return
        if self.status == "Pending":
            if now < self.pending_until:
                return
            self.status = "InProgress"
        live = live_states(group)
        new = [s for s in live if s.instance.id not in self.before
               and getattr(s.instance, "_la_key", None) == self.phase_key]
        waits = {s.instance.id: self._health_wait(group, s) for s in new}
        ready = [s for s in new if waits[s.instance.id] is None]
        inflight = [s for s in new if waits[s.instance.id] is not None]
        old = [s for s in live if s.instance.id in self.to_replace]
        own_terminating = [s for s in group.instance_states
                           if s.lifecycle_state == "Terminating" and s.instance.id in self.to_replace]
        self.max_inflight = max(self.max_inflight, len(inflight))
        # replacement instances that the group found unhealthy and replaced, or whose launch a
        # lifecycle hook abandoned, count as failures
        for s in group.instance_states:
            inst = s.instance
            if ((getattr(inst, "_la_replaced_unhealthy", False) or getattr(inst, "_la_abandoned", False))
                    and inst.id not in self.before and getattr(inst, "_la_key", None) == self.phase_key):
                self.failed.add(inst.id)
                self.failure_causes[inst.id] = ("had their launch abandoned by a lifecycle hook"
                                                if getattr(inst, "_la_abandoned", False)
                                                else "failed their health checks and were replaced")
        fresh = {s.instance.id for s in ready} - self.ready_seen
        if fresh:  # a replacement succeeded: failures are counted again from here
            self.ready_seen |= fresh
            self.failed_baseline = len(self.failed)
        consecutive = len(self.failed) - self.failed_baseline

        total_new_goal = len(self.to_replace)
        self.to_update = max(0, total_new_goal - len(ready))
        self.percentage = int(100 * (self.n - self.to_update) / self.n) if self.n else 100

        if self.status == "Cancelling":
            launching = [s for s in inflight if s.lifecycle_state.startswith("Pending")]
            if not self.cancel_wait or (not launching and not own_terminating):
                self._finish("Cancelled", "Instance refresh was cancelled.")
            return
        if self.status == "Baking":
            if now >= self.bake_until:
                self._succeed(group)
            return
        if consecutive >= FAIL_AFTER * max(1, self.max_inflight):
            last = sorted(self.failed)[-1]
            reason = (f"Instance refresh failed: {consecutive} replacement instances {self.failure_causes[last]} "
                      f"(last: {last}).")
            self._fail(group, reason)
            return
        if self.cp_until is not None:
            if now < self.cp_until:
                return
            self.cp_until = None
            self.cp_index += 1
            self.status_reason = None

        checkpoints = list(self.prefs.get("CheckpointPercentages") or [])
        goal_pct = checkpoints[self.cp_index] if self.cp_index < len(checkpoints) else 100
        last_goal = self.cp_index >= len(checkpoints) - 1
        goal_new = min(total_new_goal, max(0, math.ceil(self.n * goal_pct / 100) - self.skipped))

        replaced = len(ready) >= goal_new and not inflight and (goal_pct < 100 or not old)
        if replaced and own_terminating:
            self.status_reason = (f"Waiting for {len(own_terminating)} replaced instance(s) to finish terminating "
                                  "(target group deregistration delay).")
            return
        if replaced:
            if not last_goal:
                delay = self.prefs.get("CheckpointDelay", 3600)
                self.cp_until = clock.deadline(delay)
                self.status_reason = (f"Checkpoint {goal_pct}% reached: waiting {delay} seconds "
                                      f"(CheckpointDelay) before continuing.")
                return
            if self.rollback is not None:
                self._finish("RollbackSuccessful", "Rollback completed successfully.")
                return
            bake = self.prefs.get("BakeTime") or 0
            if bake > 0:
                self.status = "Baking"
                self.status_reason = f"Instance refresh is baking for {bake} seconds (BakeTime)."
                self.bake_until = clock.deadline(bake)
                return
            self._succeed(group)
            return

        if insufficient:  # "cannot replace instances until new data points are found"
            self.status_reason = (f"Waiting for CloudWatch alarm {insufficient[0]} to leave the INSUFFICIENT_DATA "
                                  "state before replacing more instances.")
            return
        self._step(group, live, new, ready, inflight, old, goal_new)

    def _step(self, group, live, new, ready, inflight, old, goal_new) -> None:
        n = self.n
        min_count = math.ceil(n * self.prefs["MinHealthyPercentage"] / 100)
        max_count = math.ceil(n * self.prefs.get("MaxHealthyPercentage", 100) / 100)
        healthy = len(ready) + sum(1 for s in old if self._old_is_healthy(group, s))
        gone = len(self.to_replace) - len(old)
        allowed_term = max(0, goal_new - gone)
        # ScaleInProtectedInstances=Wait: a protected instance is only replaced once unprotected
        waiting_protection = self.prefs.get("ScaleInProtectedInstances", "Wait") == "Wait"
        movable = [s for s in old if not (waiting_protection and s.protected_from_scale_in)]
        old_sorted = sorted(movable, key=lambda s: self._old_is_healthy(group, s))  # unhealthy first
        term = max(0, min(healthy - min_count, len(old_sorted), allowed_term))
        for s in old_sorted[:term]:
            begin_termination(group, s)
        total = len(live) - term
        need = goal_new - len(new)
        n_launch = max(0, min(need, max_count - total))
        if term == 0 and n_launch == 0 and not inflight and old and not old_sorted:
            self._wait_for_protection(group, old)
            return
        self.blocked_since = None
        if term == 0 and n_launch == 0 and not inflight and old_sorted and allowed_term > 0:
            # never stall: AWS always replaces at least one instance at a time
            begin_termination(group, old_sorted[0])
            total -= 1
            n_launch = max(0, min(need, max(1, max_count - total)))
        if n_launch:
            launch(group, n_launch)
        waiting = [s for s in new if self._health_wait(group, s)]
        if waiting:
            self.status_reason = ("Waiting for remaining instances to be available. For example: "
                                  f"{self._health_wait(group, waiting[0])}.")
        else:
            self.status_reason = None

    def _wait_for_protection(self, group, old) -> None:
        """AWS waits for scale-in protection to be removed, for one hour, then fails the refresh."""
        if self.blocked_since is None:
            self.blocked_since = clock.now()
        ids = ", ".join(sorted(s.instance.id for s in old)[:3])
        if clock.aws_elapsed(self.blocked_since) >= PROTECTION_WAIT_SECONDS:
            self._fail(group, f"Instance refresh failed: instances protected from scale in were not "
                              f"unprotected within one hour ({ids}).")
            return
        self.status_reason = f"Waiting for instances protected from scale in to be unprotected: {ids}."

    def _succeed(self, group) -> None:
        if self.desired and self.desired.get("LaunchTemplate"):
            lt = self.desired["LaunchTemplate"]
            spec = {"LaunchTemplateId": self.target[0].id, "Version": lt.get("Version") or "$Default"}
            group._set_launch_configuration(None, spec, group.mixed_instances_policy)
            forget_launch_configuration(group)  # a launch configuration group now uses the template
        self._finish("Successful", None)

    def _fail(self, group, reason: str) -> None:
        if self.prefs.get("AutoRollback") and self.rollback is None:
            detail = reason.removeprefix("Instance refresh failed: ")
            self.start_rollback(group, f"Instance refresh failed, auto rollback started: {detail}")
            return
        self._finish("RollbackFailed" if self.rollback is not None else "Failed", reason)

    def start_rollback(self, group, reason: str) -> None:
        self.rollback = {
            "RollbackReason": reason,
            "RollbackStartTime": clock.wall(),
            "PercentageCompleteOnRollback": self.percentage,
            "InstancesToUpdateOnRollback": self.to_update,
        }
        self.status = "RollbackInProgress"
        self.status_reason = None
        self.cp_until = None
        self.bake_until = None
        self.cp_index = 0
        self.prefs = dict(self.prefs, CheckpointPercentages=None, BakeTime=0)
        self._begin_phase(group, self.original)


def refreshes(backend) -> dict[str, list[Refresh]]:
    return backend.__dict__.setdefault("_la_refreshes", {})


def active(backend, group_name: str) -> Refresh | None:
    for r in refreshes(backend).get(group_name, []):
        if r.status in ACTIVE:
            return r
    return None


def advance_refreshes() -> None:
    for backend in clock.backends(autoscaling_backends):
        for name, items in list(refreshes(backend).items()):
            group = backend.autoscaling_groups.get(name)
            for r in items:
                if r.status in TERMINAL:
                    continue
                r.tick(group)
                if group is not None:
                    group._la_launch_override = r.launch_override()
                    group._la_refresh_active = r.status in ACTIVE

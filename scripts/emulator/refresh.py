"""The instance refresh state machine: phases (deploy, rollback), status, checkpoints, bake time,
cancel, rollback and auto rollback, failure counting and progress, all driven by (scaled) time.
How many instances are replaced at a time, and the waits for standby, protected instances and
suspended processes, are refresh_batches; the warm pool's turn is refresh_warm.

Follows the Amazon EC2 Auto Scaling User Guide — "How an instance refresh works" (replace in sets,
wait until new instances pass the group's health checks and finish warming up before moving on; the
desired configuration is applied to the group only when the refresh succeeds; a scale-out during the
refresh launches the desired configuration), "Add checkpoints to an instance refresh" (a checkpoint is
reached when the percentage of replaced *and warmed-up* instances reaches it; the last checkpoint
below 100 is a partial refresh), "Use bake time", "Cancel an instance refresh" (stops, does not undo),
"Undo changes with a manual or auto rollback" (replaces what was deployed so far with the
configuration last saved on the group; PercentageComplete "gradually goes back down to zero during a
rollback"), "Use an instance refresh with skip matching", "Check the status of an instance refresh",
AlarmSpecification (alarms.py), the RefreshPreferences reference (StandbyInstances: Terminate,
Ignore, Wait) and "Warm pools for Amazon EC2 Auto Scaling" ("An instance refresh first replaces
InService instances. Then it replaces instances in the warm pool.").

Choices the documentation leaves open are module constants, listed in the README: Pending lasts
PENDING_SECONDS; the refresh fails after FAIL_AFTER consecutive replacement instances per parallel
slot were found unhealthy and replaced; percentages count against the desired capacity at each
moment (it may change while the refresh runs).
"""

from __future__ import annotations

import math
import uuid

from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends

from . import alarms, clock, launch_access, refresh_batches, refresh_warm
from .group_members import live_states, warm_states
from .launch_config import Config
from .standby import STANDBY

PENDING_SECONDS = clock.env_seconds("LOCAL_AWS_REFRESH_PENDING_SECONDS", 5)
FAIL_AFTER = int(clock.env_seconds("LOCAL_AWS_REFRESH_FAIL_AFTER", 3)) or 1
ACTIVE = ("Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress")
TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")


class Refresh:
    def __init__(self, group: FakeAutoScalingGroup, prefs: dict, desired: dict | None, target: Config, strategy: str):
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
        self.target = target  # the Config new instances launch from
        self.original = Config.of_group(group)  # what a rollback returns to
        self.pending_until = clock.deadline(PENDING_SECONDS)
        self.rollback: dict | None = None
        self.cancel_wait = True
        self.cp_index = 0
        self.cp_until: float | None = None
        self.bake_until: float | None = None
        self.percentage = 0
        self.to_update = 0
        self.warm_progress: tuple[int, int] | None = None
        self._begin_phase(group, target)

    # --- phases -------------------------------------------------------------------------------
    def _begin_phase(self, group, config: Config) -> None:
        """What this phase replaces: live instances, standby instances (by StandbyInstances) and
        warm pool instances; not those already on `config` with SkipMatching (or in a rollback)."""
        self.phase_config = config
        self.phase_started = clock.now()
        self.before = {s.instance.id for s in group.instance_states + warm_states(group)}
        keep_matching = bool(self.prefs.get("SkipMatching")) or self.rollback is not None
        ignore_protected = self.prefs.get("ScaleInProtectedInstances") == "Ignore"

        def replaced(s) -> bool:
            if keep_matching and config.matches(s.instance):
                return False
            return not (ignore_protected and s.protected_from_scale_in)

        self.to_replace = {s.instance.id for s in live_states(group) if replaced(s)}
        standby = {s.instance.id for s in group.instance_states if s.lifecycle_state in STANDBY and replaced(s)}
        mode = self.prefs.get("StandbyInstances", "Wait")
        self.standby_terminate = standby if mode == "Terminate" else set()
        self.standby_wait = standby if mode == "Wait" else set()
        self.to_replace |= self.standby_wait  # replaced once they are back in service
        self.warm_to_replace = {s.instance.id for s in warm_states(group) if replaced(s)}
        self.blocked_since: float | None = None
        self.failed: set[str] = set()
        self.last_failure = ""
        self.failure_causes: dict[str, str] = {}
        self.failed_baseline = 0
        self.ready_seen: set[str] = set()
        self.max_inflight = 1

    def launch_override(self) -> Config | None:
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

    def _finish(self, status: str, reason: str | None = None) -> None:
        self.status = status
        self.status_reason = reason
        self.end_time = clock.wall()

    def _count_failures(self, group) -> int:
        """Replacement instances that the group found unhealthy and replaced, whose launch a lifecycle
        hook abandoned (also in the warm pool) or that failed to launch, and launches EC2 refused:
        consecutive ones since the last success."""
        for s in group.instance_states + warm_states(group):
            inst = s.instance
            if ((getattr(inst, "_la_replaced_unhealthy", False) or getattr(inst, "_la_abandoned", False))
                    and inst.id not in self.before and self.phase_config.matches(inst) and inst.id not in self.failed):
                self.failed.add(inst.id)
                self.last_failure = inst.id
                self.failure_causes[inst.id] = (
                    f"failed to launch ({inst._la_launch_failed})" if getattr(inst, "_la_launch_failed", None)
                    else "had their launch abandoned by a lifecycle hook" if getattr(inst, "_la_abandoned", False)
                    else "failed their health checks and were replaced")
        for activity_id, message in launch_access.failures_since(group, self.phase_started, self.phase_config):
            if activity_id in self.failed:
                continue
            self.failed.add(activity_id)
            self.last_failure = activity_id
            self.failure_causes[activity_id] = f"could not be launched ({message})"
        return len(self.failed) - self.failed_baseline

    def _progress(self, group, counts) -> None:
        n, done = counts.n, counts.done
        self.to_update = max(0, n - done)
        live_pct = int(100 * min(done, n) / n)
        if self.rollback is not None:  # AWS: the deployed share, going back down to zero
            deployed = sum(1 for s in live_states(group) if self.target.matches(s.instance))
            live_pct = int(100 * min(deployed, n) / n)
        self.live_percentage = live_pct
        self.warm_progress = refresh_warm.progress(self, group)
        if self.warm_progress is None:
            self.percentage = live_pct
            return
        warm_n, warm_done = self.warm_progress
        self.percentage = int(100 * (min(done, n) + min(warm_done, warm_n)) / (n + warm_n)) if n + warm_n else 100
        if self.rollback is not None:
            self.percentage = live_pct

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
        if self.status in ("InProgress", "RollbackInProgress"):
            refresh_batches.terminate_standby(self, group)  # StandbyInstances Terminate, once per phase
        counts = refresh_batches.Counts(self, group)
        self.max_inflight = max(self.max_inflight, len(counts.inflight))
        consecutive = self._count_failures(group)
        fresh = {s.instance.id for s in counts.ready} - self.ready_seen
        if fresh:  # a replacement succeeded: failures are counted again from here
            self.ready_seen |= fresh
            self.failed_baseline = len(self.failed)
            consecutive = 0
        self._progress(group, counts)

        if self.status == "Cancelling":
            launching = [s for s in counts.inflight if s.lifecycle_state.startswith("Pending")]
            if not self.cancel_wait or (not launching and not counts.own_terminating):
                self._finish("Cancelled", "Instance refresh was cancelled.")
            return
        if self.status == "Baking":
            if now >= self.bake_until:
                self._succeed(group)
            return
        if consecutive >= FAIL_AFTER * max(1, self.max_inflight):
            last = self.last_failure
            label = last if last.startswith("i-") else f"scaling activity {last}"
            self._fail(group, f"Instance refresh failed: {consecutive} replacement instances "
                              f"{self.failure_causes[last]} (last: {label}).")
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
        goal_done = math.ceil(counts.n * goal_pct / 100)

        replaced = counts.done >= goal_done and not counts.inflight and (goal_pct < 100 or not counts.old)
        if replaced and counts.own_terminating:
            self.status_reason = (f"Waiting for {len(counts.own_terminating)} replaced instance(s) to finish "
                                  "terminating (target group deregistration delay).")
            return
        if replaced and goal_pct >= 100 and refresh_batches.waiting_for_standby(self, group):
            return
        if replaced and last_goal and goal_pct >= 100 and not refresh_warm.step(self, group):
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
        refresh_batches.step(self, group, counts, goal_done)

    def _succeed(self, group) -> None:
        if self.desired:
            self.target.apply(group)
        self._finish("Successful", None)

    def fail(self, group, reason: str) -> None:
        self._fail(group, reason)

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

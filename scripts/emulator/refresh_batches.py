"""How an instance refresh replaces the live pool: where each instance stands (Counts), how many old
instances it terminates and how many replacements it launches at a time, and what it waits for —
instances protected from scale in or on standby (one hour, then the refresh fails) and suspended
processes (paused, not failed).

Follows the Amazon EC2 Auto Scaling User Guide — "Instance maintenance policies" (at least
MinHealthyPercentage of the desired capacity stays healthy, at most MaxHealthyPercentage is
Pending or InService; Max above 100 launches before terminating), "How an instance refresh works"
("One-hour timeout": waiting for standby or scale-in-protected instances, or for healthy new
instances, is retried for an hour, then the refresh fails), "Start an instance refresh" (StandbyInstances
Wait: "the instance refresh replaces all InService instances and waits one hour. Then, if any Standby
instances remain, the instance refresh fails"), the RefreshPreferences reference (ScaleInProtectedInstances
Refresh | Ignore | Wait, StandbyInstances Terminate | Ignore | Wait) and "Suspend and resume a process"
(with Launch, Terminate or InstanceRefresh suspended "InstanceRefresh does not replace instances";
suspending InstanceRefresh "pauses the operation without canceling it").

Our choices (README): Min and Max are rounded up; when neither a termination nor a launch is
allowed and nothing is in flight, one instance is replaced anyway (AWS always makes progress one at
a time); a refresh paused by suspended processes has no timeout; standby instances are terminated
(StandbyInstances Terminate) when the refresh starts replacing, without replacements of their own.
"""

from __future__ import annotations

import math

from . import clock
from .asg import begin_termination, suspended
from .asg_launch import launch
from .group_members import elb_unhealthy, live_states, target_states
from .standby import STANDBY

WAIT_SECONDS = 3600  # ScaleInProtectedInstances / StandbyInstances "Wait": one hour
BLOCKING = ("Launch", "Terminate", "InstanceRefresh")


def health_wait(refresh, group, state) -> str | None:
    """Why `state` is not yet a finished replacement, or None when it is one."""
    inst = state.instance
    if state.lifecycle_state == "Pending:Wait":
        return f"{inst.id} is waiting for a launch lifecycle hook"
    if state.lifecycle_state != "InService" or inst.state != "running":
        return f"{inst.id} is not yet in service"
    if "ELB" in (group.health_check_type or "") and any(t != "healthy" for t in target_states(group, inst.id)):
        return f"{inst.id} has insufficient data to evaluate its health with Elastic Load Balancing"
    left = refresh.warmup(group) - clock.aws_elapsed(getattr(state, "_la_in_service_at", clock.now()))
    if left > 0:
        return f"{inst.id} is warming up"
    return None


def old_is_healthy(group, state) -> bool:
    if state.lifecycle_state != "InService" or state.instance.state != "running":
        return False
    return not ("ELB" in (group.health_check_type or "") and elb_unhealthy(group, state.instance.id))


class Counts:
    """The live pool now, as the refresh's current phase sees it. `n` is the desired capacity at
    this moment; `done` = finished replacements + instances the phase does not replace."""

    def __init__(self, refresh, group):
        live = live_states(group)
        self.live = live
        self.n = max(1, group.desired_capacity or len(live) or 1)
        self.new = [s for s in live if s.instance.id not in refresh.before
                    and refresh.phase_config.matches(s.instance)]
        self.waits = {s.instance.id: health_wait(refresh, group, s) for s in self.new}
        self.ready = [s for s in self.new if self.waits[s.instance.id] is None]
        self.inflight = [s for s in self.new if self.waits[s.instance.id] is not None]
        self.old = [s for s in live if s.instance.id in refresh.to_replace]
        new_ids = {s.instance.id for s in self.new}
        self.others = [s for s in live if s.instance.id not in refresh.to_replace and s.instance.id not in new_ids]
        self.done = len(self.ready) + len(self.others)
        self.own_terminating = [s for s in group.instance_states
                                if s.lifecycle_state == "Terminating" and s.instance.id in refresh.to_replace]


def paused(refresh, group) -> bool:
    """Launch, Terminate or InstanceRefresh suspended: no replacements until they are resumed."""
    blocking = [p for p in BLOCKING if p in suspended(group)]
    if not blocking:
        return False
    refresh.status_reason = (f"Instance refresh is paused: the {', '.join(blocking)} process"
                             f"{'es are' if len(blocking) > 1 else ' is'} suspended on the Auto Scaling group.")
    return True


def terminate_standby(refresh, group) -> None:
    """StandbyInstances Terminate: standby instances the phase would replace are terminated."""
    if not refresh.standby_terminate or paused(refresh, group):
        return
    for s in group.instance_states:
        if s.instance.id in refresh.standby_terminate and s.lifecycle_state in STANDBY:
            begin_termination(group, s)
    refresh.standby_terminate = set()


def _blocked(refresh, group, what: str, ids: list[str]) -> None:
    """Waiting (one hour, AWS seconds) for instances the refresh may not replace yet."""
    if refresh.blocked_since is None:
        refresh.blocked_since = clock.now()
    shown = ", ".join(sorted(ids)[:3])
    if clock.aws_elapsed(refresh.blocked_since) >= WAIT_SECONDS:
        refresh.fail(group, f"Instance refresh failed: {what} were not returned within one hour ({shown}).")
        return
    refresh.status_reason = f"Waiting for {what}: {shown}."


def waiting_for_standby(refresh, group) -> bool:
    """StandbyInstances Wait: all InService instances are replaced; wait for the standby ones."""
    ids = [s.instance.id for s in group.instance_states
           if s.instance.id in refresh.standby_wait and s.lifecycle_state in STANDBY]
    if not ids:
        return False
    _blocked(refresh, group, "instances in Standby to be returned to service", ids)
    return True


def step(refresh, group, counts: Counts, goal_done: int) -> None:
    """Terminate old instances while the healthy surplus allows, launch replacements up to the
    maximum, towards `goal_done` finished instances (the next checkpoint or all)."""
    if paused(refresh, group):
        return
    n, old, inflight = counts.n, counts.old, counts.inflight
    prefs = refresh.prefs
    min_count = math.ceil(n * prefs["MinHealthyPercentage"] / 100)
    max_count = math.ceil(n * prefs.get("MaxHealthyPercentage", 100) / 100)
    healthy = len(counts.ready) + len(counts.others) + sum(1 for s in old if old_is_healthy(group, s))
    keep_old = max(0, n - goal_done)  # old instances that stay until the next checkpoint
    allowed_term = max(0, len(old) - keep_old)
    # ScaleInProtectedInstances=Wait: a protected instance is only replaced once unprotected
    waiting_protection = prefs.get("ScaleInProtectedInstances", "Wait") == "Wait"
    movable = [s for s in old if not (waiting_protection and s.protected_from_scale_in)]
    movable.sort(key=lambda s: old_is_healthy(group, s))  # unhealthy first
    term = max(0, min(healthy - min_count, len(movable), allowed_term))
    for s in movable[:term]:
        begin_termination(group, s)
    total = len(counts.live) - term
    # replacements still to launch: the live pool must end at n instances, none of them old
    need = max(0, n - len(counts.live) + len(old))
    need = min(need, max(0, goal_done - counts.done - len(inflight)))
    n_launch = max(0, min(need, max_count - total))
    if term == 0 and n_launch == 0 and not inflight and old and not movable:
        _blocked(refresh, group, "instances protected from scale in to be unprotected",
                 [s.instance.id for s in old])
        return
    refresh.blocked_since = None
    if term == 0 and n_launch == 0 and not inflight and movable and allowed_term > 0:
        # never stall: AWS always replaces at least one instance at a time
        begin_termination(group, movable[0])
        total -= 1
        n_launch = max(0, min(need, max(1, max_count - total)))
    if n_launch:
        launch(group, n_launch)
    waiting = [s for s in counts.new if counts.waits[s.instance.id]]
    if waiting:
        refresh.status_reason = ("Waiting for remaining instances to be available. For example: "
                                 f"{counts.waits[waiting[0].instance.id]}.")
    else:
        refresh.status_reason = None


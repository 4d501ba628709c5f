"""An instance refresh's turn at the warm pool: after the live pool is replaced, warm pool instances
not on the phase's configuration are terminated in batches and the pool refills with instances of
that configuration (warm_pool.py launches them, from the refresh's desired configuration, or from
the group's saved one during a rollback); the refresh waits until they finished entering the pool.
Also ProgressDetails.WarmPoolProgress.

Follows the Amazon EC2 Auto Scaling User Guide — "Warm pools for Amazon EC2 Auto Scaling" ("An
instance refresh first replaces InService instances. Then it replaces instances in the warm pool.")
and the API Reference — "InstanceRefreshWarmPoolProgress" (percentage of warm pool instances replaced,
instances remaining), "InstanceRefreshProgressDetails".

Our choices (README): a warm pool instance counts as updated once it is Warmed:Stopped/Running/
Hibernated on the phase's configuration (it has no load balancer health or warm-up); batches are
max(1, pool size − ⌈pool size × MinHealthyPercentage / 100⌉) instances; checkpoints and the
top-level PercentageComplete's live share apply to the live pool, and the top-level figure counts
both pools together (AWS does not say how it combines them).
"""

from __future__ import annotations

import math

from . import refresh_batches, warm_pool
from .group_members import warm_states


def _pool(refresh, group):
    states = warm_states(group)
    leaving = [s for s in states if s.lifecycle_state.startswith("Warmed:Terminating")]
    old = [s for s in states if s.instance.id in refresh.warm_to_replace and s not in leaving]
    new = [s for s in states if s.instance.id not in refresh.before and s not in leaving
           and refresh.phase_config.matches(s.instance)]
    ready = [s for s in new if s.lifecycle_state in warm_pool.READY]
    inflight = [s for s in new if s not in ready]
    old_leaving = [s for s in leaving if s.instance.id in refresh.warm_to_replace]
    return old, ready, inflight, old_leaving


def progress(refresh, group) -> tuple[int, int] | None:
    """(instances the warm pool should hold, how many of them are up to date), None without a pool."""
    if group.warm_pool is None and not warm_states(group):
        return None
    size = warm_pool.target_size(group)
    old, _, _, _ = _pool(refresh, group)
    staying = warm_pool.staying(group)
    done = sum(1 for s in staying if s not in old and s.lifecycle_state in warm_pool.READY)
    return size, min(done, size)


def step(refresh, group) -> bool:
    """Replace the next warm pool batch; True once nothing in the pool is left to replace."""
    old, ready, inflight, old_leaving = _pool(refresh, group)
    if not old and not inflight and not old_leaving:
        return True
    if refresh_batches.paused(refresh, group):
        return False
    if not inflight and not old_leaving:
        size = max(1, len(warm_pool.staying(group)))
        batch = max(1, size - math.ceil(size * refresh.prefs["MinHealthyPercentage"] / 100))
        for s in sorted(old, key=lambda s: s.instance.launch_time)[:batch]:
            warm_pool.terminate(group, s)
    waiting = inflight or old_leaving
    example = waiting[0].instance.id if waiting else old[0].instance.id
    refresh.status_reason = (f"Replacing instances in the warm pool ({len(old)} left). For example: {example} "
                             f"is {(waiting or old)[0].lifecycle_state}.")
    return False

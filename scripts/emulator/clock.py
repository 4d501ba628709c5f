"""Emulated time for local-aws: the time scale, the one lock over moto's state, and the ticker.

Everything the emulator adds on top of moto progresses with (scaled) time, never with the number of
calls a client makes. Two rules make that true:

* every timed behaviour stores a *deadline* in real monotonic seconds, computed from an AWS duration
  multiplied by LOCAL_AWS_TIME_SCALE (0.01 means one AWS second lasts 10 ms);
* a background ticker thread calls the tick functions (their order is one list, in
  server.install_all) often, and each request first runs the same tick functions ("advance to
  now") before moto sees it, so a describe call never
  shows a state that is older than the clock, and a client that never calls still sees progress.

Both the ticker and the request path take LOCK, so moto's backends are only touched by one thread at
a time (moto itself is not thread-safe across its models).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Callable

log = logging.getLogger("local-aws")


def _read_scale() -> float:
    raw = os.environ.get("LOCAL_AWS_TIME_SCALE", "1")
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"LOCAL_AWS_TIME_SCALE must be a number, got {raw!r}")
    if not value > 0:
        raise SystemExit(f"LOCAL_AWS_TIME_SCALE must be > 0, got {raw!r}")
    return value


SCALE: float = _read_scale()

# One re-entrant lock: request handlers call into code that may itself call tick helpers.
LOCK = threading.RLock()

_ticks: list[Callable[[], None]] = []


def now() -> float:
    """Real monotonic seconds: the unit of every deadline the emulator stores."""
    return time.monotonic()


def deadline(aws_seconds: float) -> float:
    """The real monotonic time at which `aws_seconds` of AWS time will have passed."""
    return time.monotonic() + max(0.0, float(aws_seconds)) * SCALE


def real_seconds(aws_seconds: float) -> float:
    return max(0.0, float(aws_seconds)) * SCALE


def aws_elapsed(since: float) -> float:
    """AWS seconds that have passed since the real monotonic time `since`."""
    return (time.monotonic() - since) / SCALE


def wall() -> datetime:
    """Timestamps shown to clients are real wall-clock time (see README: time-scale semantics)."""
    return datetime.now(timezone.utc)


def set_ticks(fns: list[Callable[[], None]]) -> None:
    """The functions that advance emulated behaviour to the current time, in the order they run."""
    _ticks[:] = fns


_last_advance = 0.0


def advance() -> None:
    """Run every tick function under the lock. Idempotent: calling it twice at the same instant
    changes nothing the second time, because every tick only acts on deadlines already passed."""
    global _last_advance
    with LOCK:
        try:
            for fn in _ticks:
                try:
                    fn()
                except Exception:  # a bug in one behaviour must not stop the others
                    log.error("tick %s failed:\n%s", getattr(fn, "__name__", fn), traceback.format_exc())
        finally:
            # When it ended, not began: the ticker then always leaves requests at least an interval
            # between two of its own advances, however long one takes on a loaded machine.
            _last_advance = time.monotonic()


def tick_interval() -> float:
    # One AWS second of resolution, bounded so an idle server stays cheap (requests advance the
    # clock themselves, so answers are exact whatever the tick interval).
    return min(0.1, max(0.02, SCALE))


def start_ticker() -> threading.Thread:
    interval = tick_interval()

    def loop() -> None:
        # The world is advanced at least every `interval`: by a request (each advances first) or, when
        # none came for that long, by this thread (a tick right after a request's would change nothing).
        while True:
            wait = _last_advance + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                advance()

    thread = threading.Thread(target=loop, name="local-aws-ticker", daemon=True)
    thread.start()
    return thread


def env_seconds(name: str, default: float) -> float:
    """An AWS duration (in AWS seconds) that the emulator chooses itself, overridable at `up`."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}")


def backends(backend_dict) -> list:
    """Every (account, region) backend of a moto service that exists now."""
    return [b for _, _, b in list(backend_dict.iter_backends())]

"""stack.py: what a benchmark run (scripts/bench/run) starts, and how it is stopped: local AWS servers (one
`scripts/local-aws` server per state dir, at a given time scale with the request log on: seeded, reset, its
AWS calls counted per action, stopped), child processes (each in its own session, so that a run stopped by
SIGTERM or Ctrl-C can stop the whole tree of the one that is running), and the sweep that stops every
server under a work dir, whoever started it.

Standard library and boto3 (the local AWS's virtualenv; scripts/bench/run re-executes itself with it).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from harness import local_aws as harness  # noqa: E402
from measure import by_action  # noqa: E402

GROUP = "shop-web"
REQUEST_MS = re.compile(r"local-aws: request \S+ \S+ ([0-9.]+) ms")


class LocalAws(harness.LocalAws):
    """One server in `state_dir` (created), up at `scale` with LOCAL_AWS_LOG_REQUESTS=1; `seeded` is what the
    last `reseed` made."""

    def __init__(self, state_dir: Path, scale: float):
        super().__init__(state_dir, scale, settings={"LOCAL_AWS_LOG_REQUESTS": "1"})
        self.up()
        self.seeded: dict = {}

    def reseed(self, fresh: bool = True) -> dict:
        """Clears every resource (unless `fresh` is False on a new server) and seeds the demo stack."""
        if fresh:
            self.reset()
        self.seeded = self.seed()
        return self.seeded

    def log_offset(self) -> int:
        log = self.dir / "server.log"
        return log.stat().st_size if log.exists() else 0

    def calls_since(self, offset: int) -> dict[str, int]:
        """AWS calls per IAM action logged since `offset` (see log_offset)."""
        with open(self.dir / "server.log", "rb") as f:
            f.seek(offset)
            return by_action(f.read().decode(errors="replace"))

    def request_ms_since(self, offset: int) -> float:
        """The server's own time answering the requests logged since `offset` (the `<ms> ms` of each line)."""
        with open(self.dir / "server.log", "rb") as f:
            f.seek(offset)
            return sum(float(m.group(1)) for m in REQUEST_MS.finditer(f.read().decode(errors="replace")))


# Stops every local AWS server whose state dir lies under a work dir (ours, and those a child benchmark
# such as gate.py started under the TMPDIR it was given), if it still runs.
sweep = harness.sweep


RUNNING: set[subprocess.Popen] = set()


def run(cmd: list, env: dict | None = None, cwd: Path = REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        check: bool = False, text: bool = True) -> subprocess.CompletedProcess:
    """subprocess.run in a session of its own, registered until it ends so `stop_children` can reach it."""
    p = subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=stdout, stderr=stderr, text=text,
                         start_new_session=True)
    RUNNING.add(p)
    out, err = p.communicate()  # interrupted: it stays in RUNNING for stop_children
    RUNNING.discard(p)
    if check and p.returncode != 0:
        tail = (err or "")[-3000:] if isinstance(err, str) else ""
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))}... exited {p.returncode}: {tail}")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def stop_children(grace: float = 30.0) -> None:
    """SIGTERM to the process group of every child still running (bakeroll then rolls back what it
    started; gate.py stops its server), then waits until no process of the group is left — the leader
    (measure.py, gate.py) may exit before what it started — and SIGKILLs what is left after `grace` s."""
    groups = [p.pid for p in RUNNING]
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_signal_group(g, 0) for g in groups) and time.monotonic() < deadline:
        for p in list(RUNNING):
            if p.poll() is not None:
                RUNNING.discard(p)
        time.sleep(0.2)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    for p in list(RUNNING):
        p.wait()
        RUNNING.discard(p)


def _signal_group(pgid: int, sig: int) -> bool:
    """Sends `sig` to a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def bakeroll(exe: Path, args: list, env: dict) -> tuple[dict, float]:
    """Runs `bakeroll --no-progress --output json ARGS`: (its JSON summary, its CPU seconds). CPU is this
    process's RUSAGE_CHILDREN growth, so only one child may run at a time (the benchmarks are serial)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = run([exe, "--no-progress", "--output", "json", *args], env=env, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        summary = json.loads(p.stdout)
    except json.JSONDecodeError:
        summary = {"outcome": None, "error": f"exit {p.returncode}, no JSON summary"}
    return summary, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

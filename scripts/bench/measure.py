"""measure.py: runs one command and reports, as one JSON object, what the whole process tree it starts
cost: CPU, wall time, peak memory, and the AWS calls it made to a local AWS (scripts/local-aws).
Standard library only, Linux only.

    python3 scripts/bench/measure.py [--local-aws-dir DIR] [--out FILE] [--child-stdout FILE]
                                     [--sample-interval S] [--label TEXT] -- COMMAND [ARGS...]

The command's stdout goes to --child-stdout (default: this process's stderr) so that stdout carries only
the JSON; its stderr is inherited. Exit code: the command's (128 + N when killed by signal N).

What each figure measures
-------------------------
* cpu_user_s, cpu_sys_s, cpu_s: user and system CPU of every process in the tree, grandchildren
  included. This process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a descendant
  whose parent exits is re-parented here and reaped by wait4; every other descendant is reaped by its own
  parent, whose RUSAGE_CHILDREN totals the kernel adds to ours when we reap it. The figure is
  getrusage(RUSAGE_CHILDREN) after minus before. Processes still running when the command exits
  (listed in leftover_processes) are not waited for and not counted. The local AWS server is not in the
  tree: its CPU during the run is reported apart (local_aws.server_cpu_s; it includes its ticker, about
  1 % of a core when idle).
* wall_s: monotonic seconds from just before the command starts until it exits.
* peak_rss_largest_process_kib: ru_maxrss of RUSAGE_CHILDREN, i.e. the peak resident set of the single
  largest process of the tree (Linux keeps the maximum over all reaped descendants, not a sum).
* peak_rss_tree_sampled_kib: the largest sum of the resident sets of all processes of the tree alive at
  the same moment, sampled every --sample-interval seconds from /proc (0 turns sampling off). A lower
  bound: a peak between two samples, or a process living less than one interval, can be missed. This is
  the memory the tool needs at once; a sum of per-process peaks would add up processes that never ran at
  the same time (one aws-cli process after another) and is therefore not reported.
  processes_seen counts the distinct processes the sampler saw (a lower bound of the processes started).
* calls: requests that reached the local AWS during the run, counted from its request log: with
  LOCAL_AWS_LOG_REQUESTS set when the server started, werkzeug writes one line per request to
  server.log (`"POST / HTTP/1.1" 200`) before it sends the response, so once the command has exited
  every request it made is in the log. Lines for /moto-api/ (the emulator's own admin API) are not AWS
  calls and are not counted. The log names no action (the query protocol puts it in the body), so only
  totals by HTTP status are given. Every request to that server in the window is counted: run one client
  per server. Null, with calls_note saying why, when the server does not log requests.
  calls.by_action counts the emulator's own `request <service>:<Action> <status> <ms> ms` lines of the
  same log (LOCAL_AWS_LOG_REQUESTS, scripts/emulator/README.md), by IAM action (`ec2:CreateImage`); it
  is empty for a server too old to write them.
* measure_cpu_s: this process's own CPU (the sampler), not part of cpu_s; it shows the disturbance.

Wall time not spent waiting on AWS
----------------------------------
"Wall time minus the time inside HTTP requests minus the time sleeping between polls" cannot be seen
from outside: it needs each tool instrumented (the CLI's and the SDK's HTTP time, bakeroll's async
sleeps versus `sleep` processes), and both tools would be instrumented differently. CPU time is no wall
time either (it counts parallel work twice and leaves out the start-up waits on disk).
The definition used instead, measurable from outside and the same for both tools: **the wall_s of the
same run against a local AWS whose time scale is so small that every AWS duration vanishes**, with the
tool's poll interval scaled down too. At LOCAL_AWS_TIME_SCALE=0.0001 image creation (120 AWS s) lasts
12 ms and a whole 3-instance refresh with 300 s draining about 40 ms, so what remains of wall_s is the
tool's own critical path: process start-ups, building and parsing requests, local round trips (moto's
few ms per request are AWS time that cannot be separated, but they are the same per call for both
tools) and about one poll per wait. Waits that a tool makes on its own clock (bakeroll's health grace,
for instance) are not AWS waits and remain: report them apart or configure them for the run.
local_aws.time_scale (read from the server's environment) says at which scale a figure was taken; a
wall_s with time_scale <= 0.0001 is this "off-AWS wall time". At a realistic scale (0.01) the calls and
the CPU also count the polls made while AWS works, which is why both scales are worth reporting.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulator.cli import is_server  # noqa: E402  (scripts/local-aws's own check of a recorded pid)

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
# One werkzeug request line; werkzeug colours some statuses with ANSI escapes, stripped first.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
REQUEST = re.compile(r'werkzeug: \S+ - - \[[^\]]*\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')
# The emulator's line for the same request, naming its action (scripts/emulator/server.py).
ACTION = re.compile(r"local-aws: request (\S+) (\S+) [0-9.]+ ms")


def set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def proc_stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is `state`), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def proc_env(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def descendants(root: int, unrelated: set[int] | None = None) -> dict[int, list[str]]:
    """Every live descendant of `root`, with its stat fields, from one scan of /proc. `unrelated`, if
    given, caches the pids found not to be descendants: a process outside the tree never joins it (only
    descendants are re-parented to a subreaper), so later scans skip them; a pid leaves the cache when it
    is gone from /proc, before it can be reused."""
    stats: dict[int, list[str]] = {}
    live = {int(name) for name in os.listdir("/proc") if name.isdigit()}
    if unrelated is not None:
        unrelated &= live
    for pid in live - (unrelated if unrelated is not None else set()):
        fields = proc_stat(pid)
        if fields is not None:
            stats[pid] = fields
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    out: dict[int, list[str]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out[pid] = stats[pid]
        todo.extend(children.get(pid, []))
    if unrelated is not None:
        # Only processes whose parent is known to be outside the tree: one whose parent vanished
        # during the scan may be an orphan on its way to us.
        outside = (set(stats) | unrelated) - set(out) - {root}
        unrelated.update(pid for pid, f in stats.items()
                         if pid not in out and pid != root and (int(f[1]) in outside or f[1] == "0"))
    return out


class Sampler(threading.Thread):
    """Samples the tree's total resident set (stat field rss) until stopped."""

    def __init__(self, interval: float):
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self.seen: set[tuple[int, str]] = set()  # (pid, start time): pids can be reused
        self.halt = threading.Event()

    def run(self) -> None:
        me, unrelated = os.getpid(), set()
        while not self.halt.is_set():
            tree = descendants(me, unrelated)
            self.peak_kib = max(self.peak_kib, sum(int(f[21]) for f in tree.values()) * PAGE_KIB)
            self.seen.update((pid, f[19]) for pid, f in tree.items())
            self.samples += 1
            self.halt.wait(self.interval)


class LocalAws:
    """The local AWS server of one LOCAL_AWS_DIR: its request log and its CPU."""

    def __init__(self, state_dir: Path):
        self.log = state_dir / "server.log"
        try:
            self.pid: int | None = int((state_dir / "server.pid").read_text().strip())
        except (OSError, ValueError):
            self.pid = None
        env = proc_env(self.pid) if self.pid and is_server(self.pid) else {}
        self.running = bool(env)
        self.scale = float(env.get("LOCAL_AWS_TIME_SCALE", "1")) if env else None
        self.logs_requests = bool(env.get("LOCAL_AWS_LOG_REQUESTS"))
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.cpu0 = self.cpu()


    def cpu(self) -> float | None:
        fields = proc_stat(self.pid) if self.pid else None
        return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else None

    def calls_since_start(self) -> tuple[dict | None, str | None]:
        if not self.running:
            return None, f"no local AWS server runs for {self.log.parent}"
        if not self.logs_requests:
            return None, "the server was started without LOCAL_AWS_LOG_REQUESTS: it logs no requests"
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        by_status: dict[str, int] = {}
        for line in text.splitlines():
            m = REQUEST.search(ANSI.sub("", line))
            if m and not m.group(2).startswith("/moto-api/"):
                by_status[m.group(3)] = by_status.get(m.group(3), 0) + 1
        return {"total": sum(by_status.values()), "by_status": dict(sorted(by_status.items())),
                "by_action": by_action(text)}, None

    def report(self) -> dict:
        cpu1 = self.cpu()
        return {
            "state_dir": str(self.log.parent),
            "time_scale": self.scale,
            "server_cpu_s": round(cpu1 - self.cpu0, 3) if cpu1 is not None and self.cpu0 is not None else None,
        }


def by_action(log_text: str) -> dict[str, int]:
    """AWS requests per IAM action in a stretch of a local AWS's server.log."""
    counts: dict[str, int] = {}
    for m in ACTION.finditer(log_text):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return dict(sorted(counts.items()))


def reap_until(pid: int) -> int:
    """Reap children (the command and orphans re-parented to us) until `pid` exits; its wait status."""
    while True:
        got, status, _ = os.wait4(-1, 0)
        if got == pid:
            return status


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="measure.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--local-aws-dir", default=os.environ.get("LOCAL_AWS_DIR"),
                   help="state dir of the local AWS the command talks to (default: $LOCAL_AWS_DIR)")
    p.add_argument("--out", help="write the JSON here instead of stdout")
    p.add_argument("--child-stdout", help="file for the command's stdout (default: this process's stderr)")
    p.add_argument("--sample-interval", type=float, default=0.05, help="RSS sampling period in s, 0 = off")
    p.add_argument("--label", help="copied into the JSON")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        p.error("no command given (put it after --)")

    set_subreaper()
    aws = LocalAws(Path(args.local_aws_dir)) if args.local_aws_dir else None
    sampler = Sampler(args.sample_interval) if args.sample_interval > 0 else None
    stdout = open(args.child_stdout, "wb") if args.child_stdout else sys.stderr.buffer
    load_before = os.getloadavg()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    t0 = time.monotonic()
    child = subprocess.Popen(cmd, stdout=stdout)
    if sampler:
        sampler.start()
    status = reap_until(child.pid)
    wall = time.monotonic() - t0
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen

    if sampler:
        sampler.halt.set()
        sampler.join()
    while True:  # orphans that already exited: reap them so their CPU counts
        try:
            if os.wait4(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    leftovers = [{"pid": pid, "state": f[0]} for pid, f in descendants(os.getpid()).items()]

    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    result: dict = {"label": args.label, "command": cmd, "exit_code": child.returncode}
    result.update(
        wall_s=round(wall, 3),
        cpu_s=round(user + sys_, 3),
        cpu_user_s=round(user, 3),
        cpu_sys_s=round(sys_, 3),
        peak_rss_largest_process_kib=after.ru_maxrss,
        peak_rss_tree_sampled_kib=sampler.peak_kib if sampler else None,
        sample_interval_s=args.sample_interval if sampler else None,
        samples=sampler.samples if sampler else 0,
        processes_seen=len(sampler.seen) if sampler else None,
    )
    if aws:
        calls, note = aws.calls_since_start()
        result.update(calls=calls, calls_note=note, local_aws=aws.report())
    else:
        result.update(calls=None, calls_note="no --local-aws-dir (or LOCAL_AWS_DIR) given", local_aws=None)
    result.update(
        leftover_processes=leftovers,
        measure_cpu_s=round(self_after.ru_utime + self_after.ru_stime
                            - self_before.ru_utime - self_before.ru_stime, 3),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        nproc=os.cpu_count(),
    )
    text = json.dumps(result, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    if child.returncode < 0:
        return 128 - child.returncode
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

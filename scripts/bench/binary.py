"""binary.py: section 5 of scripts/bench/run, the binary itself: its size, its start-up (`--version`, and
`status` against a seeded local AWS) against the AWS CLI's (`aws --version`, and the same reads with
scripts/baseline/aws-cli-status.sh), and peak RSS. Start-up is the median wall time of REPS runs, each
timed from spawn to exit by this process (Python's spawn costs about 1 ms of it, on both sides).
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import time
from pathlib import Path

import overhead
import stack

REPO = stack.REPO
STATUS_SCRIPT = REPO / "scripts/baseline/aws-cli-status.sh"


def describe(exe: Path) -> dict:
    """What binary is measured: path, size, SHA-256, version, linkage (`file`)."""
    data = exe.read_bytes()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        kind = subprocess.run(["file", "-b", exe], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        kind = "(file(1) not installed)"
    return {"path": str(exe), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "version": version,
            "file": kind}


def timed(cmd: list, env: dict | None, reps: int) -> dict:
    """Median, min and max wall seconds of `reps` runs of `cmd` (stdout and stderr discarded)."""
    walls, codes = [], set()
    for _ in range(reps):
        t = time.perf_counter()
        p = subprocess.run([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        codes.add(p.returncode)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "runs": reps,
            "exit_codes": sorted(codes)}


def run(bench, reps: int, results: dict) -> dict:
    exe, aws_cli = bench.bin, bench.awscli_bin / "aws"
    out: dict = {"reps": reps}
    # The baseline's runs cost half a second to five seconds each: a third as many of them.
    base_reps = max(1, reps // 3)
    out["version"] = {"bakeroll": timed([exe, "--version"], None, reps),
                      "aws": timed([aws_cli, "--version"], None, base_reps)}
    server = stack.LocalAws(bench.work / "binary", 0.01)
    try:
        server.reseed(fresh=False)
        env = dict(server.env, PATH=f"{bench.awscli_bin}:{server.env['PATH']}")
        status = [exe, "--pipeline", REPO / "pipeline/local.toml", "--no-progress", "status"]
        script = [STATUS_SCRIPT, stack.GROUP]
        one = {}
        for name, cmd in (("bakeroll", status), ("script", script)):
            offset = server.log_offset()
            m = overhead.measured(server, cmd, env, bench.work / f"status-{name}.out", f"status {name}")
            one[name] = {"exit_code": m["exit_code"], "calls": m["calls"], "rss_largest_kib": m["peak_rss_largest_process_kib"],
                         "cpu_s": m["cpu_s"], "wall_s": m["wall_s"], "server_ms": server.request_ms_since(offset)}
        out["status_calls_match"] = one["bakeroll"]["calls"]["by_action"] == one["script"]["calls"]["by_action"]
        out["status_one"] = one
        out["status"] = {"bakeroll": timed(status, env, reps), "script": timed(script, env, base_reps)}
    finally:
        server.down()
    ship = results.get("overhead", {}).get("scales", {}).get("0.01", {}).get("bakeroll")
    out["ship_rss_kib"] = ship["rss_largest_kib"] if ship else None
    script = results.get("overhead", {}).get("scales", {}).get("0.01", {}).get("script")
    out["script_rss_largest_kib"] = script["rss_largest_kib"] if script else None
    out["script_rss_tree_kib"] = script["rss_tree_kib"] if script else None
    fake = [c for c in results.get("limit", {}).get("cases", []) if c.get("instances") == 1000]
    out["fake_1000_rss_kib"] = max((c["rss_kib"] for c in fake), default=None)
    bench.log(f"binary: --version {out['version']['bakeroll']['median_s'] * 1000:.1f} ms vs aws "
              f"{out['version']['aws']['median_s'] * 1000:.0f} ms; status {out['status']['bakeroll']['median_s'] * 1000:.0f} ms "
              f"vs {out['status']['script']['median_s'] * 1000:.0f} ms")
    return out

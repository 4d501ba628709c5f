"""overhead.py: section 1 of scripts/bench/run, bakeroll against the AWS CLI script it replaces
(scripts/baseline/aws-cli-deploy.sh), the same deploy from the same already provisioned build instance.

Per time scale (0.01: AWS durations at 1/100, both tools polling every 20 AWS s; 0.0001: every AWS
duration vanishes, so wall time is the tool's own: see measure.py, "Wall time not spent waiting on AWS"),
PAIRS runs of each tool, alternating which goes first, each on the same server after `reset` + `seed`
and a fresh build instance (scripts/baseline/prepare-build-instance.sh, not measured). Each run is one
measure.py measurement of the whole process tree:
* script: `aws-cli-deploy.sh shop-web BUILD AMI_NAME POLL` (create-image, poll describe-images,
  describe-auto-scaling-groups, create-launch-template-version, start-instance-refresh, poll
  describe-instance-refreshes);
* bakeroll: `bakeroll ship` of pipeline/local.toml's environment with `bake.build_instance = BUILD` and the
  script's refresh preferences (checkpoints and bake time left out, as the script leaves them out): the lock,
  preflight, CreateImage + tags + wait, a launch-template version read back, the refresh with AutoRollback,
  the health gate's polls, the verified fleet, the new default version, the lock released.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import stack

REPO = stack.REPO
MEASURE = REPO / "scripts/bench/measure.py"
BASELINE = REPO / "scripts/baseline"
POLL_AWS_S = 20  # both tools' poll interval, AWS seconds (pipeline/local.toml's 200 ms at scale 0.01)
# bakeroll's own real-time waits that no pipeline setting scales (reported apart at the vanishing scale):
LOCK_SETTLE_S = 2.0  # src/engine/lock.rs SETTLE: the deploy lock is read back after 2 s
IMAGE_POLL_FLOOR_S = 0.1  # src/engine/bake.rs wait_available: the image is polled at most every 100 ms


def bench_pipeline(path: Path, build_instance: str, poll: str) -> Path:
    """pipeline/local.toml's environment with the script's preferences, baking from `build_instance`."""
    env = (REPO / "pipeline/local.toml").read_text().split("[environments.local]")[1]
    keep = [line for line in env.splitlines()
            if not line.startswith(("checkpoints", "checkpoint_delay", "bake_time", "poll_interval"))]
    path.write_text("\n".join([
        'name = "bench"', 'region = "us-east-1"', "[bake]", f'build_instance = "{build_instance}"',
        'ami_name = "shop-{commit}"', 'timeout = "60s"', 'image_timeout = "60s"', f'poll_interval = "{poll}"',
        'tags = { app = "shop" }', "[environments.local]", *keep, f'poll_interval = "{poll}"', ""]))
    return path


def measured(server: stack.LocalAws, cmd: list, env: dict, out: Path, label: str) -> dict:
    """One measure.py run of `cmd` against `server`; its JSON, plus the command's stdout as `stdout`."""
    p = stack.run([sys.executable, MEASURE, "--local-aws-dir", server.dir, "--child-stdout", out,
                   "--label", label, "--", *cmd], env=env)
    try:
        m = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"measure.py gave no JSON for {label}: {p.stderr[-2000:]}") from None
    m["stdout"] = out.read_text()
    m["stderr_tail"] = p.stderr[-1500:]
    return m


def polls(events: Path) -> int | None:
    """Polls of bakeroll's refresh watch: one `fleet` event each (--events)."""
    if not events.exists():
        return None
    return sum(1 for line in events.read_text().splitlines() if json.loads(line).get("event") == "fleet")


def one_run(tool: str, server: stack.LocalAws, bench, n: int) -> dict:
    seed = server.reseed()
    poll = f"{POLL_AWS_S * server.scale:g}"
    env = dict(server.env, PATH=f"{bench.awscli_bin}:{server.env['PATH']}")
    build = stack.run([BASELINE / "prepare-build-instance.sh", seed["base_ami"], poll], env=env, check=True).stdout.strip()
    out = bench.work / f"overhead-{tool}-{server.scale:g}-{n}.out"
    if tool == "script":
        m = measured(server, [BASELINE / "aws-cli-deploy.sh", stack.GROUP, build, f"shop-script-{n}", poll], env, out, tool)
        facts = dict(line.split("=", 1) for line in m["stdout"].splitlines() if "=" in line)
        m["ok"] = m["exit_code"] == 0 and facts.get("status") == "Successful"
        m["polls"] = m["calls"]["by_action"].get("autoscaling:DescribeInstanceRefreshes", 0) if m["calls"] else None
    else:
        pipe = bench_pipeline(bench.work / f"overhead-{server.scale:g}-{n}.toml", build, f"{POLL_AWS_S * server.scale * 1000:g}ms")
        events = out.with_suffix(".ndjson")
        cmd = [bench.bin, "--pipeline", pipe, "--no-progress", "--output", "json", "--events", events,
               "ship", "--commit", f"bench{n}"]
        m = measured(server, cmd, env, out, tool)
        summary = json.loads(m["stdout"] or "{}")
        m["ok"] = m["exit_code"] == 0 and summary.get("outcome") == "deployed"
        m["polls"] = polls(events)
        m["summary_api_calls"] = summary.get("api_calls")
    if not m["ok"]:
        m["why"] = f"exit {m['exit_code']}: {m['stderr_tail'][-600:]}"
    m.pop("stdout")
    bench.log(f"overhead {tool} scale {server.scale:g} run {n + 1}: ok={m['ok']} cpu {m['cpu_s']} s wall {m['wall_s']} s "
              f"calls {m['calls']['total'] if m['calls'] else '?'}")
    return m


def med(runs: list[dict], key) -> float | None:
    xs = [key(r) for r in runs if r.get("ok")]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["ok"]]
    actions = sorted({a for r in ok for a in (r["calls"] or {}).get("by_action", {})})
    return {
        "runs": len(runs), "ok": len(ok), "failures": [r.get("why") for r in runs if not r["ok"]],
        "cpu_s": med(runs, lambda r: r["cpu_s"]), "wall_s": med(runs, lambda r: r["wall_s"]),
        "cpu_sys_s": med(runs, lambda r: r["cpu_sys_s"]),
        "calls": med(runs, lambda r: r["calls"]["total"] if r["calls"] else None),
        "polls": med(runs, lambda r: r["polls"]),
        "rss_largest_kib": med(runs, lambda r: r["peak_rss_largest_process_kib"]),
        "rss_tree_kib": med(runs, lambda r: r["peak_rss_tree_sampled_kib"]),
        "processes": med(runs, lambda r: r["processes_seen"]),
        "server_cpu_s": med(runs, lambda r: r["local_aws"]["server_cpu_s"]),
        "by_action": {a: med(runs, lambda r, a=a: r["calls"]["by_action"].get(a, 0)) for a in actions},
        "cpu_s_all": [r["cpu_s"] for r in ok], "wall_s_all": [r["wall_s"] for r in ok],
    }


def run(bench, pairs: int, scales: tuple[float, ...]) -> dict:
    result = {"pairs": pairs, "poll_aws_s": POLL_AWS_S, "lock_settle_s": LOCK_SETTLE_S,
              "image_poll_floor_s": IMAGE_POLL_FLOOR_S, "scales": {}}
    for scale in scales:
        server = stack.LocalAws(bench.work / f"overhead-{scale:g}", scale)
        try:
            runs = {"script": [], "bakeroll": []}
            for n in range(pairs):
                order = ("script", "bakeroll") if n % 2 == 0 else ("bakeroll", "script")
                for tool in order:
                    runs[tool].append(one_run(tool, server, bench, n))
        finally:
            server.down()
        result["scales"][f"{scale:g}"] = {tool: summarize(rs) for tool, rs in runs.items()}
        result["scales"][f"{scale:g}"]["raw"] = runs
    return result

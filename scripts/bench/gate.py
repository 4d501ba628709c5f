#!/usr/bin/env python3
"""Benchmark of bakeroll's health gate on the local AWS (issue: "a health gate that catches a bad
release before AWS does, with fewer calls").

    scripts/bench/gate.py [--runs N] [--bakeroll PATH] [--out FILE] [--json FILE]

1. Detect-to-rollback, N broken ships per mode, interleaved, on one seeded local AWS at time scale
   0.03 (SCALE says why not the demo's 0.01; pipeline/local.toml: 3 instances, two target groups,
   unhealthy_threshold 2), each run with a health-check interval drawn from INTERVALS (why: there):
   * `bakeroll-20s`: `bakeroll ship` of a release whose AMI is tagged `local-aws:health=unhealthy`, with
     the demo pipeline's 20 AWS s poll (poll_interval 600 ms real at SCALE);
   * `bakeroll-5s`: the same with the real default's 5 AWS s poll (150 ms real);
   * `autorollback`: the baseline, AWS's AutoRollback alone: the same StartInstanceRefresh (the
     preferences bakeroll's own `deploy --dry-run` plan lists, a launch-template version made the same
     way) started with boto3, nobody watching.
   For every run an independent observer (boto3, its own threads) polls DescribeAutoScalingGroups and
   each target group's DescribeTargetHealth every 1 AWS s (30 ms real) and notes when it first sees a
   new instance `unhealthy`; the rollback's moment is the refresh's RollbackDetails.RollbackStartTime
   (the emulator's wall clock), and RollbackReason says who rolled back (AWS's AutoRollback says "auto
   rollback started"). Figure: RollbackStartTime − first unhealthy, in AWS seconds (real ÷ scale); its
   resolution is the observer's period plus one round of its calls (≈ 1-3 AWS s).
2. Calls per poll: a healthy `bakeroll deploy` at 3 and at 30 instances, from its JSON summary's
   `api_calls` (preflight's reads subtracted) and the number of polls (fleet samples in `--events`),
   with bakeroll's CPU time per poll (its whole process, from wait4); and at 300 and 1 000 instances
   in the fake cloud (`cargo run --example gate_calls`, which also gives the most calls in one poll).

Writes a Markdown section to --out (default docs/benchmarks/gate.md) and stdout, and the raw figures
as JSON to --json (default beside --out). Stops the local AWS it started on every exit path. Needs the
local AWS's virtualenv (boto3); re-executes itself with it when started with another Python.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# 0.03, not the demo's 0.01: at 0.01 every real millisecond is 0.1 AWS s, so the local AWS's own answer
# times (one Python server; a poll's calls and the RollbackInstanceRefresh take tens of real ms) added
# several AWS seconds that real AWS does not. Every AWS duration keeps its AWS value; real time stretches.
SCALE = 0.03
GROUP = "shop-web"
OBSERVER_PERIOD = SCALE  # 1 AWS s
# The target groups' health-check interval of each broken run, drawn from this range (AWS seconds). The
# emulator's timings are exact, and the seed's 10 s interval makes a new instance's first `unhealthy`
# (boot + UnhealthyThresholdCount x interval after the refresh starts, which is also when bakeroll's
# polls start) land on a multiple of both 5 and 20 s: on a poll, every run — a best case, not a figure.
# Real fleets differ in boot time and health-check settings; a drawn interval spreads the poll's phase.
INTERVALS = range(6, 31)  # ALB: 5-300 s, and more than the seed's 5 s timeout


def poll_ms(aws_seconds: float) -> str:
    """bakeroll's poll_interval (real time) for a poll of `aws_seconds` at SCALE."""
    return f"{round(aws_seconds * SCALE * 1000)}ms"
BROKEN = "local-aws:health=unhealthy"

try:
    import boto3
except ImportError:  # not the local AWS's virtualenv: use it
    venv = Path(os.environ.get("LOCAL_AWS_VENV", REPO / ".local-aws/venv"))
    os.execv(venv / "bin/python", [str(venv / "bin/python"), *sys.argv])

sys.path.insert(0, str(REPO / "scripts"))
from harness.local_aws import LocalAws  # noqa: E402


def log(msg: str) -> None:
    print(f"bench gate: {msg}", file=sys.stderr, flush=True)


def local_aws(work: Path) -> LocalAws:
    """One local AWS at SCALE in `work`, seeded (`seeded`); its endpoint and credentials also in this
    process's environment, for the observer's boto3 clients."""
    aws = LocalAws(work / "aws", SCALE).up()
    os.environ.update(aws.aws_env)
    aws.seeded = aws.seed()
    return aws


def pipeline(work: Path, name: str, poll: str) -> str:
    """pipeline/local.toml with another poll_interval for the environment, user_data made absolute."""
    text = (REPO / "pipeline/local.toml").read_text()
    text = text.replace('user_data = "scripts/provision-demo.sh"', f'user_data = "{REPO}/scripts/provision-demo.sh"')
    head, env = text.split("[environments.local]")
    env = env.replace('poll_interval = "200ms"', f'poll_interval = "{poll}"')
    # The health gate alone (sections 2 and 3): the metric gate's one GetMetricData a poll is section 6's.
    env = env.replace(f'poll_interval = "{poll}"', f'poll_interval = "{poll}"\nmetrics = "off"', 1)
    path = work / f"{name}.toml"
    # One pipeline name for both variants: the broken image is baked once and reused by each.
    path.write_text('name = "local"\n' + head + "[environments.local]" + env)
    return str(path)


def bakeroll(exe: str, args: list[str], env: dict) -> tuple[dict, float]:
    """Runs bakeroll; (its JSON summary, its CPU seconds, user + system)."""
    p = subprocess.Popen([exe, "--no-progress", "--output", "json", *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return json.loads(stdout), usage.ru_utime + usage.ru_stime


class Observer(threading.Thread):
    """Notes when a new instance (not in `baseline`) is first seen unhealthy in a target group."""

    def __init__(self, baseline: set[str], tgs: list[str]):
        super().__init__(daemon=True)
        self.baseline, self.tgs = baseline, tgs
        self.first_unhealthy: float | None = None
        self.stop = threading.Event()
        self.asg, self.elb = boto3.client("autoscaling"), boto3.client("elbv2")

    def run(self) -> None:
        with cf.ThreadPoolExecutor(len(self.tgs)) as pool:
            while not self.stop.is_set() and self.first_unhealthy is None:
                t = time.time()
                answers = list(pool.map(lambda arn: self.elb.describe_target_health(TargetGroupArn=arn), self.tgs))
                for a in answers:
                    for d in a["TargetHealthDescriptions"]:
                        if d["Target"]["Id"] not in self.baseline and d["TargetHealth"]["State"] == "unhealthy":
                            self.first_unhealthy = t
                time.sleep(max(0.0, OBSERVER_PERIOD - (time.time() - t)))


def members(asg) -> set[str]:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return {i["InstanceId"] for i in g["Instances"] if not i["LifecycleState"].startswith("Terminat")}


def settle(asg, elb, tgs: list[str], want: int, timeout: float = 120) -> None:
    """Until `want` members are InService and healthy everywhere and no refresh is active."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
        live = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
        healthy = all(
            all(d["TargetHealth"]["State"] == "healthy" for d in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                if d["Target"]["Id"] in live)
            for arn in tgs)
        active = [r for r in asg.describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"]
                  if r["Status"] in ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")]
        if len(live) == want and healthy and not active:
            return
        time.sleep(0.1)
    raise SystemExit(f"the fleet did not settle on {want} healthy instances")


def start_like_bakeroll(exe: str, env: dict, pipe: str, ami: str) -> str:
    """The baseline's refresh: what bakeroll's own dry-run plan says it would start, started with boto3."""
    plan, _ = bakeroll(exe, ["--pipeline", pipe, "deploy", "--ami", ami, "--dry-run"], env)
    step = next(s for s in plan["plan"]["steps"] if s.get("action") == "autoscaling:StartInstanceRefresh")
    a, p = step["args"], step["args"]["preferences"]
    ec2, asg = boto3.client("ec2"), boto3.client("autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    version = ec2.create_launch_template_version(LaunchTemplateId=a["template_id"], SourceVersion=group["LaunchTemplate"]["Version"],
                                                 LaunchTemplateData={"ImageId": ami})["LaunchTemplateVersion"]["VersionNumber"]
    prefs = {"MinHealthyPercentage": p["min_healthy_percentage"], "MaxHealthyPercentage": p["max_healthy_percentage"],
             "SkipMatching": p["skip_matching"], "AutoRollback": p["auto_rollback"]}
    for key, arg in [("InstanceWarmup", "instance_warmup_seconds"), ("CheckpointDelay", "checkpoint_delay_seconds"), ("BakeTime", "bake_time_seconds")]:
        if p.get(arg) is not None:
            prefs[key] = p[arg]
    if p.get("checkpoints"):
        prefs["CheckpointPercentages"] = p["checkpoints"]
    return asg.start_instance_refresh(
        AutoScalingGroupName=GROUP, Strategy="Rolling", Preferences=prefs,
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": a["template_id"], "Version": str(version)}})["InstanceRefreshId"]


def wait_terminal(asg, refresh_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = asg.describe_instance_refreshes(AutoScalingGroupName=GROUP, InstanceRefreshIds=[refresh_id])["InstanceRefreshes"][0]
        if r["Status"] in ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"):
            return r
        time.sleep(0.05)
    raise SystemExit(f"refresh {refresh_id} did not end")


def broken_run(mode: str, exe: str, env: dict, pipes: dict, ami: str, tgs: list[str], interval: int) -> dict:
    asg, elb = boto3.client("autoscaling"), boto3.client("elbv2")
    for arn in tgs:
        elb.modify_target_group(TargetGroupArn=arn, HealthCheckIntervalSeconds=interval)
    settle(asg, elb, tgs, 3)
    observer = Observer(members(asg), tgs)
    observer.start()
    failure: dict = {}
    if mode == "autorollback":
        refresh_id = start_like_bakeroll(exe, env, pipes["bakeroll-20s"], ami)
    else:
        summary, _ = bakeroll(exe, ["--pipeline", pipes[mode], "ship", "--commit", "benchbad", "--tag", BROKEN], env)
        if not summary.get("deploy", {}).get("groups"):
            raise SystemExit(f"{mode}: bakeroll did not deploy: {summary.get('error')}")
        refresh_id = summary["deploy"]["groups"][0]["refresh_ids"][0]
        failure = ((summary["deploy"]["groups"][0].get("outcome") or {}).get("reason") or {}).get("failure") or {}
    r = wait_terminal(asg, refresh_id)
    observer.stop.set()
    observer.join()
    details = r.get("RollbackDetails") or {}
    start = details.get("RollbackStartTime")
    first = observer.first_unhealthy
    detect = (start.timestamp() - first) / SCALE if start and first else None
    by = None if not start else ("AutoRollback" if "auto rollback" in (details.get("RollbackReason") or "") else "bakeroll")
    # bakeroll's own view: from the poll that saw the first evidence to the poll that convicted (watch clock).
    held = failure.get("convicted_secs", 0) - failure.get("first_evidence_secs", 0) if failure else None
    return {"mode": mode, "refresh": refresh_id, "status": r["Status"], "rolled_back_by": by, "detect_to_rollback_aws_s": detect,
            "health_check_interval_s": interval,
            "evidence_to_conviction_aws_s": held / SCALE if held is not None else None,
            "observations": failure.get("observations")}


def watch_elsewhere(tgs: int, lock: bool = True, verified: bool = True) -> dict[str, int]:
    """Calls of the watch's four operations that one group's `bakeroll deploy` makes outside the watch:
    the deploy lock reads the group three times (take, read back, release), preflight reads the group,
    its refreshes, its instances and each target group's health once, and a release that ends verified
    reads the group once more to protect what it runs and its rollback target. The engine alone
    (examples/gate_calls.rs) takes no lock."""
    group_reads = 1 + (3 if lock else 0) + (1 if verified else 0)
    return {"autoscaling:DescribeAutoScalingGroups": group_reads, "autoscaling:DescribeInstanceRefreshes": 1,
            "ec2:DescribeInstances": 1, "elasticloadbalancing:DescribeTargetHealth": tgs}


def calls_run(exe: str, env: dict, pipe: str, ami: str, work: Path, n: int, tgs: list[str]) -> dict:
    """A healthy deploy at `n` instances: calls per poll of its watch."""
    asg, elb = boto3.client("autoscaling"), boto3.client("elbv2")
    asg.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=max(2 * n, 6), DesiredCapacity=n)
    settle(asg, elb, tgs, n, timeout=300)
    events = work / f"calls-{n}.ndjson"
    summary, cpu = bakeroll(exe, ["--pipeline", pipe, "--events", str(events), "deploy", "--ami", ami], env)
    assert summary["outcome"] == "deployed", summary
    polls = sum(1 for line in events.read_text().splitlines() if json.loads(line).get("event") == "fleet")
    c = summary["api_calls"]
    watch = {a: c.get(a, 0) - n for a, n in watch_elsewhere(len(tgs)).items()}
    return {"instances": n, "target_groups": len(tgs), "polls": polls, "watch_calls": watch,
            "calls_per_poll": sum(watch.values()) / max(polls, 1), "limit": 2 + len(tgs), "cpu_ms_per_poll": 1000 * cpu / max(polls, 1)}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fake_calls() -> list[str]:
    """The fake cloud's table at 300 and 1 000 instances (the example prints Markdown, then one JSON line)."""
    out = subprocess.run(["cargo", "run", "-q", "--example", "gate_calls", "--", "300", "1000"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("|")]


def markdown(args, detect: list[dict], calls: list[dict], fake: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    fmt = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    lines = [
        "# Health gate: detect-to-rollback and calls per poll",
        "",
        f"`scripts/bench/gate.py --runs {args.runs}` at commit {commit}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"nproc {os.cpu_count()}, load average {load}. Local AWS at time scale {SCALE}; figures in AWS seconds "
        f"(real ÷ {SCALE}). Broken ships of pipeline/local.toml's stack (3 instances, 2 target groups, "
        "unhealthy_threshold 2); first unhealthy = an independent boto3 observer's first sight of a new "
        "instance `unhealthy` (every ~1 AWS s); rollback = the refresh's RollbackStartTime.",
        "",
        "| mode | runs | rolled back by bakeroll | by AWS's AutoRollback | median first unhealthy → rollback (AWS s) | min | max | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    goals = {"bakeroll-20s": "≤ 22 (poll 20 + 2), every run bakeroll's", "bakeroll-5s": "≤ 7 (poll 5 + 2), every run bakeroll's", "autorollback": "baseline"}
    base = median([r["detect_to_rollback_aws_s"] for r in detect if r["mode"] == "autorollback"])
    for mode in ("bakeroll-20s", "bakeroll-5s", "autorollback"):
        rs = [r for r in detect if r["mode"] == mode]
        xs = [r["detect_to_rollback_aws_s"] for r in rs if r["detect_to_rollback_aws_s"] is not None]
        m = median(xs)
        ratio = f" ({base / m:.1f}× faster than the baseline)" if m and base and mode != "autorollback" else ""
        lines.append(f"| {mode} | {len(rs)} | {sum(r['rolled_back_by'] == 'bakeroll' for r in rs)} | "
                     f"{sum(r['rolled_back_by'] == 'AutoRollback' for r in rs)} | {fmt(m)}{ratio} | {fmt(min(xs) if xs else None)} | "
                     f"{fmt(max(xs) if xs else None)} | {goals[mode]} |")
    lines += ["", "| instances | target groups | polls | watch calls per poll (limit) | bakeroll CPU per poll |", "|---:|---:|---:|---:|---:|"]
    for c in calls:
        lines.append(f"| {c['instances']} | {c['target_groups']} | {c['polls']} | {c['calls_per_poll']:.2f} ({c['limit']}) | {c['cpu_ms_per_poll']:.1f} ms |")
    lines += ["", "Calls per poll are the watch's reads (the JSON summary's `api_calls` less preflight's) over its polls "
              "(fleet samples in `--events`); the one DescribeInstances that confirms the verified fleet is among them.", ""]
    if fake:
        lines += ["Fake cloud (virtual time, one healthy deploy per size, `cargo run --example gate_calls -- 300 1000`):", "", *fake, ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    target = os.environ.get("CARGO_TARGET_DIR", REPO / "target")
    ap.add_argument("--bakeroll", default=str(Path(target) / "debug/bakeroll"))
    ap.add_argument("--out", default=str(REPO / "docs/benchmarks/gate.md"))
    ap.add_argument("--json")
    ap.add_argument("--skip-calls", action="store_true")
    ap.add_argument("--skip-fake", action="store_true", help="leave out the fake cloud's 300 / 1 000 instances (needs cargo)")
    args = ap.parse_args()
    if not Path(args.bakeroll).exists():
        raise SystemExit(f"no bakeroll binary at {args.bakeroll}: cargo build first, or pass --bakeroll")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-gate.") as tmp:
        work = Path(tmp)
        aws = local_aws(work)
        try:
            env = dict(aws.env)  # scrubbed: nothing of the caller's CI job or AWS settings
            tgs = aws.seeded["target_group_arns"]
            pipes = {"bakeroll-20s": pipeline(work, "poll-20s", poll_ms(20)), "bakeroll-5s": pipeline(work, "poll-5s", poll_ms(5))}
            baked, _ = bakeroll(args.bakeroll, ["--pipeline", pipes["bakeroll-20s"], "bake", "--commit", "benchbad", "--tag", BROKEN], env)
            bad = baked["bake"]["ami_id"]
            detect = []
            draw = random.Random(20261201)  # the same intervals run after run
            for n in range(args.runs):
                for mode in ("bakeroll-20s", "bakeroll-5s", "autorollback"):
                    r = broken_run(mode, args.bakeroll, env, pipes, bad, tgs, draw.choice(INTERVALS))
                    log(f"run {n + 1}/{args.runs} {mode}: {r}")
                    detect.append(r)
            calls = []
            if not args.skip_calls:
                good, _ = bakeroll(args.bakeroll, ["--pipeline", pipes["bakeroll-20s"], "bake", "--commit", "benchgood"], env)
                images = [good["bake"]["ami_id"], aws.seeded["base_ami"]]
                for i, n in enumerate((3, 30)):
                    calls.append(calls_run(args.bakeroll, env, pipes["bakeroll-20s"], images[i % 2], work, n, tgs))
                    log(f"calls at {n}: {calls[-1]}")
        finally:
            aws.down()
    fake = [] if args.skip_fake else fake_calls()
    text = markdown(args, detect, calls, fake)
    Path(args.out).write_text(text)
    Path(args.json or Path(args.out).with_suffix(".json")).write_text(json.dumps({"scale": SCALE, "detect": detect, "calls": calls}, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()

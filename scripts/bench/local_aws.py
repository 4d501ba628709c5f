"""The measuring half of scripts/bench/local-aws (run it through that script: it owns the work dir
and the EXIT trap that stops every server started here, even when this process is killed).

1. Start-up, N runs (default 5), interleaved with its baseline:
   * `scripts/local-aws up` in a fresh LOCAL_AWS_DIR (venv already installed), until the command
     returns (it returns once the server answers);
   * baseline: plain `moto_server -H 127.0.0.1 -p PORT` from the same venv, until
     `GET /moto-api/data.json` answers 200 (polled every 0.05 s, as `up` polls its server).
2. Refresh, N runs (default 3), each on a fresh server at LOCAL_AWS_TIME_SCALE=0.01 after
   `scripts/local-aws seed`: StartInstanceRefresh of the seeded group `shop-web` (3 instances) to a
   new launch template version (SourceVersion 1, another al2023 image), InstanceWarmup 60,
   MinHealthyPercentage 100, MaxHealthyPercentage 200, SkipMatching false; timed from the call until
   DescribeInstanceRefreshes (polled every 0.1 s) says Successful.
   Baseline, interleaved: a real time.sleep() of the refresh's ideal duration (what it must take
   by construction, in AWS seconds, × the scale), derived from the seeded resources and the
   emulator's own constants (see ideal_refresh()).
3. Writes the results table (markdown) to --out and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import local_aws as harness  # noqa: E402

SCALE = 0.01
WARMUP = 60
GROUP = "shop-web"
STARTUP_GOAL = 5.0
REFRESH_GOAL = 10.0
POLL = 0.1  # refresh status poll period (s)
SERVER_POLL = 0.05  # start-up poll period (s), the same as `scripts/local-aws up` uses
START_TIMEOUT = 60.0
REFRESH_TIMEOUT = 120.0
TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _sigterm(signum, frame):  # noqa: ARG001
    raise SystemExit(143)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.repo = Path(args.repo)
        self.venv = Path(args.venv)
        self.work = Path(args.work)
        self.counter = 0
        self.last_reported: float | None = None
        self.servers: dict[Path, harness.LocalAws] = {}
        self.moto_procs: dict[int, subprocess.Popen] = {}
        # every emulator setting at its default except the time scale; the venv as the wrapper uses it
        self.env = dict(harness.scrubbed_env(), LOCAL_AWS_VENV=str(self.venv))

    # --- servers --------------------------------------------------------------------------------
    def _state_dir(self, kind: str) -> Path:
        self.counter += 1
        d = self.work / f"state-{kind}-{self.counter}"
        d.mkdir()
        return d

    def up(self, kind: str) -> tuple[Path, int, float]:
        state = self._state_dir(kind)
        server = harness.LocalAws(state, SCALE, base_env=self.env)
        self.servers[state] = server
        t0 = time.perf_counter()
        server.up()
        elapsed = time.perf_counter() - t0
        # `up` says "started pid P on port N in X s" on stderr: its own view, from spawning the
        # server process until it answered (without the wrapper's and the CLI's own start-up)
        m = re.search(r"started pid \d+ on port \d+ in ([0-9.]+) s", server.up_output.stderr)
        self.last_reported = float(m.group(1)) if m else None
        return state, server.port, elapsed

    def down(self, state: Path) -> None:
        server = self.servers.pop(state, None)
        if server:
            server.down()

    def moto_baseline(self) -> tuple[float, float]:
        """Plain moto_server from the same venv, until GET /moto-api/data.json answers; and then
        (timed separately, context only) until a first EC2, Auto Scaling and ELBv2 call answered."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.counter += 1
        pidfile = self.work / f"moto-{self.counter}.pid"
        logf = open(self.work / f"moto-{self.counter}.log", "wb")
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(self.venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                env=self.env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                start_new_session=True)
        pidfile.write_text(f"{proc.pid}\n")
        self.moto_procs[proc.pid] = proc
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {proc.returncode}; see {logf.name}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2) as r:
                        if 200 <= r.status < 300:
                            r.read()
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.perf_counter() - t0 > START_TIMEOUT:
                    raise RuntimeError("moto_server did not answer in time")
                time.sleep(SERVER_POLL)
            startup = time.perf_counter() - t0
            return startup, first_calls(port)
        finally:
            self._stop_moto(proc)
            pidfile.unlink(missing_ok=True)
            logf.close()

    def _stop_moto(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.moto_procs.pop(proc.pid, None)

    def cleanup(self) -> None:
        for proc in list(self.moto_procs.values()):
            self._stop_moto(proc)
        for state in list(self.servers):
            self.down(state)

    # --- 1. start-up ----------------------------------------------------------------------------
    def startup(self, runs: int) -> dict:
        log("start-up: one untimed warm-up of each (page cache)")
        self.moto_baseline()
        state, _, _ = self.up("warm")
        self.down(state)
        ups, motos, server_side, up_calls, moto_calls = [], [], [], [], []
        for i in range(runs):
            # alternate the order so a drift in machine load does not favour one side
            order = ("moto", "up") if i % 2 == 0 else ("up", "moto")
            for what in order:
                if what == "moto":
                    startup, calls = self.moto_baseline()
                    motos.append(startup)
                    moto_calls.append(calls)
                else:
                    state, port, elapsed = self.up("startup")
                    if not _answers(port):
                        raise RuntimeError("`up` returned but the server does not answer")
                    ups.append(elapsed)
                    if self.last_reported is not None:
                        server_side.append(self.last_reported)
                    up_calls.append(first_calls(port))
                    self.down(state)
            log(f"start-up run {i + 1}/{runs}: up {ups[-1]:.2f} s, moto_server {motos[-1]:.2f} s")
        return {"up": ups, "moto": motos, "up_reported": server_side, "up_calls": up_calls,
                "moto_calls": moto_calls}

    # --- 2. refresh -----------------------------------------------------------------------------
    def refresh(self, runs: int) -> dict:
        import boto3

        results: dict = {"refresh": [], "sleep": [], "ideal_aws": None, "parts": None, "api_aws": [],
                         "up": [], "seed": []}
        for i in range(runs):
            state, port, up_s = self.up("refresh")
            try:
                t0 = time.perf_counter()
                seed = self.servers[state].seed()
                seed_s = time.perf_counter() - t0
                kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
                ec2, asg, elbv2 = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw), boto3.client("elbv2", **kw)
                ideal, parts = ideal_refresh(asg, elbv2)
                if results["ideal_aws"] not in (None, ideal):
                    raise RuntimeError(f"the ideal refresh time changed between runs: {results['ideal_aws']} → {ideal}")
                results["ideal_aws"], results["parts"] = ideal, parts
                version, image = new_version(ec2, seed)
                wall, api_aws = timed_refresh(asg, seed["launch_template_id"], version)
                check_result(asg, version)
            finally:
                self.down(state)
            results["refresh"].append(wall)
            results["api_aws"].append(api_aws)
            results["up"].append(up_s)
            results["seed"].append(seed_s)
            t0 = time.perf_counter()
            time.sleep(ideal * SCALE)
            results["sleep"].append(time.perf_counter() - t0)
            log(f"refresh run {i + 1}/{runs}: {wall:.2f} s to Successful (image {image}); "
                f"ideal sleep {results['sleep'][-1]:.2f} s; up {up_s:.2f} s, seed {seed_s:.2f} s")
        return results


def first_calls(port: int) -> float:
    """Seconds for one call to each service the emulator extends (EC2, Auto Scaling, ELBv2), the
    clients made beforehand. moto_server imports a service's models on its first request to it;
    local-aws imports these three before it answers, so this is where the two differ."""
    import boto3

    kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2, asg, elbv2 = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw), boto3.client("elbv2", **kw)
    t0 = time.perf_counter()
    ec2.describe_vpcs()
    asg.describe_auto_scaling_groups()
    elbv2.describe_load_balancers()
    return time.perf_counter() - t0


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/config", timeout=5) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def ideal_refresh(asg, elbv2) -> tuple[float, list[tuple[str, float]]]:
    """AWS seconds the refresh must take by construction, from the seeded resources and the
    emulator's constants (scripts/emulator/README.md): Pending, then (MaxHealthyPercentage 200)
    all 3 replacements launch at once and boot; each is ready when it is healthy in every target
    group (counted from `running`: HealthyThresholdCount × interval) and its warm-up (counted from
    InService, i.e. also from `running`) has passed, so the later of the two; only then are the old
    instances terminated (MinHealthyPercentage 100), and the refresh ends when their
    deregistration delay (draining) is over."""
    from emulator import ec2_lifecycle, refresh  # the emulator's own constants (default settings)

    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    health, drain = 0.0, 0.0
    for arn in group["TargetGroupARNs"]:
        tg = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
        health = max(health, float(tg["HealthCheckIntervalSeconds"] * tg["HealthyThresholdCount"]))
        attrs = {a["Key"]: a["Value"] for a in
                 elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
        drain = max(drain, float(attrs.get("deregistration_delay.timeout_seconds", 300)))
    parts = [
        ("refresh Pending", float(refresh.PENDING_SECONDS)),
        ("boot (pending → running)", float(ec2_lifecycle.BOOT_SECONDS)),
        (f"max(warm-up {WARMUP}, healthy {health:g})", max(float(WARMUP), health)),
        ("deregistration delay (draining)", drain),
    ]
    return sum(v for _, v in parts), parts


def new_version(ec2, seed: dict) -> tuple[str, str]:
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    others = sorted((i for i in images if i["ImageId"] != seed["base_ami"]),
                    key=lambda i: i.get("CreationDate", ""), reverse=True)
    image = others[0]["ImageId"] if others else seed["base_ami"]
    v = ec2.create_launch_template_version(LaunchTemplateId=seed["launch_template_id"], SourceVersion="1",
                                           VersionDescription="bench: another image",
                                           LaunchTemplateData={"ImageId": image})
    return str(v["LaunchTemplateVersion"]["VersionNumber"]), image


def timed_refresh(asg, template_id: str, version: str) -> tuple[float, float]:
    """Seconds from StartInstanceRefresh until a poll sees Successful; also the refresh's own
    EndTime - StartTime converted to AWS seconds."""
    t0 = time.perf_counter()
    rid = asg.start_instance_refresh(
        AutoScalingGroupName=GROUP, Strategy="Rolling",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": version}},
        Preferences={"InstanceWarmup": WARMUP, "MinHealthyPercentage": 100, "MaxHealthyPercentage": 200,
                     "SkipMatching": False},
    )["InstanceRefreshId"]
    k = 0
    while True:
        r = asg.describe_instance_refreshes(AutoScalingGroupName=GROUP, InstanceRefreshIds=[rid])["InstanceRefreshes"][0]
        if r["Status"] in TERMINAL:
            break
        if time.perf_counter() - t0 > REFRESH_TIMEOUT:
            raise RuntimeError(f"refresh still {r['Status']} after {REFRESH_TIMEOUT:.0f} s: {r.get('StatusReason')}")
        k += 1
        time.sleep(max(0.0, t0 + k * POLL - time.perf_counter()))  # a fixed 0.1 s cadence
    elapsed = time.perf_counter() - t0
    if r["Status"] != "Successful":
        raise RuntimeError(f"refresh ended {r['Status']}: {r.get('StatusReason')}")
    api_aws = (r["EndTime"] - r["StartTime"]).total_seconds() / SCALE
    return elapsed, api_aws


def check_result(asg, version: str) -> None:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    inservice = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
    on_new = [i for i in inservice if i.get("LaunchTemplate", {}).get("Version") == version]
    if g["LaunchTemplate"]["Version"] != version or len(on_new) != 3 or len(inservice) != 3:
        raise RuntimeError(f"after Successful the group is not on version {version} with 3 new instances: {g}")


# --- report ---------------------------------------------------------------------------------------
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_runs(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_head(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "scripts/emulator",
                                "scripts/local-aws", "scripts/bench"], capture_output=True, text=True).stdout.strip()
        return head + (" (emulator/bench files modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(meta: dict, st: dict, rf: dict) -> str:
    up_m, moto_m = median(st["up"]), median(st["moto"])
    rf_m, sl_m = median(rf["refresh"]), median(rf["sleep"])
    ideal = rf["ideal_aws"]
    e2e = [u + s + r for u, s, r in zip(rf["up"], rf["seed"], rf["refresh"])]
    up_ready = [a + b for a, b in zip(st["up"], st["up_calls"])]
    moto_ready = [a + b for a, b in zip(st["moto"], st["moto_calls"])]
    upr_m, motor_m = median(up_ready), median(moto_ready)

    def verdict(value: float, goal: float) -> str:
        return "**pass**" if value < goal else "**FAIL**"

    lines = [
        "# Benchmark: local-aws (`scripts/local-aws`)",
        "",
        "Generated by `scripts/bench/local-aws` (see [README](README.md)); overwritten on every run.",
        "Goals from the local-aws issue: \"starts in under 5 s once installed and runs a seeded 3-instance",
        "refresh with 60 s warm-up at time scale 0.01 in under 10 s\".",
        "",
        "| run | |",
        "| --- | --- |",
        f"| date | {meta['date']} |",
        f"| command | `{meta['command']}` |",
        f"| commit | {meta['commit']} |",
        f"| machine | `nproc` {meta['nproc']}, {meta['python']}, moto {meta['moto']}, boto3 {meta['boto3']} |",
        f"| load average (1/5/15 min) | {meta['load_start']} at start, {meta['load_end']} at end |",
        f"| duration of the benchmark | {meta['duration']:.0f} s |",
        "",
        "## Results",
        "",
        "| figure | median | baseline (same run) | ratio | goal | result |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| `scripts/local-aws up` until it answers (installed; N={len(st['up'])}) | {up_m:.2f} s "
        f"| plain `moto_server` until `/moto-api/data.json` answers: {moto_m:.2f} s "
        f"| {up_m / moto_m:.2f}× | < {STARTUP_GOAL:g} s | {verdict(up_m, STARTUP_GOAL)} |",
        f"| seeded 3-instance refresh, warm-up 60 s, Min 100 / Max 200, scale {SCALE:g}, "
        f"StartInstanceRefresh → Successful (N={len(rf['refresh'])}) | {rf_m:.2f} s "
        f"| `time.sleep` of the ideal {ideal:g} AWS s × {SCALE:g}: {sl_m:.2f} s "
        f"| {rf_m / sl_m:.2f}× | < {REFRESH_GOAL:g} s | {verdict(rf_m, REFRESH_GOAL)} |",
        f"| context, not a goal: start-up + a first EC2, Auto Scaling and ELBv2 call (N={len(up_ready)}) "
        f"| `up` + calls: {upr_m:.2f} s | `moto_server` + the same calls: {motor_m:.2f} s "
        f"| {upr_m / motor_m:.2f}× | | |",
        "",
        "Ratios are median ÷ baseline median; they are the figures to compare between runs and machines.",
        "",
        "## Every run (seconds)",
        "",
        "| series | runs | median | max |",
        "| --- | --- | --- | --- |",
        f"| `up` | {fmt_runs(st['up'])} | {up_m:.2f} | {max(st['up']):.2f} |",
        *([f"| of which the server process, as `up` reports it (spawn → answers) | {fmt_runs(st['up_reported'])} "
           f"| {median(st['up_reported']):.2f} | {max(st['up_reported']):.2f} |"] if st["up_reported"] else []),
        f"| plain `moto_server` | {fmt_runs(st['moto'])} | {moto_m:.2f} | {max(st['moto']):.2f} |",
        f"| first EC2 + Auto Scaling + ELBv2 call after `up` | {fmt_runs(st['up_calls'])} "
        f"| {median(st['up_calls']):.2f} | {max(st['up_calls']):.2f} |",
        f"| first EC2 + Auto Scaling + ELBv2 call after `moto_server` answered | {fmt_runs(st['moto_calls'])} "
        f"| {median(st['moto_calls']):.2f} | {max(st['moto_calls']):.2f} |",
        f"| refresh to Successful (client view, 0.1 s polling) | {fmt_runs(rf['refresh'])} | {rf_m:.2f} | {max(rf['refresh']):.2f} |",
        f"| refresh EndTime − StartTime ÷ scale (AWS s, the emulator's own view) | "
        f"{', '.join(f'{x:.0f}' for x in rf['api_aws'])} | {median(rf['api_aws']):.0f} | {max(rf['api_aws']):.0f} |",
        f"| ideal sleep ({ideal:g} AWS s × {SCALE:g}) | {fmt_runs(rf['sleep'])} | {sl_m:.2f} | {max(rf['sleep']):.2f} |",
        f"| `up` at scale {SCALE:g} before each refresh (not a goal) | {fmt_runs(rf['up'])} | {median(rf['up']):.2f} | {max(rf['up']):.2f} |",
        f"| `seed` before each refresh (not a goal) | {fmt_runs(rf['seed'])} | {median(rf['seed']):.2f} | {max(rf['seed']):.2f} |",
        f"| `up` + `seed` + refresh (not a goal; the whole story from nothing) | {fmt_runs(e2e)} | {median(e2e):.2f} | {max(e2e):.2f} |",
        "",
        "## How the baselines are defined",
        "",
        "* **Start-up**: `moto_server -H 127.0.0.1 -p PORT` from the same virtualenv, polled every",
        f"  {SERVER_POLL:g} s (as `up` polls its own server) until `GET /moto-api/data.json` answers 200. The ratio is the",
        "  cost of the local-aws layer (bash wrapper, CLI, installing the emulator's patches) over moto itself.",
        "  Runs alternate which of the two goes first; one untimed warm-up of each precedes them.",
        "  moto_server imports a service's models only on the first request to it, while local-aws imports EC2,",
        "  Auto Scaling and ELBv2 (to patch them) before it answers; the context row therefore also times one call",
        "  to each of those services after both have answered, which is what any user of either server waits for.",
        f"* **Refresh**: the time the refresh must take by construction, {ideal:g} AWS s, slept for real",
        f"  (`time.sleep({ideal * SCALE:g})`) on this machine. The ratio is the emulator's overhead over an ideal",
        "  emulator (ticker granularity, request latency, the 0.1 s polling). The ideal is derived from the seeded",
        "  resources and the emulator's constants:",
        "",
        "| part | AWS s |",
        "| --- | --- |",
        *[f"| {name} | {v:g} |" for name, v in rf["parts"]],
        f"| **total** | **{ideal:g}** |",
        "",
        "Each refresh run uses a fresh server (its own `LOCAL_AWS_DIR`, `LOCAL_AWS_TIME_SCALE=0.01`, every other",
        "setting at its default) and `scripts/local-aws seed`; the desired configuration is a new launch template",
        "version (SourceVersion 1 with another `al2023-ami-*-x86_64` image); after `Successful` the bench checks the",
        "group is on that version with 3 InService instances from it.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--venv", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--startup-runs", type=int, default=5)
    p.add_argument("--refresh-runs", type=int, default=3)
    p.add_argument("--out", default=None, help="results file (default docs/benchmarks/local-aws.md)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, _sigterm)
    sys.path.insert(0, str(Path(args.repo) / "scripts"))
    os.environ["LOCAL_AWS_TIME_SCALE"] = str(SCALE)  # for the emulator modules ideal_refresh() imports
    for k in [k for k in os.environ if k.startswith("LOCAL_AWS_") and k != "LOCAL_AWS_TIME_SCALE"]:
        del os.environ[k]  # the emulator's constants at their defaults, as the servers run them
    out = Path(args.out) if args.out else Path(args.repo) / "docs" / "benchmarks" / "local-aws.md"

    import boto3
    import moto

    bench = Bench(args)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command,
        "commit": git_head(Path(args.repo)),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or "?",
        "python": f"Python {sys.version.split()[0]}",
        "moto": moto.__version__,
        "boto3": boto3.__version__,
        "load_start": loadavg(),
    }
    t0 = time.perf_counter()
    try:
        st = bench.startup(args.startup_runs)
        rf = bench.refresh(args.refresh_runs)
    finally:
        bench.cleanup()
    meta["load_end"] = loadavg()
    meta["duration"] = time.perf_counter() - t0
    text = report(meta, st, rf)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One case's world: a local AWS (time scale 0.01) in its own state dir under a temporary directory,
seeded, with the fault proxy in front, and the real bakeroll binary run against the proxy. Everything
it starts is stopped, and the directory removed, by `close` (also when the case fails).
Standard library only: the local AWS is started and read through scripts/harness (its state reader runs
in the local AWS's virtualenv).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

from fault_proxy.rules import parse_shorthand  # noqa: E402
from harness.local_aws import LocalAws, venv_python  # noqa: E402,F401 (venv_python: regions.py)

TIME_SCALE = 0.01
GROUP = "shop-web"
PIPELINE = "pipeline/local.toml"
PIPELINE_NAME = "local"  # the file's stem: what bakeroll tags as bakeroll:pipeline
# One HTTP attempt may take this long (BAKEROLL_HTTP_ATTEMPT_TIMEOUT); a "timeout" fault holds the
# answer past it. The SDK's own 30 s would make the timeout column take most of an hour.
ATTEMPT_TIMEOUT = 5.0


class Run:
    """A bakeroll process and where its outputs go."""

    def __init__(self, proc: subprocess.Popen, out: Path, err: Path, events: Path, started: float):
        self.proc, self.out, self.err, self.events, self.started = proc, out, err, events, started
        self.code: int | None = None
        self.seconds = 0.0

    def wait(self, timeout: float = 600) -> int:
        try:
            self.code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.code = self.proc.wait()
        self.seconds = time.monotonic() - self.started
        return self.code

    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def summary(self) -> dict:
        try:
            return json.loads(self.out.read_text())
        except (OSError, ValueError):
            return {}

    def event_list(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]
        except (OSError, ValueError):
            return []

    def state_line(self) -> str:
        for line in self.stderr().splitlines():
            if line.strip().startswith("State:"):
                return line.strip()[len("State:"):].strip()
        return ""

    def headline(self) -> str:
        for line in self.stderr().splitlines():
            if line.startswith("error: "):
                return line[len("error: "):]
        return ""


class World:
    def __init__(self, name: str, binary: Path, settings: dict[str, str] | None = None):
        self.name, self.binary = name, binary
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bakeroll-rel-{name}-"))
        self.aws = LocalAws(self.tmp / "aws", TIME_SCALE, settings)
        self.pipeline = PIPELINE
        self.proxy_dir = self.tmp / "proxy"
        self.endpoint = ""
        self.proxy_port = 0
        self.runs = 0

    # --- set-up and tear-down --------------------------------------------------------------------

    def up(self) -> "World":
        self.aws.up()
        self.seed = self.aws.seed()
        out = subprocess.run([str(SCRIPTS / "faultproxy"), "up", "--upstream", self.aws.endpoint, "--lifetime", "1800"],
                             env=self._proxy_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"faultproxy up failed: {out.stderr}")
        self.endpoint = out.stdout.strip().split("=", 1)[1]
        self.proxy_port = int(self.endpoint.rsplit(":", 1)[1])
        return self

    def close(self) -> None:
        subprocess.run([str(SCRIPTS / "faultproxy"), "down"], env=self._proxy_env(), capture_output=True)
        self.aws.down()
        if os.environ.get("RELIABILITY_KEEP"):  # for looking into one case: its logs, events and outputs
            print(f"reliability: kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _proxy_env(self) -> dict[str, str]:
        return dict(self.aws.env, FAULTPROXY_DIR=str(self.proxy_dir))

    def _env(self, direct: bool = False) -> dict[str, str]:
        """What bakeroll and the boto3 helpers run with: through the proxy unless `direct`."""
        env = dict(self.aws.env)
        if not direct:
            env["AWS_ENDPOINT_URL"] = self.endpoint
        return env

    # --- the fault proxy -------------------------------------------------------------------------

    def _control(self, name: str, body: bytes | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.proxy_port}/__faultproxy/{name}", data=body,
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def rules(self, specs: list[str]) -> None:
        """Replaces the proxy's rules (fresh counters) with these shorthand rules."""
        doc = {"rules": [parse_shorthand(s) for s in specs]}
        self._control("rules", json.dumps(doc).encode())

    def inflight(self) -> list[dict]:
        return self._control("inflight")

    def requests(self) -> list[dict]:
        path = self.proxy_dir / "requests.jsonl"
        entries = []
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return sorted((e for e in entries if "operation" in e), key=lambda e: e["seq"])

    def settle_proxy(self, timeout: float = 30) -> None:
        """Waits until no call is held in the proxy (a held request may still take effect)."""
        end = time.monotonic() + timeout
        while self.inflight() and time.monotonic() < end:
            time.sleep(0.1)

    # --- bakeroll --------------------------------------------------------------------------------

    def start(self, args: list[str]) -> Run:
        self.runs += 1
        n = self.runs
        out, err, events = (self.tmp / f"run{n}.{x}" for x in ("json", "err", "ndjson"))
        env = self._env()
        env["BAKEROLL_HTTP_ATTEMPT_TIMEOUT"] = str(ATTEMPT_TIMEOUT)
        cmd = [str(self.binary), "--pipeline", self.pipeline, "--no-progress", "--events", str(events), "--output", "json", *args]
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        return Run(proc, out, err, events, time.monotonic())

    def signal(self, run: Run, sig: int) -> float:
        run.proc.send_signal(sig)
        return time.time()

    def set_grace(self, seconds: int) -> None:
        """The group's HealthCheckGracePeriod (AWS seconds): how soon AWS replaces an unhealthy member."""
        code = ("import boto3,sys; boto3.client('autoscaling').update_auto_scaling_group("
                "AutoScalingGroupName=sys.argv[1], HealthCheckGracePeriod=int(sys.argv[2]))")
        out = subprocess.run([str(venv_python()), "-c", code, GROUP, str(seconds)], env=self._env(direct=True),
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"set grace failed: {out.stderr}")

    def observe(self) -> dict:
        """What the local AWS holds, read straight from it (never through the proxy)."""
        return self.aws.read_state(GROUP, PIPELINE_NAME)


def wait_until(what: str, predicate, timeout: float, interval: float = 0.02):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}

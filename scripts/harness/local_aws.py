"""One local AWS (`scripts/local-aws`) in a state dir of its own, for a test, a benchmark or a reliability
case: started at a time scale with optional server settings, its `export` lines read into an environment
that a client (boto3, the bakeroll binary) can be run with, stopped by `down` (or on leaving a `with`).

The environment a run gets is the caller's, scrubbed (`scrubbed_env`): nothing the person or the CI job
running the suite has set may change what bakeroll, the AWS SDKs or the server do. Standard library only
(boto3 is imported only by `client`).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
REPO = SCRIPTS.parent
LOCAL_AWS = SCRIPTS / "local-aws"


def scrubbed(name: str) -> bool:
    """Whether a variable of the caller's environment is kept from what runs against a local AWS: every
    AWS_* (credentials, profile, config files, retry settings: the local AWS's export lines set what a run
    needs), CI and CI_* / GITLAB_* (bakeroll reads the job's commit, id and URLs from them), BAKEROLL_*
    (settings of the binary; a test sets the ones it means), LOCAL_AWS_* but the shared virtualenv (server
    settings such as LOCAL_AWS_DENY) but the shared virtualenv and forkserver (both only make servers start
    faster), and RUST_LOG. tests/support/mod.rs `scrub` applies the same rule."""
    if name in ("LOCAL_AWS_VENV", "LOCAL_AWS_FORKSERVER"):
        return False
    return (name in ("CI", "RUST_LOG") or name.startswith(("AWS_", "CI_", "GITLAB_", "BAKEROLL_", "LOCAL_AWS_")))


def scrubbed_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without what `scrubbed` names."""
    return {k: v for k, v in (os.environ if base is None else base).items() if not scrubbed(k)}


def parse_exports(text: str) -> dict[str, str]:
    """The `export K=V` lines `scripts/local-aws up` prints, as a dict."""
    out = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            out[key] = value.strip("'\"")
    return out


def venv_python() -> Path:
    """The local AWS's virtualenv python (boto3, moto): where read_state.py and boto3 helpers run."""
    return Path(os.environ.get("LOCAL_AWS_VENV") or REPO / ".local-aws" / "venv") / "bin" / "python"


class LocalAws:
    """A local AWS in `state_dir` (created) at time scale `scale`, with server `settings` (LOCAL_AWS_DENY,
    LOCAL_AWS_LOG_REQUESTS, ...). `env` is what to run a client with once `up` returned: the scrubbed
    environment, the state dir and scale, and the server's endpoint and credentials (`aws_env`)."""

    def __init__(self, state_dir: Path, scale: float = 0.01, settings: dict[str, str] | None = None,
                 base_env: dict[str, str] | None = None):
        self.dir = Path(state_dir)
        self.scale = scale
        self.env = scrubbed_env(base_env)
        if "LOCAL_AWS_VENV" in os.environ:
            self.env.setdefault("LOCAL_AWS_VENV", os.environ["LOCAL_AWS_VENV"])
        self.env.update(LOCAL_AWS_DIR=str(self.dir), LOCAL_AWS_TIME_SCALE=f"{scale:g}", **(settings or {}))
        self.aws_env: dict[str, str] = {}
        self.endpoint = ""
        self.port = 0
        self.up_output: subprocess.CompletedProcess | None = None  # what `up` printed (its stderr times the start)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`scripts/local-aws ARGS` for this state dir (output captured as text)."""
        out = subprocess.run([str(LOCAL_AWS), *args], env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"scripts/local-aws {' '.join(args)} exited {out.returncode}: {out.stderr[-3000:]}")
        return out

    def up(self) -> "LocalAws":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.up_output = self.cli("up")
        self.aws_env = parse_exports(self.up_output.stdout)
        if "AWS_ENDPOINT_URL" not in self.aws_env:
            raise RuntimeError(f"scripts/local-aws up printed no endpoint ({self.dir})")
        self.env.update(self.aws_env)
        self.endpoint = self.aws_env["AWS_ENDPOINT_URL"]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        return self

    def down(self) -> None:
        self.cli("down", check=False)

    def __enter__(self) -> "LocalAws":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def seed(self, *args: str) -> dict:
        """`scripts/local-aws seed ARGS` (the demo stack, healthy when it returns); what it wrote to seed.json."""
        self.cli("seed", *args)
        return self.seed_json()

    def seed_json(self) -> dict:
        return json.loads((self.dir / "seed.json").read_text())

    def reset(self) -> None:
        """Clears every resource of the server (POST /moto-api/reset)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()

    def client(self, service: str, **kw):
        """A boto3 client of this server (needs boto3: the local AWS's virtualenv)."""
        import boto3

        e = self.aws_env
        return boto3.client(service, endpoint_url=e["AWS_ENDPOINT_URL"], region_name=e["AWS_REGION"],
                            aws_access_key_id=e["AWS_ACCESS_KEY_ID"], aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"], **kw)

    def read_state(self, group: str, pipeline: str | None = None) -> dict:
        """What the server holds for `group` (scripts/harness/read_state.py, run in the virtualenv)."""
        args = [str(venv_python()), str(Path(__file__).with_name("read_state.py")), group, *([pipeline] if pipeline else [])]
        out = subprocess.run(args, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"read_state.py failed: {out.stderr[-3000:]}")
        return json.loads(out.stdout)


def sweep(work: Path) -> None:
    """Stops every local AWS whose state dir lies under `work` and still runs, whoever started it (a
    benchmark's child, a test that was killed)."""
    for pid_file in Path(work).rglob("server.pid"):
        env = dict(os.environ, LOCAL_AWS_DIR=str(pid_file.parent))
        subprocess.run([str(LOCAL_AWS), "down"], env=env, capture_output=True)

"""Fixtures: a real local-aws server per test module, started and stopped through
`scripts/local-aws` (scripts/harness/local_aws.py) with a temporary LOCAL_AWS_DIR, and boto3 clients
pointed at it.

Tests reset the server's state (POST /moto-api/reset) instead of restarting it, except where they
need different server settings (their own `Server`). Modules run in parallel (pytest-xdist, one
module per worker at a time: `--dist loadfile`), each on its own server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pytest

SCRIPTS = Path(__file__).resolve().parents[2]
LOCAL_AWS = SCRIPTS / "local-aws"
sys.path.insert(0, str(SCRIPTS))

from emulator import seed as seed_module  # noqa: E402
from harness.local_aws import LocalAws  # noqa: E402


class Server(LocalAws):
    """One local-aws server in its own temporary state dir (removed by `down`), at time scale `scale`
    (default 0.005: one AWS second lasts 5 ms), with server settings as keyword arguments."""

    def __init__(self, scale: float = 0.005, **env: str):
        super().__init__(Path(tempfile.mkdtemp(prefix="local-aws-test-")), scale, settings=env)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = self.cli(*args, check=False)
        if check:
            out.check_returncode()
        return out

    def down(self) -> None:
        super().down()
        shutil.rmtree(self.dir, ignore_errors=True)  # tests leave nothing behind in TMPDIR

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def seed(self, *args: str) -> dict:
        """In this process (boto3 is loaded already), not through `scripts/local-aws seed`."""
        assert seed_module.main(list(args), self.endpoint, self.dir) == 0
        return json.loads((self.dir / "seed.json").read_text())

    def aws(self, seconds: float) -> float:
        """Real seconds that `seconds` AWS seconds last on this server."""
        return seconds * self.scale


@pytest.fixture(scope="module")
def server(request):
    # A module may set TIME_SCALE (default 0.005: one AWS second lasts 5 ms).
    srv = Server(scale=getattr(request.module, "TIME_SCALE", 0.005)).up()
    failed_before = request.session.testsfailed
    try:
        yield srv
    finally:
        if request.session.testsfailed > failed_before:
            keep_log(srv, request.module.__name__.rsplit(".", 1)[-1])
        srv.down()


def keep_log(srv: Server, name: str) -> None:
    """A test of the module failed: its server's log goes to $BAKEROLL_TEST_LOGS (scripts/test keeps that
    directory under target/test-logs/), or stays where it is, said on stderr, when that is not set."""
    log = srv.dir / "server.log"
    dest = os.environ.get("BAKEROLL_TEST_LOGS")
    if dest and log.exists():
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(log, Path(dest) / f"{name}-server.log")
    elif log.exists():
        kept = Path(tempfile.gettempdir()) / f"{name}-server.log"
        shutil.copy(log, kept)
        print(f"server log of {name} kept in {kept}", file=sys.stderr)


@pytest.fixture
def fresh(server):
    server.reset()
    return server


@pytest.fixture
def clients(fresh):
    return fresh.client("ec2"), fresh.client("autoscaling"), fresh.client("elbv2")


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.01, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` real s."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def refresh_status(asg, name: str = "shop-web") -> dict:
    return asg.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"][0]


def wait_refresh_done(asg, name: str = "shop-web", timeout: float = 60.0) -> dict:
    # Every 50 ms, not 10: a terminal status stays, so nothing is missed (it is seen at most 50 ms late,
    # which only lengthens what a test times), and these waits are the suite's longest: polled at 100 Hz
    # they cost more CPU, client and server, than the behaviour they wait for.
    terminal = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}
    return wait_for(lambda: (lambda r: r if r["Status"] in terminal else None)(refresh_status(asg, name)),
                    timeout=timeout, interval=0.05, what="refresh to finish")


def group(asg, name: str = "shop-web") -> dict:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def new_version(ec2, image_id: str, name: str = "shop-web", source: str = "1") -> str:
    v = ec2.create_launch_template_version(LaunchTemplateName=name, SourceVersion=source,
                                           LaunchTemplateData={"ImageId": image_id})
    return str(v["LaunchTemplateVersion"]["VersionNumber"])


def make_image(ec2, source_ami: str, name: str, unhealthy: bool = False) -> str:
    """An AMI registered from an instance of `source_ami`, optionally marked broken for health checks."""
    inst = ec2.run_instances(ImageId=source_ami, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    tags = [{"Key": "local-aws:health", "Value": "unhealthy"}] if unhealthy else []
    spec = [{"ResourceType": "image", "Tags": tags}] if tags else []
    image_id = ec2.create_image(InstanceId=inst["InstanceId"], Name=name, TagSpecifications=spec)["ImageId"]
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    return image_id

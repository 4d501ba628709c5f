"""The matrix's region cases: a release through the deploy role to two regions of a second account
(pipeline/local-regions.toml: baked in us-east-1 by 123456789012, copied to ap-southeast-1, shared with
222222222222 and deployed there, wave 1 us-east-1, wave 2 ap-southeast-1), with one fault each — a lost or
late CopyImage answer, SIGKILL while the copy is pending, the role refusing AssumeRole, the second region
without the group, SIGTERM during the second region's refresh — judged in both regions (verdict.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import verdict
from cases import SLOW_COPY_SECONDS, Scenario, fault_rules
from world import World, venv_python, wait_until

HERE = Path(__file__).resolve().parent
DEPLOY_ACCOUNT = "222222222222"
ROLE = f"arn:aws:iam::{DEPLOY_ACCOUNT}:role/bakeroll-deploy"
NORTH, SOUTH = "us-east-1", "ap-southeast-1"
REGIONS = [NORTH, SOUTH]
PIPELINE = "pipeline/local-regions.toml"
PIPELINE_NAME = "local-regions"
# Models of moto's whole state (GET /moto-api/data.json, every account and region) that a run which
# changes nothing must leave as they were. Left out: sts/iam (the sessions AssumeRole hands out, to
# bakeroll and to the reader), elbv2.FakeHealthStatus (built by every DescribeTargetHealth), and the
# default VPC, subnets, routes... moto creates the first time an account uses a region (a read does it).
WATCHED = {"autoscaling": None, "image_access": None,
           "ec2": {"Ami", "Instance", "Snapshot", "Volume", "LaunchTemplate", "LaunchTemplateVersion"},
           "elbv2": {"FakeTargetGroup", "FakeListener", "FakeLoadBalancer"}}


def op_of(entry: dict) -> str:
    return f"{entry.get('service')}:{entry.get('operation')}"


class RegionWorld(World):
    """A World with the deploy account's two regions (one when the scenario leaves the second out)."""

    def __init__(self, name: str, binary: Path, scenario: Scenario):
        settings = {"LOCAL_AWS_COPY_SECONDS": SLOW_COPY_SECONDS} if scenario.fault == "SIGKILL" else None
        super().__init__(name, binary, settings=settings)
        self.scenario = scenario
        self.pipeline = PIPELINE

    def up(self) -> "RegionWorld":
        super().up()
        self.seed = self.aws.seed("--account", DEPLOY_ACCOUNT)
        if self.scenario.south:
            self.seed = self.aws.seed("--account", DEPLOY_ACCOUNT, "--region", SOUTH)
        return self

    def base_amis(self) -> dict[str, str | None]:
        stacks = self.seed["stacks"]
        return {r: stacks.get(f"{DEPLOY_ACCOUNT}/{r}", {}).get("base_ami") for r in REGIONS}

    def helper(self, *args: str) -> str:
        cmd = [str(venv_python()), str(HERE / "regional_state.py"), str(self.aws.dir / "seed.json"), "shop-web",
               PIPELINE_NAME, *args]
        out = subprocess.run(cmd, env=self._env(direct=True), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"regional_state.py {' '.join(args)} failed: {out.stderr[-3000:]}")
        return out.stdout

    def observe(self) -> dict:
        return json.loads(self.helper("read", *REGIONS))

    def dump(self) -> dict:
        with urllib.request.urlopen(f"{self.aws.endpoint}/moto-api/data.json", timeout=30) as r:
            return json.loads(r.read())


def watched(dump: dict) -> dict:
    return {s: {m: v for m, v in models.items() if WATCHED[s] is None or m in WATCHED[s]}
            for s, models in dump.items() if s in WATCHED}


def run(w: RegionWorld, case, res) -> None:
    """Runs the scenario and fills `res` (a runner.Result)."""
    sc = w.scenario
    args = ["ship", "--commit", case.commit]
    before = None
    if sc.fault == "denied":
        w.helper("require-external-id")
    elif sc.fault == "fenced":
        w.helper("fence", NORTH)
    if sc.expected == "unchanged":
        # Read once first: moto builds an account's region (its catalogue images, default VPC) the first
        # time anything reads it, and the reader reads regions bakeroll may never touch.
        w.observe()
        before = watched(w.dump())
    if sc.fault in ("reset", "timeout"):
        case.rules = fault_rules(sc.fault, "ec2:CopyImage", [1])
        w.rules(case.rules)
    run1 = w.start(args)
    last = run1
    if sc.fault == "SIGKILL":
        wait_until("CopyImage to answer", lambda: any(op_of(e) == "ec2:CopyImage" and e.get("status") == 200
                                                       for e in w.requests()) or run1.proc.poll() is not None, 300)
        if run1.proc.poll() is None:
            w.signal(run1, signal.SIGKILL)
            run1.wait()
            copies = [i for i in w.observe()[SOUTH]["images"] if i["name"] == f"shop-{case.commit}"]
            res.delivered = (f"SIGKILL after CopyImage answered; then the copy {copies[0]['id']} was {copies[0]['state']}"
                             if copies else "no: no copy in ap-southeast-1 after the kill")
            if copies and copies[0]["state"] != "pending":
                res.delivered = "no: " + res.delivered
        else:
            res.delivered = "no: bakeroll exited before CopyImage answered"
    elif sc.fault == "SIGTERM":
        def south_refreshing():
            return any(e.get("event") == "progress" and e.get("scope", "").startswith(f"shop-web@{SOUTH}")
                       for e in run1.event_list())
        wait_until("ap-southeast-1's refresh", lambda: south_refreshing() or run1.proc.poll() is not None, 300)
        if run1.proc.poll() is None:
            w.signal(run1, signal.SIGTERM)
            res.delivered = "SIGTERM while ap-southeast-1's refresh (wave 2) was in progress"
        else:
            res.delivered = "no: bakeroll exited before ap-southeast-1's refresh"
    res.codes.append(run1.wait())
    after = watched(w.dump()) if before is not None else None
    if sc.fault == "SIGKILL":
        w.rules([])
        last = w.start(args)
        res.codes.append(last.wait())
    end = w.observe()
    w.settle_proxy()
    time.sleep(3)
    settled = w.observe()
    copy_calls = [e for e in w.requests() if op_of(e) == "ec2:CopyImage"]
    if sc.fault in ("reset", "timeout"):
        faulted = [e for e in copy_calls if e.get("fault")]
        res.delivered = (f"{len(faulted)} faulted CopyImage call(s) of {len(copy_calls)}, "
                         f"upstream statuses {[e.get('upstream_status') for e in copy_calls]}" if faulted
                         else "no: no CopyImage call was faulted")
    if sc.expected == "unchanged":
        refused = [e for e in w.requests() if e.get("status") not in (None, 200)]
        res.delivered = (f"{op_of(refused[0])} answered {refused[0]['status']}" if refused and sc.fault != "missing" else
                         "ap-southeast-1 has no shop-web" if sc.fault == "missing" else "no: no call was refused")
    res.headline, res.state_line = last.headline(), last.state_line()
    ami_name = f"shop-{case.commit}"
    if sc.expected == "unchanged":
        changed = verdict.changed(before, after)
        res.state = "unchanged" if not changed else "changed"
        res.detail = "nothing in either region" if not changed else "changed: " + ", ".join(changed[:6])
        # What the error must say: the refused role (in its causes); the region bakeroll looked in for the
        # missing group (headline); the fenced region (headline) and the role to fix (its Next line).
        musts = {"denied": [(last.stderr(), ROLE)], "missing": [(res.headline, f"shop-web not found in region {SOUTH}")],
                 "fenced": [(res.headline, f" in {SOUTH}"), (last.stderr(), f"for role {ROLE}")]}[sc.fault]
        res.leaks += [f"the error does not say {must!r}" for said, must in musts if must not in said]
    else:
        res.state, res.detail = verdict.regions_end_state(end, ami_name, w.base_amis())
    res.leaks += verdict.regions_leaks(settled, PIPELINE_NAME, case.commit)
    # The role is assumed once a run (src/aws/connector.rs), whatever the regions: counted on the wire.
    assumes = sum(op_of(e) == "sts:AssumeRole" for e in w.requests())
    if assumes > len(res.codes):
        res.leaks.append(f"{assumes} AssumeRole calls in {len(res.codes)} run(s): the role was assumed more than once a run")
    if sc.fault == "SIGKILL" and len(copy_calls) != 1:
        res.leaks.append(f"{len(copy_calls)} CopyImage calls: the re-run did not reuse the pending copy")
    res.matches = verdict.code_matches(res.state, res.codes[-1], sc.fault == "SIGTERM", refused=sc.code)
    res.ok = (res.state == sc.expected and res.matches and not res.leaks and not res.delivered.startswith("no"))

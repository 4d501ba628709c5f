"""The matrix's cases: each step of `ship` x each fault, the quick subset, the concurrency cases, and the
region cases (a release to two regions of a second account: regions.py runs them).
A step is hit through the call that carries it: a call number found in a reference run (the calls
before a bake step are always the same), or rules armed at run time once the step's trigger call has
gone through (the watch's polls, the verification after a rollback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from world import ATTEMPT_TIMEOUT

# How long a signal case holds the step's answer: the signal is sent while the call is held.
HOLD = 3.0
# The verification is repeated observations, each reading every target group's health: so that the
# verification's own reads are hit whenever it happens, every health read from the rollback on is faulted
# (the fault's calls, then one that succeeds, over and over).
DENSE_CALLS = 600
POLL_OPS = ["autoscaling:DescribeInstanceRefreshes", "autoscaling:DescribeAutoScalingGroups",
            "ec2:DescribeInstances", "elasticloadbalancing:DescribeTargetHealth"]


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    op: str | None = None  # the step's call (static steps)
    locate: tuple = ()  # ("first",) | ("last_before", ANCHOR) | ("first_after", ANCHOR): in the reference log
    broken: bool = False  # ship a release whose instances fail their health checks
    trigger: str | None = None  # run-time steps: arm the rules once this call has gone through
    ops: tuple = ()  # run-time steps: the calls faulted
    dense: bool = False  # run-time steps: fault every call of `ops` after arming (see DENSE_CALLS), not the 2nd
    held_op: str | None = None  # run-time steps: the call a signal case holds
    phase: str | None = None  # run-time signal cases: wait for this events phase (and detail word) first

    def how(self) -> str:
        if self.op:
            anchor = f" {self.locate[0].replace('_', ' ')} {self.locate[1]}" if len(self.locate) > 1 else ""
            return f"`{self.op}`, the first such call{anchor}" if self.locate[0] != "last_before" else \
                f"`{self.op}`, the last such call before `{self.locate[1]}`"
        ops = ", ".join(f"`{o.split(':')[1]}`" for o in self.ops)
        which = "every call (the fault's attempts, then one that succeeds, repeated)" if self.dense else "the 2nd call of each"
        return f"{ops}: {which} after `{self.trigger}` went through"


STEPS = [
    Step("resolve", "resolve base AMI", "ec2:DescribeImages", ("last_before", "ec2:RunInstances")),
    Step("launch", "launch build instance", "ec2:RunInstances", ("first",)),
    Step("ready", "wait ready", "ec2:DescribeInstances", ("first_after", "ec2:RunInstances")),
    Step("image", "create image", "ec2:CreateImage", ("first",)),
    Step("available", "wait available", "ec2:DescribeImages", ("first_after", "ec2:CreateImage")),
    Step("tag", "tag", "ec2:CreateTags", ("first_after", "ec2:CreateImage")),
    Step("version", "create LT version", "ec2:CreateLaunchTemplateVersion", ("first",)),
    Step("refresh", "start refresh", "autoscaling:StartInstanceRefresh", ("first",)),
    Step("poll", "each poll", trigger="autoscaling:StartInstanceRefresh", ops=tuple(POLL_OPS),
         held_op="autoscaling:DescribeInstanceRefreshes"),
    Step("rollback", "rollback call", "autoscaling:RollbackInstanceRefresh", ("first",), broken=True),
    Step("verify", "verify", broken=True, trigger="autoscaling:RollbackInstanceRefresh",
         ops=("elasticloadbalancing:DescribeTargetHealth",), dense=True,
         held_op="elasticloadbalancing:DescribeTargetHealth", phase="verify"),
]

FAULTS = ["throttle", "5xx", "reset", "timeout", "SIGTERM", "SIGKILL"]

FAULT_HOW = {
    "throttle": "the call and its next 2 attempts answer the service's throttling error (EC2 `RequestLimitExceeded` "
                "503, the others `Throttling` 400)",
    "5xx": "the call answers HTTP 500 (`InternalError`/`InternalFailure`), its retry HTTP 503 (`ServiceUnavailable`)",
    "reset": "the call is reset before it reaches AWS, its retry after AWS acted on it (the answer is lost)",
    "timeout": f"the call reaches AWS and its answer is held {ATTEMPT_TIMEOUT + 2:g} s, past the "
               f"{ATTEMPT_TIMEOUT:g} s attempt timeout (`BAKEROLL_HTTP_ATTEMPT_TIMEOUT`)",
    "SIGTERM": f"the call reaches AWS, its answer is held {HOLD:g} s, and bakeroll gets SIGTERM meanwhile",
    "SIGKILL": f"as SIGTERM, with SIGKILL; then the same command runs again (no fault)",
}


# Calls each fault takes from one request (the attempts it fails); a dense rule starts again after one more.
WIDTH = {"throttle": 3, "5xx": 2, "reset": 2, "timeout": 1}


def starts_for(step: Step, fault: str) -> list[int]:
    """Call numbers (after arming) where a run-time step's fault begins."""
    return list(range(1, DENSE_CALLS, WIDTH[fault] + 1)) if step.dense else [2]


def _calls(starts, width: int = 0) -> str:
    return ",".join(f"{s}-{s + width}" if width else str(s) for s in starts)


def fault_rules(fault: str, op: str, starts, seconds: float = HOLD) -> list[str]:
    """Fault-proxy shorthand rules putting `fault` on `op` at these call numbers (`seconds`: a signal
    case's hold)."""
    if fault == "throttle":
        return [f"{op}=throttle@{_calls(starts, 2)}"]
    if fault == "5xx":
        return [f"{op}=http500@{_calls(starts)}", f"{op}=http503@{_calls([s + 1 for s in starts])}"]
    if fault == "reset":
        return [f"{op}=reset-before@{_calls(starts)}", f"{op}=reset-after@{_calls([s + 1 for s in starts])}"]
    if fault == "timeout":
        return [f"{op}=delay:{ATTEMPT_TIMEOUT + 2:g}:response@{_calls(starts)}"]
    if fault in ("SIGTERM", "SIGKILL"):
        return [f"{op}=delay:{seconds:g}:response@{_calls(starts)}"]
    raise ValueError(fault)


@dataclass
class Case:
    step: Step | None
    fault: str
    commit: str
    concurrency: str | None = None  # "same" | "different": two ships of one environment at once
    rules: list[str] = field(default_factory=list)
    region: object | None = None  # a regions.Scenario: a release to two regions of a second account

    @property
    def id(self) -> str:
        if self.region:
            return self.region.key
        return f"concurrency-{self.concurrency}" if self.concurrency else f"{self.step.key}-{self.fault}"

    @property
    def expected(self) -> str:
        if self.region:
            return self.region.expected
        if self.concurrency:
            return "new"
        return "previous" if self.step.broken or self.fault == "SIGTERM" else "new"


# The kill case's copy stays pending 1 500 AWS s (15 s real at 0.01; the default 300 is 3 s, less than
# reading the state takes): long enough to see it pending after the kill and to re-run while it is.
SLOW_COPY_SECONDS = "1500"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    fault: str  # the matrix's fault kind (reset, timeout, SIGKILL, SIGTERM) or what refuses
    how: str  # for RELIABILITY.md: how the fault is made
    expected: str  # "new" | "previous" | "unchanged"
    code: int | None = None  # the exit code an "unchanged" case must end with
    south: bool = True  # seed the second region's stack


SCENARIOS = [
    Scenario("copy-reset", "CopyImage's answer lost", "reset",
             "`ec2:CopyImage` (to ap-southeast-1): the call is reset before it reaches AWS, its retry after AWS made "
             "the copy (the answer is lost)", "new"),
    Scenario("copy-timeout", "CopyImage's answer late", "timeout",
             "`ec2:CopyImage`: the call reaches AWS (the copy is made) and its answer is held past the attempt "
             "timeout", "new"),
    Scenario("copy-SIGKILL", "SIGKILL while the copy is pending", "SIGKILL",
             f"SIGKILL as soon as `ec2:CopyImage` has answered (the copy stays `pending` {SLOW_COPY_SECONDS} AWS s "
             "here, `LOCAL_AWS_COPY_SECONDS`); then the same command runs again (no fault)", "new"),
    Scenario("assume-denied", "AssumeRole refused", "denied",
             "the role's trust policy allows the bake account only with an `sts:ExternalId` the pipeline file does "
             "not give: `sts:AssumeRole` answers `AccessDenied`", "unchanged", code=5),
    Scenario("south-missing", "second region's group missing", "missing",
             "ap-southeast-1 of the deploy account has no `shop-web` (its stack is not seeded; us-east-1's is): "
             "preflight finds no group there", "unchanged", code=2, south=False),
    Scenario("south-denied", "second region's calls denied", "fenced",
             "the role's inline policy denies its sessions every action outside us-east-1 (the IAM User Guide's "
             "\"Denies access to AWS based on the requested Region\": `Deny`, `NotAction` `iam:*` `sts:*`, "
             "`StringNotEquals` `aws:RequestedRegion`): every call of the role in ap-southeast-1 answers "
             "`AccessDenied`", "unchanged", code=5),
    Scenario("wave2-SIGTERM", "SIGTERM during wave 2's refresh", "SIGTERM",
             "SIGTERM once the events show ap-southeast-1's refresh in progress (wave 2; us-east-1 is already on "
             "the new release)", "previous"),
]


# One case per fault kind, as tests/e2e_reliability.rs runs them under `cargo test`.
QUICK = [("refresh", "throttle"), ("image", "5xx"), ("launch", "reset"), ("version", "timeout"),
         ("launch", "SIGTERM"), ("rollback", "SIGKILL")]
# The region case of the quick subset (tests/e2e_reliability.rs runs its like).
QUICK_REGIONS = ["copy-reset"]


def all_cases(quick: bool) -> list[Case]:
    by_key = {s.key: s for s in STEPS}
    pairs = QUICK if quick else [(s.key, f) for s in STEPS for f in FAULTS]
    cases = [Case(by_key[k], f, commit=f"rel{n:03d}{k[:3]}") for n, (k, f) in enumerate(pairs)]
    cases += [Case(None, "two ships", commit="relsame", concurrency="same"),
              Case(None, "two ships", commit="reldiff", concurrency="different")]
    cases += [Case(None, sc.fault, commit=f"relreg{n}", region=sc) for n, sc in enumerate(SCENARIOS)
              if not quick or sc.key in QUICK_REGIONS]
    return cases

"""Runs one case in its own world: arms the fault, runs `bakeroll ship`, sends the signal at the step,
re-runs after SIGKILL, and judges the end state (verdict.py). Also the reference run that finds each
static step's call number, and the concurrency cases.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import regions
import verdict
from cases import HOLD, Case, fault_rules, starts_for
from world import PIPELINE_NAME, SIGNALS, World, wait_until

BROKEN_TAG = ["--tag", "local-aws:health=unhealthy"]
# For a broken release, the group's health check grace period (AWS s): the seed's 60 s (0.6 s real) lets
# AWS replace the failing instances, fail the refresh and roll it back itself before bakeroll's gate has
# seen two unhealthy polls, and the rollback call the step is about would never be made. 300 s is the
# console's default.
BROKEN_GRACE = 300


@dataclass
class Result:
    case: Case
    codes: list = field(default_factory=list)
    state: str = "error"
    detail: str = ""
    leaks: list = field(default_factory=list)
    delivered: str = ""
    matches: bool = False
    ok: bool = False
    seconds: float = 0.0
    headline: str = ""
    state_line: str = ""
    error: str = ""

    def codes_text(self) -> str:
        return " → ".join("killed" if c == -9 else str(c) for c in self.codes)


def op_of(entry: dict) -> str:
    return f"{entry.get('service')}:{entry.get('operation')}"


def locate(log: list[dict], op: str, how: tuple) -> int:
    """The call number (per operation, as the proxy counts) of the step's call in a reference log."""
    seq_of = lambda o: next(e["seq"] for e in log if op_of(e) == o)  # noqa: E731
    calls = [e for e in log if op_of(e) == op]
    if how[0] == "first":
        return calls[0]["n"]
    anchor = seq_of(how[1])
    if how[0] == "last_before":
        return [e for e in calls if e["seq"] < anchor][-1]["n"]
    return next(e for e in calls if e["seq"] > anchor)["n"]


def reference(binary: Path) -> tuple[dict, float]:
    """A clean ship through the proxy: the call number of each static step, and how long a ship takes."""
    from cases import STEPS
    w = World("reference", binary).up()
    try:
        run = w.start(["ship", "--commit", "relref1"])
        if run.wait() != 0:
            raise RuntimeError(f"the reference ship failed (exit {run.code}):\n{run.stderr()}")
        log = w.requests()
        return {s.key: locate(log, s.op, s.locate) for s in STEPS if s.op and not s.broken}, run.seconds
    finally:
        w.close()


def _arm_at_runtime(w: World, case: Case, run) -> None:
    """Waits for the trigger call to go through, then puts the fault on the step's calls."""
    step = case.step
    wait_until(f"{step.trigger} to go through", lambda: any(op_of(e) == step.trigger and e.get("status") is not None
                                                            for e in w.requests()) or run.proc.poll() is not None, 300)
    if case.fault in SIGNALS:
        # The watch: hold its 2nd refresh poll. The verification: hold every health read briefly, so one
        # is in flight whenever the verify phase has begun.
        case.rules = fault_rules(case.fault, step.held_op, ["1-"] if step.phase else [2], seconds=1.0 if step.phase else HOLD)
    else:
        case.rules = [r for op in step.ops for r in fault_rules(case.fault, op, starts_for(step, case.fault))]
    w.rules(case.rules)


def _phase_seen(run, phase: str) -> float | None:
    for e in run.event_list():
        if e.get("event") == "phase" and e.get("phase") == phase:
            return e["unix_ms"] / 1000
    return None


def _signal_at_step(w: World, case: Case, run, res: Result) -> float:
    """Sends the case's signal while the step's call is held in the proxy; returns when it was sent."""
    step = case.step
    op = step.op or step.held_op
    if step.phase:
        wait_until(f"the {step.phase} phase", lambda: _phase_seen(run, step.phase) or run.proc.poll() is not None, 300)
    held = lambda: next((e for e in w.inflight() if op_of(e) == op and e.get("fault") == "delay"), None)  # noqa: E731
    call = wait_until(f"{op} held in the proxy", lambda: held() or run.proc.poll() is not None, 300)
    if call is True or run.proc.poll() is not None:
        res.delivered = "no: bakeroll exited before the step's call was held"
        return 0.0
    time.sleep(0.3)  # the held request has reached the local AWS
    if not any(e["seq"] == call["seq"] for e in w.inflight()):
        res.delivered = "no: the held call ended before the signal"
        return 0.0
    sent = w.signal(run, SIGNALS[case.fault])
    res.delivered = f"{case.fault} while {op} #{call['n']} was in flight"
    if step.phase:
        res.delivered += f", in the {step.phase} phase"
    return sent


def _delivery_of_fault(w: World, case: Case, run, res: Result) -> None:
    faulted = [e for e in w.requests() if e.get("fault")]
    if case.step.phase:
        since = _phase_seen(run, case.step.phase)
        faulted = [e for e in faulted if since and _arrival(e) >= since]
    if faulted:
        first = faulted[0]
        res.delivered = f"{len(faulted)} faulted call(s), first {op_of(first)} #{first['n']} ({first['fault']})"
    else:
        res.delivered = "no: no call was faulted" + (f" in the {case.step.phase} phase" if case.step.phase else "")


def _arrival(entry: dict) -> float:
    from datetime import datetime
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def run_case(case: Case, binary: Path, steps_n: dict) -> Result:
    res = Result(case)
    started = time.monotonic()
    w = regions.RegionWorld(case.id, binary, case.region) if case.region else World(case.id, binary)
    try:
        w.up()
        if case.region:
            regions.run(w, case, res)
        elif case.concurrency:
            _concurrency(w, case, res)
        else:
            _fault_case(w, case, steps_n, res)
    except Exception as e:  # noqa: BLE001 - a broken case is reported, the matrix goes on
        res.error = f"{type(e).__name__}: {e}"
        res.detail = traceback.format_exc(limit=3)
    finally:
        w.close()
    res.seconds = time.monotonic() - started
    return res


def _fault_case(w: World, case: Case, steps_n: dict, res: Result) -> None:
    step = case.step
    args = ["ship", "--commit", case.commit] + (BROKEN_TAG if step.broken else [])
    if step.broken:
        w.set_grace(BROKEN_GRACE)
    if step.op:
        case.rules = fault_rules(case.fault, step.op, [steps_n.get(step.key, 1)])
        w.rules(case.rules)
    run = w.start(args)
    if step.trigger:
        _arm_at_runtime(w, case, run)
    if case.fault in SIGNALS:
        _signal_at_step(w, case, run, res)
    res.codes.append(run.wait())
    last = run
    if case.fault == "SIGKILL":
        w.rules([])
        last = w.start(args)
        res.codes.append(last.wait())
    end = w.observe()
    if case.fault not in SIGNALS:
        # A held answer is logged when the proxy lets it go, which may be after bakeroll gave up on it
        # (a timeout), retried and exited: wait for it before asking whether the fault was delivered.
        w.settle_proxy()
        _delivery_of_fault(w, case, run, res)
    _judge(w, case, res, end, last, sigterm=case.fault == "SIGTERM")


def _judge(w: World, case: Case, res: Result, end: dict, last, sigterm: bool, commit: str | None = None,
           code: int | None = None) -> None:
    w.settle_proxy()
    time.sleep(3)
    settled = w.observe()
    ami_name = f"shop-{commit or case.commit}"
    res.state, res.detail = verdict.end_state(end, ami_name, w.seed["base_ami"])
    res.leaks = verdict.leaks(settled, PIPELINE_NAME, commit or case.commit)
    res.matches = verdict.code_matches(res.state, res.codes[-1] if code is None else code, sigterm)
    res.headline, res.state_line = last.headline(), last.state_line()
    res.ok = res.state == case.expected and res.matches and not res.leaks and not res.delivered.startswith("no")


def _concurrency(w: World, case: Case, res: Result) -> None:
    """Two ships of one environment started together: one proceeds, the other exits 2 naming the holder."""
    commits = [case.commit, case.commit if case.concurrency == "same" else case.commit + "b"]
    runs = [w.start(["ship", "--commit", c]) for c in commits]
    res.codes = [r.wait() for r in runs]
    end = w.observe()
    winners = [i for i, c in enumerate(res.codes) if c == 0]
    losers = [i for i, c in enumerate(res.codes) if c == 2]
    notes = []
    if len(winners) != 1 or len(losers) != 1:
        notes.append(f"exits {res.codes}: not one 0 and one 2")
    winner = commits[winners[0]] if winners else case.commit
    if losers:
        head = runs[losers[0]].headline()
        if "another deploy of environment local holds group shop-web" not in head or "pid" not in head:
            notes.append(f"the loser's headline does not name the holder: {head!r}")
    settled_builds = len(end["build_instances"])
    if settled_builds != 1:
        notes.append(f"{settled_builds} build instances launched")
    marked = [v for v in end["lt_versions"] if v["description"].startswith(verdict.RELEASE_MARK)]
    if len(marked) != 1:
        notes.append(f"{len(marked)} launch-template versions created")
    if len(end["refreshes"]) != 1:
        notes.append(f"{len(end['refreshes'])} instance refreshes started")
    res.delivered = "both started within a few ms"
    _judge(w, case, res, end, runs[winners[0]] if winners else runs[0], sigterm=False, commit=winner,
           code=0 if winners else res.codes[0])
    if losers:
        res.headline, res.state_line = runs[losers[0]].headline(), runs[losers[0]].state_line()
    res.leaks += notes
    res.ok = res.ok and not notes

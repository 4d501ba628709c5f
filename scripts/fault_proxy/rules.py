"""The rules format (a JSON file, `--rule` flags, the control endpoint) and which call gets which fault.

A rules document is a list of rules or `{"seed": N, "rules": [...]}`. A rule:

    {"op": "autoscaling:StartInstanceRefresh", "fault": "throttle", "calls": [1, "3-4", "6-"]}
    {"op": "ec2:Describe*", "fault": "http503", "percent": 10, "seed": 7}
    {"op": "CreateTags", "fault": "delay", "seconds": 30, "hold": "response", "then": "drop"}

Each rule counts the requests it matches (an SDK retry is a request too), whatever the other rules
do; the first rule, in order, that selects the current request applies its fault. Shorthand for
flags: `OP=FAULT[:ARG...][@SELECT]`, e.g. `StartInstanceRefresh=throttle@1`, `*=http500@2-3,5`,
`DescribeInstances=reset-before@25%`, `CreateTags=delay:40:request:drop@1`.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .wire import Call, service_name

FAULTS = ("throttle", "http500", "http503", "reset-before", "reset-after", "delay")
KEYS = {"op", "fault", "calls", "percent", "seed", "seconds", "hold", "then"}


class RuleError(ValueError):
    pass


def _ranges(value) -> list[tuple[int, int | None]] | None:
    """`calls` as inclusive ranges (None: every call): 3, "2-4", "5-", [1, "3-4"], "1,3", "all"."""
    if value is None or value in ("all", "*"):
        return None
    items = value if isinstance(value, list) else [value]
    out: list[tuple[int, int | None]] = []
    for item in items:
        parts = [item] if isinstance(item, int) else [p.strip() for p in str(item).split(",")]
        for part in parts:
            try:
                if isinstance(part, int) or "-" not in part:
                    low, high = int(part), int(part)
                else:
                    a, b = part.split("-", 1)
                    low, high = int(a), (int(b) if b else None)
            except ValueError:
                raise RuleError(f"calls: {part!r} is not N, N-M or N- (1-based)") from None
            if low < 1 or (high is not None and high < low):
                raise RuleError(f"calls: {part!r} is not a 1-based call number or range")
            out.append((low, high))
    return out


@dataclass
class Rule:
    op: str
    fault: str
    calls: list[tuple[int, int | None]] | None
    percent: float | None
    seconds: float
    hold: str
    then: str
    source: dict
    rng: random.Random
    count: int = 0

    def matches(self, call: Call) -> bool:
        service, _, operation = self.op.rpartition(":")
        return (not service or service_name(service) == call.service) and fnmatchcase(call.operation, operation)

    def selects(self) -> bool:
        """Counts one more matching call and says whether this rule faults it."""
        self.count += 1
        if self.calls is not None and not any(lo <= self.count and (hi is None or self.count <= hi)
                                              for lo, hi in self.calls):
            return False
        # One draw per selected call, so a seed gives the same faults for the same call sequence.
        return self.percent is None or self.rng.random() * 100 < self.percent


def parse_rule(spec: dict, index: int, default_seed: int) -> Rule:
    if not isinstance(spec, dict):
        raise RuleError(f"rule {index + 1}: not an object: {spec!r}")
    unknown = set(spec) - KEYS
    if unknown:
        raise RuleError(f"rule {index + 1}: unknown keys {sorted(unknown)} (known: {sorted(KEYS)})")
    op, fault = spec.get("op"), spec.get("fault")
    if not isinstance(op, str) or not op:
        raise RuleError(f"rule {index + 1}: `op` must be an operation or a glob, optionally service:-qualified")
    if fault not in FAULTS:
        raise RuleError(f"rule {index + 1}: `fault` must be one of {', '.join(FAULTS)} (got {fault!r})")
    percent = spec.get("percent")
    if percent is not None and not (isinstance(percent, (int, float)) and 0 <= percent <= 100):
        raise RuleError(f"rule {index + 1}: `percent` must be a number from 0 to 100")
    seconds = spec.get("seconds", 0)
    if not isinstance(seconds, (int, float)) or seconds < 0 or (fault == "delay" and not seconds):
        raise RuleError(f"rule {index + 1}: `seconds` must be a positive number (delay needs it)")
    hold, then = spec.get("hold", "response"), spec.get("then", "forward")
    if hold not in ("request", "response") or then not in ("forward", "drop"):
        raise RuleError(f"rule {index + 1}: `hold` is request|response, `then` is forward|drop")
    try:
        calls = _ranges(spec.get("calls"))
    except RuleError as e:
        raise RuleError(f"rule {index + 1}: {e}") from None
    # A rule's own seed makes its draws independent of its place in the list.
    seed = spec.get("seed", f"{default_seed}/{index}")
    return Rule(op, fault, calls, percent, float(seconds), hold, then, spec, random.Random(str(seed)))


def parse_shorthand(text: str) -> dict:
    """`OP=FAULT[:ARG...][@SELECT]` -> a rule object (see the module doc)."""
    op, sep, rest = text.partition("=")
    if not sep or not op:
        raise RuleError(f"--rule {text!r}: expected OP=FAULT[:ARG...][@SELECT] or a JSON object")
    fault_part, _, select = rest.partition("@")
    fault, *args = fault_part.split(":")
    spec: dict = {"op": op, "fault": fault}
    for arg in args:
        if arg in ("request", "response"):
            spec["hold"] = arg
        elif arg in ("forward", "drop"):
            spec["then"] = arg
        else:
            try:
                spec["seconds"] = float(arg)
            except ValueError:
                raise RuleError(f"--rule {text!r}: {arg!r} is not seconds, request|response or forward|drop") \
                    from None
    if select.endswith("%"):
        try:
            spec["percent"] = float(select[:-1])
        except ValueError:
            raise RuleError(f"--rule {text!r}: {select!r} is not a percentage") from None
    elif select:
        spec["calls"] = select
    return spec


def document(texts: list[str], flags: list[str], seed: int | None) -> dict:
    """One rules document from JSON documents (files' contents, control bodies) and --rule flags."""
    rules: list = []
    doc_seed = None
    for text in texts:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise RuleError(f"rules are not JSON: {e}") from None
        if isinstance(doc, dict):
            unknown = set(doc) - {"seed", "rules"}
            if unknown:
                raise RuleError(f"rules document: unknown keys {sorted(unknown)} (known: seed, rules)")
            doc_seed = doc.get("seed", doc_seed)
            doc = doc.get("rules", [])
        if not isinstance(doc, list):
            raise RuleError("rules document: expected a list of rules or {\"seed\": N, \"rules\": [...]}")
        rules.extend(doc)
    for flag in flags:
        if not flag.lstrip().startswith("{"):
            rules.append(parse_shorthand(flag))
            continue
        try:
            rules.append(json.loads(flag))
        except ValueError as e:
            raise RuleError(f"--rule {flag!r}: not JSON: {e}") from None
    return {"seed": seed if seed is not None else (doc_seed or 0), "rules": rules}


@dataclass
class RuleSet:
    """The rules in force and the per-operation call counts, shared by every connection's thread."""

    seed: int = 0
    rules: list[Rule] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_document(cls, doc: dict) -> "RuleSet":
        seed = doc.get("seed", 0)
        if not isinstance(seed, int):
            raise RuleError("seed must be an integer")
        return cls(seed, [parse_rule(spec, i, seed) for i, spec in enumerate(doc.get("rules", []))])

    def replace(self, other: "RuleSet") -> None:
        """New rules (with fresh counters) at run time; the per-operation call numbers go on."""
        with self.lock:
            self.seed, self.rules = other.seed, other.rules

    def pick(self, call: Call) -> tuple[int, int | None, Rule | None]:
        """(how many-th call of this operation, rule index, rule) for one request."""
        with self.lock:
            self.calls[call.name] += 1
            chosen: tuple[int | None, Rule | None] = (None, None)
            for i, rule in enumerate(self.rules):
                if rule.matches(call) and rule.selects() and chosen[1] is None:
                    chosen = (i, rule)
            return self.calls[call.name], chosen[0], chosen[1]

    def spec(self) -> dict:
        with self.lock:
            return {"seed": self.seed, "rules": [r.source for r in self.rules]}

"""limit.py: section 4 of scripts/bench/run, distance from the limit: examples/limit.rs (a whole `ship` in
the fake cloud with realistic AWS timings, in virtual time, against the lower bound from the same timings;
its header says how the bound is computed), one process per case under measure.py for its peak RSS.

Cases: 3 instances at MinHealthy 100 / MaxHealthy 200 at every offset 0-9 s (where AWS's events fall
between bakeroll's polls: the phase effect), then 300 and 1 000 instances at offset 1 (events just after a
poll: close to the worst case), and the growth with fleet size at AWS's default Min 90 / Max 100.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import stack

REPO = stack.REPO
MEASURE = REPO / "scripts/bench/measure.py"


def cases(quick: bool) -> list[str]:
    if quick:
        return ["3@100-200+0", "3@100-200+1", "30@90-100+1"]
    return ([f"3@100-200+{o}" for o in range(10)] + ["300@100-200+1", "1000@100-200+1"]
            + [f"{n}@90-100+1" for n in (3, 30, 300, 1000)])


def run(bench, quick: bool) -> dict:
    stack.run(["cargo", "build", "-q", "--example", "limit"], check=True)
    exe = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug/examples/limit"
    rows = []
    for case in cases(quick):
        out = bench.work / f"limit-{case}.json"
        env = {k: v for k, v in os.environ.items() if k != "LOCAL_AWS_DIR"}  # no server: no calls to count
        p = stack.run([sys.executable, MEASURE, "--sample-interval", "0.2", "--child-stdout", out, "--", exe, case], env=env)
        m = json.loads(p.stdout)
        if m["exit_code"] != 0:
            rows.append({"case": case, "failed": f"exit {m['exit_code']}: {p.stderr[-800:]}"})
            bench.log(f"limit {case}: FAILED")
            continue
        row = json.loads(out.read_text())
        row.update(case=case, rss_kib=m["peak_rss_largest_process_kib"], cpu_s=m["cpu_s"])
        rows.append(row)
        bench.log(f"limit {case}: {row['total_s']:.0f} s vs bound {row['bound_total_s']} s "
                  f"({100 * row['over_bound']:+.2f} %), {row['real_s']:.1f} s real")
    return {"cases": rows, "example": "examples/limit.rs", "build": "debug (cargo build --example limit)"}

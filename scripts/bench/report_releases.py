"""report_releases.py: section 7 of BENCHMARKS.md, a release across many groups and regions
(scripts/bench/releases.py measures it), in the shape of report_sections.py's sections.
"""

from __future__ import annotations

from report_sections import num, skipped

GOALS = [
    "calls per poll ≤ 1 + G + T at G = 1, 3 and 10 groups in one wave",
    "a wave of 3 groups against the slowest of them alone: wall time ≤ 1.1×",
    "copies to 3 regions at once against one copy alone: wall time ≤ 1.1×",
]


def releases(r: dict) -> dict:
    if "releases" not in r:
        return skipped("7", "7. Many groups, many regions", GOALS)
    x = r["releases"]
    w, c = x["waves"], x["copies"]
    lines = ["## 7. Many groups, many regions", "",
             "`scripts/bench/releases.py` (its docstring has the method). **Waves**: `examples/waves.rs` in the fake cloud,",
             f"virtual time, every AWS call taking {w['latency_ms']} ms; the most calls any one poll made, by operation.", "",
             "| groups in the wave (G) | distinct target groups (T) | polls | groups / refreshes / target health in one poll (most) | total (bound 1 + G + T) |",
             "| ---: | ---: | ---: | --- | ---: |"]
    goals = []
    within = True
    for row in w["calls"]:
        m = row["most_per_poll"]
        lines.append(f"| {row['groups']} | {row['target_groups']} | {row['polls']} | {m.get('autoscaling:DescribeAutoScalingGroups', 0)} / "
                     f"{m.get('autoscaling:DescribeInstanceRefreshes', 0)} / {m.get('elasticloadbalancing:DescribeTargetHealth', 0)} | "
                     f"{row['most_total']} ({row['limit']}) |")
        within = within and row["most_total"] <= row["limit"]
    gs = ", ".join(str(row["groups"]) for row in w["calls"])
    goals.append({"section": "7", "goal": GOALS[0], "figure": f"within the bound at G = {gs}", "met": within})
    wall = w["wall"]
    lines += ["", "| deploy (virtual time) | seconds |", "| --- | ---: |",
              f"| web (6 instances) alone | {wall['alone_s']:.1f} |",
              f"| canary (1), worker (2) and web (6) in one wave | {wall['wave_s']:.1f} |",
              f"| ratio | {wall['ratio']:.3f}× |", ""]
    goals.append({"section": "7", "goal": GOALS[1], "figure": f"{wall['ratio']:.3f}×", "baseline": f"slowest alone {wall['alone_s']:.0f} s",
                  "met": wall["ratio"] <= 1.1})
    lines += [f"**Copies** on the local AWS at time scale {c['scale']} (a copy is pending {c['copy_aws_s']} AWS s): the copy phase of",
              "a real `bakeroll deploy`, from its events.", "",
              "| run | regions copied to | copy phase (s) | CopyImage calls | exit |", "| ---: | ---: | ---: | ---: | ---: |"]
    for i, run in enumerate(c["runs"], 1):
        lines.append(f"| {i} | {run['regions']} | {num(run['copy_s'])} | {run['copy_calls'] or ''} | {run['exit_code']} |")
    one, three = c.get("median_one_s"), c.get("median_three_s")
    ratio = three / one if one and three else None
    lines += ["", f"Median copy phase: {num(one)} s to one region, {num(three)} s to three"
              + (f" ({ratio:.2f}×)." if ratio else ".")]
    goals.append({"section": "7", "goal": GOALS[2], "figure": f"{ratio:.2f}×" if ratio else "–", "baseline": f"one copy {num(one)} s",
                  "met": None if ratio is None else ratio <= 1.1})
    lines += ["", f"{x['seconds']:.0f} s for the section."]
    return {"goals": goals, "lines": lines}

"""report_metrics.py: section 6 of BENCHMARKS.md, the metric gate (scripts/bench/metrics.py measures it), in
the shape of report_sections.py's sections: {"goals": [...], "lines": [...]}.
"""

from __future__ import annotations

from report_sections import num, skipped

GOALS = [
    "≥ 10 releases; every one with ≥ 3× the old error rate at ≥ 500 requests/minute rolled back",
    "no release within ±10 % of the old error rate rolled back (false convictions 0)",
    "publication of the minute that convicted → rollback ≤ one poll interval",
    "watch calls per poll ≤ 1 + G + T + 1",
]


def pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def metrics(r: dict) -> dict:
    if "metrics" not in r:
        return skipped("6", "6. The metric gate", GOALS)
    m = r["metrics"]
    rel = m["releases"]
    poll_ms = m["poll_s"] * 1000
    lines = ["## 6. The metric gate", "",
             "`scripts/bench/metrics.py` (its docstring has the method): releases that pass every health check, each",
             f"with a drawn old error rate (1-5 %), traffic (500-3 000 requests a minute per target group) and new rate",
             "(bad: 3-6× the old; good: within ±10 %), alternating, on pipeline/local.toml's stack (shop-web, 3 instances,",
             f"G = 1 group, T = 2 target groups) at time scale {m['scale']} (a metric minute is {60 * m['scale']:.1f} s real, the",
             f"poll {poll_ms:.0f} ms real = {m['poll_s'] / m['scale']:.0f} AWS s), bake_time {m['bake_time']} (AWS), every metric",
             "setting at its default. *Published → rollback*: from the moment the local AWS showed the minute whose verdict",
             "convicted (its documented delay) to the refresh's RollbackStartTime (or the start of the refresh back), in real",
             "ms, split into publication → the poll that convicted began (bakeroll's pace: a look is brought forward to when",
             "the next minute is due) and that poll → the rollback (the local AWS's answers to the poll's calls, then to",
             "RollbackInstanceRefresh); the first part is negative when that poll began just before the minute showed and its",
             "GetMetricData reached the local AWS just after (it answers one call at a time). *First piece → rollback*: from",
             "the publication of the first minute held against the release (AWS s).", "",
             "| # | old → new 5XX rate | × | requests/min | outcome | evidence | published → rollback (→ poll + poll → rollback) | first piece → rollback | polls | watch calls per poll | GetMetricData |",
             "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in rel:
        outcome = "rolled back" if x["rolled_back"] else (x["outcome"] or f"exit {x['exit_code']}")
        pub = x.get("publication_to_rollback_ms")
        split = f" ({x['publication_to_poll_ms']:.0f} + {x['poll_to_rollback_ms']:.0f})" if x.get("poll_to_rollback_ms") is not None else ""
        first = x.get("first_piece_to_rollback_aws_s")
        lines.append(f"| {x['n']} | {pct(x['old_rate'])} → {pct(x['new_rate'])} ({'bad' if x['bad'] else 'good'}) | {x['factor']:.2f} | "
                     f"{x['rpm']} | {outcome} | {x['pieces'] or ''} {', '.join(x['kinds'])} | "
                     f"{'' if pub is None else f'{pub:.0f} ms{split}'} | {'' if first is None else f'{first:.0f} AWS s'} | {x['polls']} | "
                     f"{x['calls_per_poll']:.2f} ({x['limit']}) | {x['metric_calls']} |")
    convicting = next((x["reason"] for x in rel if x.get("reason")), None)
    if convicting:
        lines += ["", f"What a rollback says (release {next(x['n'] for x in rel if x.get('reason'))}): \"{convicting}\""]
    lines += ["", f"{m['seconds']:.0f} s for the section. The watch's calls are the deploy's reads less preflight's and the lock's",
              "(as in section 2) plus every GetMetricData; GetMetricData is at most one a poll by construction (one call for",
              "every target group in flight), and the table's count never exceeds the polls."]

    bad = [x for x in rel if x["bad"] and x["rpm"] >= 500 and x["factor"] >= 3]
    good = [x for x in rel if not x["bad"]]
    caught = sum(x["rolled_back"] for x in bad)
    g1 = {"section": "6", "goal": GOALS[0], "figure": f"{caught} of {len(bad)} bad releases rolled back ({len(rel)} releases)",
          "met": caught == len(bad) and len(rel) >= 10,
          "why": None if caught == len(bad) and len(rel) >= 10 else (f"only {len(rel)} releases in this run" if len(rel) < 10
                                                                      else f"{len(bad) - caught} bad releases deployed")}
    wrong = sum(x["rolled_back"] for x in good)
    g2 = {"section": "6", "goal": GOALS[1], "figure": f"{wrong} of {len(good)} good releases rolled back", "met": wrong == 0 and bool(good),
          "why": None if wrong == 0 else f"{wrong} false convictions"}
    pubs = [x["publication_to_rollback_ms"] for x in bad if x.get("publication_to_rollback_ms") is not None]
    over = [p for p in pubs if p > poll_ms]
    g3 = {"section": "6", "goal": GOALS[2], "figure": f"max {num(max(pubs, default=None), 0)} ms over {len(pubs)} rollbacks (poll {poll_ms:.0f} ms)",
          "met": bool(pubs) and not over and len(pubs) == len(bad), "why": None if not over else f"{len(over)} over the poll interval"}
    worst = max((x["calls_per_poll"] - x["limit"] for x in rel), default=None)
    metric_over = [x for x in rel if x["metric_calls"] > x["polls"]]
    g4 = {"section": "6", "goal": GOALS[3], "figure": f"max {num(max((x['calls_per_poll'] for x in rel), default=None), 2)} (limit {rel[0]['limit'] if rel else 5})",
          "met": worst is not None and worst <= 0 and not metric_over,
          "why": None if worst is not None and worst <= 0 and not metric_over else "over the limit"}
    return {"lines": lines, "goals": [g1, g2, g3, g4]}

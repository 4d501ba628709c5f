"""report_sections.py: the five sections of BENCHMARKS.md (report.py puts them together). Each function takes
the run's results and returns {"goals": [...], "lines": [...]}: the goals with their verdict and the reason
for a miss, and the section's Markdown. A section that did not run says so and measures no goal.
"""

from __future__ import annotations

import statistics

MB = 1e6  # the goals are in MB


def ms(s: float | None) -> str:
    return "–" if s is None else f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def mb(kib) -> str:
    return "–" if kib is None else f"{kib * 1024 / MB:.1f} MB"


def ratio(a, b) -> str:
    return "–" if not a or not b else f"{a / b:.1f}×"


def skipped(section: str, title: str, goals: list[str]) -> dict:
    return {"goals": [{"section": section, "goal": g, "figure": "–", "met": None} for g in goals],
            "lines": [f"## {title}", "", "Not run this time (`--only`)."]}


# --- 1 -------------------------------------------------------------------------------------------------
OVERHEAD_SIDES = """\
Both sides deploy the same release the same way, from the same already provisioned build instance, on a
local AWS that was `reset` and `seed`ed before each run (3 instances in 2 target groups, the seeded
storefront); a fresh build instance is launched and provisioned for each run by
`scripts/baseline/prepare-build-instance.sh` (not measured). Both poll every 20 AWS seconds. The refresh
preferences are the script's on both sides: MinHealthy 100, MaxHealthy 200, InstanceWarmup 60,
SkipMatching (checkpoints and bake time left out, as the script leaves them out).

* **script** — `scripts/baseline/aws-cli-deploy.sh shop-web BUILD AMI_NAME POLL`, AWS CLI v1 1.46.3, one
  `aws` process per call: create-image, poll describe-images until available,
  describe-auto-scaling-groups, create-launch-template-version (SourceVersion, only ImageId), start-instance-refresh
  with it as DesiredConfiguration, poll describe-instance-refreshes until it ends. No health gate, no
  rollback, no verification, no cleanup, no lock (its header lists what it lacks).
* **bakeroll** — `bakeroll --output json --events FILE ship` of pipeline/local.toml's environment with
  `bake.build_instance = BUILD` and the same preferences: takes the deploy lock (written, read back after
  2 s, released at the end), preflight (group, refreshes, instances, target health, alarms), CreateImage +
  tags on image and snapshots, waits for it, a new launch-template version read back, the refresh with
  AutoRollback, the health gate's polls (refresh, group, each target group), the verified fleet (one
  DescribeInstances), the new version made the default.

Each run is one `scripts/bench/measure.py` measurement of the whole process tree (its docstring defines
every figure); the runs alternate which tool goes first. **Wall time not spent waiting on AWS** is, as
measure.py defines it, the wall time at time scale 0.0001, where every AWS duration vanishes (image
creation 12 ms, the whole refresh about 40 ms) and both tools' poll intervals are scaled with it (2 ms).
What remains is each tool's own critical path, plus any wait on its own clock that no setting scales:
for bakeroll the deploy lock's 2 s read-back pause (`src/engine/lock.rs`, `SETTLE`) and its image wait's
100 ms poll floor (`src/engine/bake.rs`), reported apart below.
"""


def overhead(r: dict) -> dict:
    goals = ["≥ 50× less CPU than the script for the same deploy"]
    if "overhead" not in r:
        return skipped("1", "1. Overhead against the script it replaces", goals)
    o = r["overhead"]
    scales = o["scales"]
    lines = ["## 1. Overhead against the script it replaces", "", OVERHEAD_SIDES]
    for scale, sides in scales.items():
        s, b = sides["script"], sides["bakeroll"]
        real = float(scale) >= 0.001
        lines += [f"### Time scale {scale} ({'AWS durations × ' + scale + ': the deploy as it runs, polls included' if real else 'AWS durations vanish: wall time not spent waiting on AWS'})",
                  "", f"{o['pairs']} pairs; medians of the runs that succeeded (script {s['ok']}/{s['runs']}, bakeroll {b['ok']}/{b['runs']}).", "",
                  "| figure | script | bakeroll | script ÷ bakeroll |", "| --- | ---: | ---: | ---: |"]
        cpu_call = lambda x: x["cpu_s"] / x["calls"] if x["cpu_s"] and x["calls"] else None  # noqa: E731
        rows = [("CPU of the whole process tree", ms(s["cpu_s"]), ms(b["cpu_s"]), ratio(s["cpu_s"], b["cpu_s"])),
                ("wall time" + ("" if real else " (= not spent waiting on AWS)"), ms(s["wall_s"]), ms(b["wall_s"]), ratio(s["wall_s"], b["wall_s"]))]
        if not real and b["wall_s"]:
            own = b["wall_s"] - o["lock_settle_s"]
            rows.append((f"wall time less bakeroll's unscaled lock pause ({o['lock_settle_s']:.0f} s)", ms(s["wall_s"]), ms(own), ratio(s["wall_s"], own)))
        rows += [("AWS calls", num(s["calls"], 0), num(b["calls"], 0), ratio(s["calls"], b["calls"])),
                 ("of them polls of the refresh (script: describe-instance-refreshes; bakeroll: watch rounds of 2 + target groups calls)",
                  num(s["polls"], 0), num(b["polls"], 0), ""),
                 ("CPU per AWS call", ms(cpu_call(s)), ms(cpu_call(b)), ratio(cpu_call(s), cpu_call(b))),
                 ("peak RSS of the largest process", mb(s["rss_largest_kib"]), mb(b["rss_largest_kib"]), ratio(s["rss_largest_kib"], b["rss_largest_kib"])),
                 ("peak RSS of the whole tree at once (sampled every 50 ms)", mb(s["rss_tree_kib"]), mb(b["rss_tree_kib"]), ratio(s["rss_tree_kib"], b["rss_tree_kib"])),
                 ("processes started (seen by the sampler)", num(s["processes"], 0), num(b["processes"], 0), ""),
                 ("the local AWS's own CPU meanwhile (not in the tree)", ms(s["server_cpu_s"]), ms(b["server_cpu_s"]), "")]
        lines += [f"| {a} | {x} | {y} | {z} |" for a, x, y, z in rows]
        lines += ["", f"CPU of each run: script {', '.join(f'{x:.2f}' for x in s['cpu_s_all'])} s; "
                      f"bakeroll {', '.join(f'{x:.3f}' for x in b['cpu_s_all'])} s. "
                      f"Wall: script {', '.join(f'{x:.2f}' for x in s['wall_s_all'])} s; bakeroll {', '.join(f'{x:.2f}' for x in b['wall_s_all'])} s."]
        for side, x in (("script", s), ("bakeroll", b)):
            if x["failures"]:
                lines.append(f"Failed {side} runs (left out of the medians): " + "; ".join(x["failures"]))
        actions = sorted(set(s["by_action"]) | set(b["by_action"]))
        lines += ["", "Calls by action (medians, from the local AWS's request log):", "",
                  "| action | script | bakeroll |", "| --- | ---: | ---: |"]
        lines += [f"| {a} | {num(s['by_action'].get(a, 0), 0)} | {num(b['by_action'].get(a, 0), 0)} |" for a in actions]
        lines.append("")
    judged = "0.01" if "0.01" in scales else next(iter(scales))
    s, b = scales[judged]["script"], scales[judged]["bakeroll"]
    factor = s["cpu_s"] / b["cpu_s"] if s["cpu_s"] and b["cpu_s"] else None
    why = None
    if factor is None:
        why = "a side had no successful run"
    elif factor < 50:
        sys_share = f", {100 * b['cpu_sys_s'] / b['cpu_s']:.0f} % of it system time" if b.get("cpu_sys_s") is not None else ""
        why = (f"{factor:.0f}×: per call bakeroll costs {ratio(cpu_call(s), cpu_call(b))} less ({ms(cpu_call(b))} a call{sys_share}), "
               f"but it makes {ratio(b['calls'], s['calls'])} as many: its health gate reads the refresh, the group and each target "
               f"group at every poll ({b['polls']} polls against the script's {s['polls']} describe-instance-refreshes), then verifies")
    return {"lines": lines, "goals": [{
        "section": "1", "goal": goals[0], "figure": f"bakeroll {ms(b['cpu_s'])} at time scale {judged} ({factor:.0f}× less)" if factor else "–",
        "baseline": f"script {ms(s['cpu_s'])}", "met": bool(factor and factor >= 50), "why": why}]}


# --- 2 -------------------------------------------------------------------------------------------------
OPS = [("autoscaling:DescribeInstanceRefreshes", "DIR"), ("autoscaling:DescribeAutoScalingGroups", "DASG"),
       ("elasticloadbalancing:DescribeTargetHealth", "DTH"), ("ec2:DescribeInstances", "DI")]


def economy(r: dict) -> dict:
    goals = ["≤ 2 + target groups calls per poll, flat in fleet size", "calls per deploy linear only in its duration",
             "CPU per poll that does not grow with the fleet (§1's goal)"]
    if "economy" not in r:
        return skipped("2", "2. API economy", goals)
    e = r["economy"]
    rows = [dict(x, where="local AWS") for x in e["local"]] + [dict(x, where="fake cloud") for x in e["fake"]]
    for x in rows:
        x.setdefault("calls_per_poll", x.get("calls_per_poll_mean"))
    lines = ["## 2. API economy", "",
             "A healthy deploy per fleet size and target-group count. **Local AWS** (time scale 0.01, this binary,",
             "`bakeroll deploy --ami` of pipeline/local.toml, poll 20 AWS s, checkpoints 50/100, bake time 60 s): calls",
             "counted from the local AWS's request log (every call that reached it), polls from `--events` (one `fleet`",
             "event each); target groups: 1 = shop-web-admin detached from the group, 3 = a third behind a listener on",
             "port 81 attached. **Fake cloud** (`examples/gate_calls.rs`, virtual time, poll 5 s, Min 100 / Max 200):",
             "the fake's call ledger. The watch's calls are the deploy's DescribeInstanceRefreshes (DIR),",
             "DescribeAutoScalingGroups (DASG), DescribeTargetHealth (DTH) and DescribeInstances (DI) less those made",
             "outside it (the lock reads the group three times, preflight each once, a verified release the group once more",
             "to protect what it runs: `watch_elsewhere` in",
             "scripts/bench/gate.py); every other call is the deploy's fixed part.", "",
             "| where | instances | target groups | polls | watch calls per poll (limit) | most in one poll | DIR / DASG / DTH / DI in the watch | fixed calls | calls per deploy | CPU per poll |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for x in rows:
        w = x["watch_calls"]
        cpu = ms(x["cpu_ms_per_poll"] / 1000) + " (whole process ÷ polls)" if "cpu_ms_per_poll" in x else \
            f"{x['engine_ms_per_poll']:.2f} ms (bakeroll's own work, debug build)"
        lines.append(f"| {x['where']} | {x['instances']} | {x['target_groups']} | {x['polls']} | {x['calls_per_poll']:.2f} ({x['limit']}) | "
                     f"{x.get('calls_per_poll_max', '–')} | {' / '.join(str(w.get(op, 0)) for op, _ in OPS)} | "
                     f"{sum(x['fixed_calls'].values())} | {sum(x['deploy_calls'].values())} | {cpu} |")
    lines += ["", "Calls per deploy by operation:", "",
              "| action | " + " | ".join(f"{x['where'].split()[0]} {x['instances']}×{x['target_groups']}" for x in rows) + " |",
              "| --- |" + " ---: |" * len(rows)]
    for a in sorted({a for x in rows for a in x["deploy_calls"]}):
        lines.append(f"| {a} | " + " | ".join(str(x["deploy_calls"].get(a, 0)) for x in rows) + " |")
    disagree = [x for x in e["local"] if not x["summary_agrees"]]
    lines += ["", "bakeroll's own count (the JSON summary's `api_calls`) " +
              ("equals the request log's in every local run." if not disagree else
               f"differs from the request log's in {len(disagree)} run(s): " +
               "; ".join(str({a: (x['deploy_calls'].get(a), x['summary_api_calls'].get(a)) for a in set(x['deploy_calls']) | set(x['summary_api_calls'] or {})
                             if x['deploy_calls'].get(a) != (x['summary_api_calls'] or {}).get(a)}) for x in disagree) +
               " (log, summary)")]

    over = [x for x in rows if x["calls_per_poll"] > x["limit"] + 1e-9 or x.get("calls_per_poll_max", 0) > x["limit"]]
    by_tg: dict = {}
    for x in rows:
        by_tg.setdefault((x["where"], x["target_groups"]), []).append(x)
    spread = max((max(v["calls_per_poll"] for v in xs) - min(v["calls_per_poll"] for v in xs) for xs in by_tg.values()), default=0)
    fixed_differ = [k for k, xs in by_tg.items() if len({tuple(sorted(v["fixed_calls"].items())) for v in xs}) > 1]
    g1 = {"section": "2", "goal": goals[0], "met": not over and spread <= 0.1,
          "figure": f"{min(x['calls_per_poll'] for x in rows):.2f}-{max(x['calls_per_poll'] for x in rows):.2f} per poll at "
                    f"{', '.join(sorted({str(x['instances']) for x in rows}, key=int))} instances; spread at one target-group count {spread:.2f}",
          "baseline": "limit 3 (1 target group), 5 (3)",
          "why": "; ".join([f"{x['where']} {x['instances']}×{x['target_groups']}: {x['calls_per_poll']:.2f} > {x['limit']}" for x in over]
                           + ([f"per-poll figures differ by {spread:.2f} between fleet sizes"] if spread > 0.1 else [])) or None}
    g2 = {"section": "2", "goal": goals[1], "met": not fixed_differ,
          "figure": "fixed calls per deploy " + ", ".join(f"{k[0]} {k[1]} TG: {sorted({sum(v['fixed_calls'].values()) for v in xs})}" for k, xs in by_tg.items()),
          "baseline": "the rest is polls × calls per poll",
          "why": f"the fixed calls change with the fleet size at {fixed_differ}" if fixed_differ else None}
    g3 = cpu_per_poll_goal(e, goals[2])
    return {"lines": lines, "goals": [g1, g2, g3]}


def cpu_per_poll_goal(e: dict, goal: str) -> dict:
    """Local AWS: whole-process CPU per poll at 3 vs 30 instances; fake: bakeroll's own work per poll."""
    local = {(x["instances"], x["target_groups"]): x["cpu_ms_per_poll"] for x in e["local"]}
    fake = {(x["instances"], x["target_groups"]): x["engine_ms_per_poll"] for x in e["fake"]}
    parts, growth = [], []
    for where, d in (("local AWS", local), ("fake cloud, engine only", fake)):
        for tg in sorted({k[1] for k in d}):
            sizes = sorted(k[0] for k in d if k[1] == tg)
            if len(sizes) > 1:
                lo, hi = d[(sizes[0], tg)], d[(sizes[-1], tg)]
                growth.append((where, tg, sizes[0], sizes[-1], hi / lo))
                parts.append(f"{where} {tg} TG: {lo:.1f} ms at {sizes[0]} → {hi:.1f} ms at {sizes[-1]} ({hi / lo:.2f}×)")
    grew = [g for g in growth if g[4] > 1.25]
    return {"section": "1/2", "goal": goal, "figure": "; ".join(parts) or "one fleet size only", "met": (not grew) if growth else None,
            "baseline": "flat = under 1.25× from the smallest to the largest fleet",
            "why": ("grows with the fleet: each poll parses and judges every instance and target (the DescribeAutoScalingGroups "
                    "and DescribeTargetHealth answers grow with it); linear in this checkout's engine, whose per-instance lookups "
                    "are an index (core::health::by_instance; instances × targets before commit 0eb80cb)") if grew else None}


# --- 3 -------------------------------------------------------------------------------------------------
POLL_AWS_S = {"bakeroll-20s": 20, "bakeroll-5s": 5}


def gate(r: dict) -> dict:
    goals = ["bakeroll's own rollback first in 100 % of ≥ 10 broken ships", "median ≤ poll_interval + 2 AWS s from the first unhealthy sight to the rollback, per poll interval"]
    if "gate" not in r:
        return skipped("3", "3. Detect-to-rollback", goals)
    d = r["gate"]["detect"]
    lines = ["## 3. Detect-to-rollback", "",
             f"`scripts/bench/gate.py --runs {r['gate']['runs']}` (its docstring has the method): broken ships of pipeline/local.toml's",
             f"stack at time scale {r['gate'].get('scale', 0.01)} (the release's instances fail their health checks; each run draws its target "
             "groups' health-check interval from 6-30 s, so a poll's phase against the first failure varies as on real fleets; "
             "gate.py's SCALE and INTERVALS say why), bakeroll at the demo's",
             "20 s poll and at the real default 5 s (both scaled), interleaved with the baseline: the same refresh",
             "(AutoRollback on) started with boto3 and nobody watching. First unhealthy = an independent observer's",
             "first sight of a new target `unhealthy` (every ~1 AWS s); rollback = the refresh's RollbackStartTime.",
             "", "| mode | runs | rolled back by bakeroll | by AWS's AutoRollback | median AWS s | min | max | within poll + 2 s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = [x["detect_to_rollback_aws_s"] for x in d if x["mode"] == "autorollback" and x["detect_to_rollback_aws_s"] is not None]
    base_med = statistics.median(base) if base else None
    within_all, ours = [], []
    for mode in ("bakeroll-20s", "bakeroll-5s", "autorollback"):
        runs = [x for x in d if x["mode"] == mode]
        xs = [x["detect_to_rollback_aws_s"] for x in runs if x["detect_to_rollback_aws_s"] is not None]
        med = statistics.median(xs) if xs else None
        limit = POLL_AWS_S.get(mode)
        within = f"{sum(x <= limit + 2 for x in xs)} of {len(runs)} (≤ {limit + 2})" if limit else "baseline"
        if limit:
            within_all.append((mode, sum(x <= limit + 2 for x in xs), len(runs), limit + 2, med, max(xs, default=None)))
            ours += runs
        faster = f" ({base_med / med:.0f}× sooner than the baseline)" if limit and med and base_med else ""
        lines.append(f"| {mode} | {len(runs)} | {sum(x['rolled_back_by'] == 'bakeroll' for x in runs)} | "
                     f"{sum(x['rolled_back_by'] == 'AutoRollback' for x in runs)} | {num(med, 1)}{faster} | "
                     f"{num(min(xs, default=None), 1)} | {num(max(xs, default=None), 1)} | {within} |")
    first = sum(x["rolled_back_by"] == "bakeroll" for x in ours)
    g1 = {"section": "3", "goal": goals[0], "figure": f"{first} of {len(ours)}", "baseline": f"AutoRollback alone: median {num(base_med, 1)} AWS s",
          "met": first == len(ours) and len(ours) >= 10,
          "why": None if first == len(ours) and len(ours) >= 10 else
          (f"only {len(ours)} broken ships in this run" if len(ours) < 10 else f"AWS's AutoRollback came first in {len(ours) - first}")}
    # The goal is on the median (the gate issue's wording); runs later than poll + 2 are still counted and
    # explained, since each is a release that served errors a little longer.
    slow = [w for w in within_all if w[4] is None or w[4] > w[3]]
    late = [w for w in within_all if w[1] < w[2]]
    figure = "; ".join(f"{m}: median {num(med, 1)} (goal ≤ {lim}), {k} of {n} runs within, max {num(mx, 1)}" for m, k, n, lim, med, mx in within_all)
    if late:
        figure += " — late runs: " + ", ".join(f"{n - k} {m}" for m, k, n, _, _, _ in late) + f" ({late_why(d)})"
    g2 = {"section": "3", "goal": goals[1], "baseline": "", "met": not slow and bool(within_all), "figure": figure,
          "why": ("median over the goal in " + ", ".join(m for m, *_ in slow)) if slow else None}
    return {"lines": lines, "goals": [g1, g2]}


def late_why(d: list[dict]) -> str:
    """What the late runs' own figures say: whether conviction waited for a later poll (a second piece of
    evidence), or the time went between polls and calls."""
    late = [x for x in d if x["mode"] in POLL_AWS_S and (x["detect_to_rollback_aws_s"] or 0) > POLL_AWS_S[x["mode"]] + 2]
    waited = [x for x in late if (x.get("evidence_to_conviction_aws_s") or 0) > 0]
    parts = []
    if waited:
        parts.append(f"in {len(waited)} of them conviction came a poll after the first evidence (unhealthy_threshold 2: "
                     f"the second piece of evidence was seen " + ", ".join(f"{x['evidence_to_conviction_aws_s']:.0f}" for x in waited)
                     + " AWS s later)")
    if len(waited) < len(late):
        parts.append(f"{len(late) - len(waited)} convicted on the first poll that saw the evidence, so the time went between the "
                     "observer's sight and that poll's answers plus the RollbackInstanceRefresh (at the local AWS's time scale every "
                     "real millisecond of those round trips counts as AWS time), and the observer's own resolution is 1-3 AWS s")
    return "; ".join(parts)


# --- 4 -------------------------------------------------------------------------------------------------
def limit(r: dict) -> dict:
    goals = ["a whole ship within 5 % of the lower bound (MaxHealthy 200)"]
    if "limit" not in r:
        return skipped("4", "4. Distance from the limit", goals)
    rows = [x for x in r["limit"]["cases"] if "failed" not in x]
    failed = [x for x in r["limit"]["cases"] if "failed" in x]
    lines = ["## 4. Distance from the limit", "",
             "`cargo run --example limit -- CASE...` (examples/limit.rs; its header has the timings and the bound): a",
             "whole `ship` (lock, preflight, bake from a base image, deploy) in the fake cloud, in virtual time, with",
             "realistic AWS timings: image 300 s, boot 30 s, provisioning 300 s, power-off 30 s, ALB health checks 30 s ×",
             "5 (150 s `initial`), warm-up 90 s, deregistration delay 300 s, shutdown 30 s, refresh Pending 15 s;",
             "bakeroll's defaults (poll 5 s, bake poll 10 s). The **lower bound** is what those timings allow with no",
             "poll in the way: bake = boot + provisioning + power-off + image; deploy at MaxHealthy 200 = Pending + one",
             "cycle (boot + the later of health checks and warm-up) + draining + shutdown. OFFSET s are added to the",
             "provisioning, the image and Pending: bakeroll sees each event at its next poll, so offset 0 (events on a",
             "poll) is its best case and offset 1 (just after one) close to its worst.", "",
             "| instances | Min / Max | offset | batches | bake (bound) | deploy (bound) | ship | bound | over the bound | polls | real time | peak RSS |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in rows:
        lines.append(f"| {x['instances']} | {x['min_healthy']} / {x['max_healthy']} | {x['offset_s']} | {x['batches']} | "
                     f"{x['bake_s']:.0f} s ({x['bound_bake_s']}) | {x['deploy_s']:.0f} s ({x['bound_deploy_s']}) | {x['total_s']:.0f} s | "
                     f"{x['bound_total_s']} s | {100 * x['over_bound']:+.2f} % | {x['polls']} | {x['real_s']:.1f} s | {mb(x['rss_kib'])} |")
    for x in failed:
        lines.append(f"| {x['case']} | failed: {x['failed']} |")
    growth = [x for x in rows if x["max_healthy"] == 100]
    if growth:
        lines += ["", "At AWS's default MinHealthy 90 / MaxHealthy 100 the refresh replaces what MinHealthy lets go at a time",
                  "(one of 3, a tenth of 30 or more): " + ", ".join(f"{x['instances']} instances {x['deploy_s']:.0f} s "
                  f"({x['batches']} batches)" for x in growth) + "; the deploy grows with the number of batches, which stops "
                  "growing at 10, not with the fleet. The bound in those rows is the fake's model of batching (Pending + "
                  "(batches − 1) cycles + the later of a cycle and draining + shutdown), given to show where the time goes."]
    max200 = [x for x in rows if x["max_healthy"] == 200]
    worst = max(max200, key=lambda x: x["over_bound"], default=None)
    met = bool(max200) and not failed and worst["over_bound"] <= 0.05
    return {"lines": lines, "goals": [{
        "section": "4", "goal": goals[0], "baseline": f"bound {worst['bound_total_s']} s" if worst else "",
        "figure": (f"worst {100 * worst['over_bound']:+.2f} % ({worst['instances']} instances, offset {worst['offset_s']}); "
                   f"{', '.join(sorted({str(x['instances']) for x in max200}, key=int))} instances") if worst else "–",
        "met": met, "why": None if met else ("a case failed" if failed else "over 5 %")}]}


# --- 5 -------------------------------------------------------------------------------------------------
def binary(r: dict) -> dict:
    goals = ["start-up under 10 ms", "peak RSS under 40 MB"]
    if "binary" not in r:
        return skipped("5", "5. The binary", goals)
    b, bin_ = r["binary"], r["binary_under_test"]
    v, st, one = b["version"], b["status"], b["status_one"]
    lines = ["## 5. The binary", "",
             f"`{bin_['path']}`: {bin_['bytes']:,} bytes ({bin_['bytes'] / MB:.1f} MB), {bin_['file']}.", "",
             f"Start-up: median wall time of {v['bakeroll']['runs']} runs (the AWS CLI's: {v['aws']['runs']}), spawn to exit, measured",
             "by the benchmark (Python's spawn is about 1 ms of it). `status` runs against a seeded local AWS (time",
             "scale 0.01) with pipeline/local.toml; its baseline is scripts/baseline/aws-cli-status.sh, the same",
             f"reads with the AWS CLI, one process per call ({'the same calls by action, checked' if b['status_calls_match'] else 'NOT the same calls: see run.json'}).", "",
             "| figure | bakeroll | AWS CLI | AWS CLI ÷ bakeroll |", "| --- | ---: | ---: | ---: |",
             f"| `--version` | {ms(v['bakeroll']['median_s'])} ({ms(v['bakeroll']['min_s'])}-{ms(v['bakeroll']['max_s'])}) | "
             f"{ms(v['aws']['median_s'])} ({ms(v['aws']['min_s'])}-{ms(v['aws']['max_s'])}) | {ratio(v['aws']['median_s'], v['bakeroll']['median_s'])} |",
             f"| `status` (6 reads) | {ms(st['bakeroll']['median_s'])} ({ms(st['bakeroll']['min_s'])}-{ms(st['bakeroll']['max_s'])}) | "
             f"{ms(st['script']['median_s'])} ({ms(st['script']['min_s'])}-{ms(st['script']['max_s'])}) | {ratio(st['script']['median_s'], st['bakeroll']['median_s'])} |",
             f"| of one `status`: the local AWS's own time answering | {one['bakeroll']['server_ms']:.0f} ms | {one['script']['server_ms']:.0f} ms | |",
             f"| CPU of one `status` | {ms(one['bakeroll']['cpu_s'])} | {ms(one['script']['cpu_s'])} | {ratio(one['script']['cpu_s'], one['bakeroll']['cpu_s'])} |",
             f"| peak RSS of `status` (largest process) | {mb(one['bakeroll']['rss_largest_kib'])} | {mb(one['script']['rss_largest_kib'])} | {ratio(one['script']['rss_largest_kib'], one['bakeroll']['rss_largest_kib'])} |",
             f"| peak RSS of a ship (§1, scale 0.01; AWS CLI: its largest process / whole tree) | {mb(b['ship_rss_kib'])} | "
             f"{mb(b['script_rss_largest_kib'])} / {mb(b['script_rss_tree_kib'])} | {ratio(b['script_rss_largest_kib'], b['ship_rss_kib'])} |",
             f"| peak RSS of a 1 000-instance ship in the fake cloud (§4; the example's debug build, the fake included) | {mb(b['fake_1000_rss_kib'])} | | |"]
    start = v["bakeroll"]["median_s"]
    rss = [x for x in (b["ship_rss_kib"], b["fake_1000_rss_kib"]) if x]
    big = max(rss, default=None)
    return {"lines": lines, "goals": [
        {"section": "5", "goal": goals[0], "figure": f"`--version` {ms(start)}; `status` {ms(st['bakeroll']['median_s'])} (6 calls)",
         "baseline": f"`aws --version` {ms(v['aws']['median_s'])}; the same reads {ms(st['script']['median_s'])}", "met": start < 0.010,
         "why": None if start < 0.010 else "over 10 ms"},
        {"section": "5", "goal": goals[1], "figure": f"ship {mb(b['ship_rss_kib'])}; 1 000-instance fake ship {mb(b['fake_1000_rss_kib'])}",
         "baseline": f"an aws-cli process {mb(b['script_rss_largest_kib'])}", "met": (big * 1024 < 40 * MB) if big else None,
         "why": None if not big or big * 1024 < 40 * MB else "over 40 MB"}]}

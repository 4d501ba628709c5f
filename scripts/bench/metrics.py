"""metrics.py: section 6 of scripts/bench/run, the metric gate on the local AWS's Application Load Balancer
metrics (issue 20): releases whose health checks all pass, with drawn error rates and traffic, one after
another on one seeded local AWS at time scale 0.02 (pipeline/local.toml's stack: shop-web, 3 instances in
target groups shop-web and shop-web-admin on shop-alb; the demo's poll of 20 AWS s, 400 ms real; bake_time
15 AWS minutes, what the README advises for a service whose error rate is about 1 %; every metric setting
at its default: 1 point, 1.5×, 200 requests, unhealthy_threshold 2). Why 0.02 and not the demo's 0.01:
the local AWS is one Python process answering a poll's five calls one after another, 100-200 ms real on a
loaded machine; at 0.01 that is 10-20 AWS s, as long as the poll interval itself, where AWS answers in tens
of milliseconds. At 0.02 the answer times count half as much; the section takes about 7 minutes.

For each release, drawn from a fixed seed:
* the old error rate log-uniform in [1 %, 5 %] and the traffic log-uniform in [500, 3000] requests a minute
  per target group; a bad release answers 5XX at old × [3, 6], a good one at old × [0.9, 1.1] (alternating);
* the image the group runs is tagged `local-aws:error-rate=<old>` and both target groups
  `local-aws:requests-per-minute=<rpm>`, then 12 AWS minutes pass (the baseline's 10 and their publication);
* `bakeroll bake --tag local-aws:error-rate=<new>`, then `bakeroll deploy --ami` with `--events` (so that
  the JSON summary's `api_calls` are the deploy's alone, as in section 2);
* when a minute was published: the emulator shows minute k's datapoints exactly 60 AWS s after it ends
  (scripts/emulator/README.md, "Publication delay"; its own tests check it), 1.2 s real after the minute's
  timestamp at 0.01: the minute whose verdict convicted is the latest `metric.minute_ms` of the pieces of
  evidence of the poll that convicted (it may hold more than one); the first piece's minute too;
* the poll that convicted began at its evidence's `metric.seen_ms` (bakeroll's clock, the same machine's): the
  figure splits into publication → that poll (bakeroll's pace) and that poll → the rollback (the local AWS's
  answers to the poll and to RollbackInstanceRefresh);
* the rollback's moment: the forward refresh's RollbackDetails.RollbackStartTime, or the start of the
  refresh back when the conviction came after the refresh had ended (the publication wait);
* calls: the watch's calls (the deploy's DescribeAutoScalingGroups, DescribeInstanceRefreshes,
  DescribeTargetHealth, DescribeInstances less preflight's and the lock's, as gate.watch_elsewhere says,
  plus every GetMetricData but the release's first look at the ten minutes before it) over its polls (fleet
  samples in `--events`), against 1 + G + T + 1 = 5.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import gate
import stack

SCALE = 0.02
POLL_AWS_S = 20  # the demo pipeline's poll (pipeline/local.toml: 200 ms at 0.01)
POLL_S = POLL_AWS_S * SCALE
PUBLISHED_AFTER_S = (60 + 60) * SCALE  # a minute's end (60 AWS s) and LOCAL_AWS_METRICS_DELAY_SECONDS (60)
BAKE_TIME = "15m"
WATCH_OPS = ("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes",
             "ec2:DescribeInstances", "elasticloadbalancing:DescribeTargetHealth")


def pipeline(work: Path) -> str:
    text = (stack.REPO / "pipeline/local.toml").read_text()
    text = text.replace('user_data = "scripts/provision-demo.sh"', f'user_data = "{stack.REPO}/scripts/provision-demo.sh"')
    text = text.replace('bake_time = "60s"', f'bake_time = "{BAKE_TIME}"')
    # bakeroll's timeout is real time, bake_time AWS time; the file is checked as if both were one clock.
    text = text.replace('timeout = "3m"', 'timeout = "20m"')
    head, env = text.split("[environments.local]")
    text = head + "[environments.local]" + env.replace('poll_interval = "200ms"', f'poll_interval = "{round(POLL_S * 1000)}ms"')
    path = work / "metrics.toml"
    path.write_text('name = "metrics-bench"\n' + text)
    return str(path)


def draws(n: int) -> list[dict]:
    rnd = random.Random(20261204)
    out = []
    for i in range(n):
        old = math.exp(rnd.uniform(math.log(0.01), math.log(0.05)))
        rpm = round(math.exp(rnd.uniform(math.log(500), math.log(3000))))
        bad = i % 2 == 0
        factor = rnd.uniform(3, 6) if bad else rnd.uniform(0.9, 1.1)
        out.append({"n": i + 1, "bad": bad, "old_rate": old, "new_rate": min(old * factor, 1.0), "factor": factor, "rpm": rpm})
    return out


def rollback_moment(asg, refresh_ids: list[str]) -> float | None:
    """When the rollback was sent: the forward refresh's RollbackStartTime, else the refresh back's StartTime."""
    refreshes = {r["InstanceRefreshId"]: r for r in asg.describe_instance_refreshes(AutoScalingGroupName=stack.GROUP)["InstanceRefreshes"]}
    first = refreshes.get(refresh_ids[0]) if refresh_ids else None
    start = ((first or {}).get("RollbackDetails") or {}).get("RollbackStartTime")
    if start is None and len(refresh_ids) > 1 and refresh_ids[1] in refreshes:
        start = refreshes[refresh_ids[1]].get("StartTime")
    return start.timestamp() if start else None


def release(bench, server: stack.LocalAws, pipe: str, d: dict, current: str, work: Path) -> tuple[dict, str]:
    ec2, elb, asg = (server.client(s) for s in ("ec2", "elbv2", "autoscaling"))
    tgs = server.seeded["target_group_arns"]
    ec2.create_tags(Resources=[current], Tags=[{"Key": "local-aws:error-rate", "Value": f"{d['old_rate']:.5f}"}])
    elb.add_tags(ResourceArns=tgs, Tags=[{"Key": "local-aws:requests-per-minute", "Value": str(d["rpm"])}])
    time.sleep(12 * 60 * SCALE)  # the baseline's ten minutes at these rates, and their publication
    baked, _ = stack.bakeroll(bench.bin, ["--pipeline", pipe, "bake", "--commit", f"metrics{d['n']:03d}",
                                          "--tag", f"local-aws:error-rate={d['new_rate']:.5f}"], server.env)
    ami = baked["bake"]["ami_id"]
    events = work / f"metrics-{d['n']}.ndjson"
    summary, _ = stack.bakeroll(bench.bin, ["--pipeline", pipe, "--events", str(events), "deploy", "--ami", ami], server.env)
    g = (summary.get("deploy") or {}).get("groups", [{}])[0]
    failure = (((g.get("outcome") or {}).get("reason")) or {}).get("failure") or {}
    evidence = [e for e in failure.get("evidence", []) if e.get("metric")]
    rolled_back = summary.get("exit_code") == 3
    polls = sum(1 for line in events.read_text().splitlines() if json.loads(line).get("event") == "fleet")
    calls = summary.get("api_calls", {})
    outside = gate.watch_elsewhere(len(tgs), verified=summary.get("outcome") == "deployed")
    watch = {a: calls.get(a, 0) - outside[a] for a in WATCH_OPS}
    # Less the release's first look at the ten minutes before it (engine/metrics.rs), made before any refresh.
    watch["cloudwatch:GetMetricData"] = calls.get("cloudwatch:GetMetricData", 0) - 1
    out = dict(d, exit_code=summary.get("exit_code"), outcome=summary.get("outcome"), rolled_back=rolled_back,
               pieces=len(evidence), kinds=sorted({e["kind"] for e in failure.get("evidence", [])}),
               polls=polls, watch_calls=watch, calls_per_poll=sum(watch.values()) / max(polls, 1),
               limit=1 + 1 + len(tgs) + 1, metric_calls=watch["cloudwatch:GetMetricData"],
               describe_target_groups=calls.get("elasticloadbalancing:DescribeTargetGroups", 0))
    if rolled_back and evidence:
        moment = rollback_moment(asg, g.get("refresh_ids", []))
        convicting = [e for e in evidence if e["at_secs"] == evidence[-1]["at_secs"]]
        published = max(e["metric"]["minute_ms"] for e in convicting) / 1000 + PUBLISHED_AFTER_S
        first = evidence[0]["metric"]["minute_ms"] / 1000 + PUBLISHED_AFTER_S
        poll = convicting[0]["metric"]["seen_ms"] / 1000
        out["publication_to_rollback_ms"] = (moment - published) * 1000 if moment else None
        # Split: until the poll that convicted began (bakeroll's pace), then its answers and the rollback call.
        out["publication_to_poll_ms"] = (poll - published) * 1000
        out["poll_to_rollback_ms"] = (moment - poll) * 1000 if moment else None
        out["first_piece_to_rollback_aws_s"] = (moment - first) / SCALE if moment else None
        out["reason"] = evidence[-1].get("reason")
    keep = ami if summary.get("outcome") == "deployed" else current
    return out, keep


def run(bench, releases: int) -> dict:
    work = bench.work / "metrics"
    work.mkdir(parents=True, exist_ok=True)
    server = stack.LocalAws(work / "aws", SCALE)
    t0 = time.monotonic()
    try:
        server.reseed(fresh=False)
        pipe = pipeline(work)
        current = server.seeded["base_ami"]
        results = []
        for d in draws(releases):
            r, current = release(bench, server, pipe, d, current, work)
            bench.log(f"metrics release {d['n']}/{releases}: {'bad' if d['bad'] else 'good'} {d['old_rate']:.4f} -> "
                      f"{d['new_rate']:.4f} at {d['rpm']} rpm: exit {r['exit_code']}, {r.get('publication_to_rollback_ms')} ms")
            results.append(r)
    finally:
        server.down()
    return {"scale": SCALE, "poll_s": POLL_S, "bake_time": BAKE_TIME, "releases": results, "seconds": time.monotonic() - t0}

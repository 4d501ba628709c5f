"""economy.py: section 2 of scripts/bench/run, AWS calls per poll and per deploy, by operation.

* Local AWS (time scale 0.01, pipeline/local.toml, poll 20 AWS s): one healthy `bakeroll deploy --ami`
  per fleet size (3, 30) and target-group count (1: shop-web-admin detached from the group; 3: a third
  target group behind a listener on port 81 attached), each counted twice, from the local AWS's request
  log (every call that reached it, by action) and from bakeroll's own summary (`api_calls`), which must
  agree. Polls are the watch's `fleet` events (--events). The watch's calls are the deploy's
  DescribeAutoScalingGroups, DescribeInstanceRefreshes, DescribeTargetHealth and DescribeInstances less
  those made outside it (gate.watch_elsewhere); every other call is the deploy's fixed cost.
* Fake cloud (virtual time, pipeline poll 5 s): `cargo run --example gate_calls -- SIZES --tgs 1,3`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gate
import stack

REPO = stack.REPO
WATCH_OPS = ("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes",
             "ec2:DescribeInstances", "elasticloadbalancing:DescribeTargetHealth")


def split(calls: dict[str, int], tgs: int, lock: bool = True) -> tuple[dict, dict]:
    """(the watch's calls, every other call) of one deploy's calls by action."""
    outside = gate.watch_elsewhere(tgs, lock)
    watch = {a: calls.get(a, 0) - outside[a] for a in WATCH_OPS}
    fixed = {a: c - (watch.get(a, 0)) for a, c in calls.items()}
    return watch, {a: c for a, c in fixed.items() if c}


def set_target_groups(server: stack.LocalAws, want: int) -> list[str]:
    """Attaches or detaches target groups until the group is in `want` (1-3) of them; their ARNs."""
    asg, elb = server.client("autoscaling"), server.client("elbv2")
    seeded = server.seeded["target_group_arns"]  # shop-web, shop-web-admin
    extra = server.seeded.get("bench_extra_tg")
    if want == 3 and not extra:
        extra = elb.create_target_group(
            Name="shop-web-extra", Protocol="HTTP", Port=80, VpcId=server.seeded["vpc_id"], TargetType="instance",
            HealthCheckPath="/health", HealthCheckIntervalSeconds=10, HealthyThresholdCount=3,
            UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        # Without a listener AWS reports every target `unused` (see tests/support/second_stack.py).
        elb.create_listener(LoadBalancerArn=server.seeded["load_balancer_arn"], Protocol="HTTP", Port=81,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": extra}])
        server.seeded["bench_extra_tg"] = extra
    wanted = (seeded + ([extra] if extra else []))[:want]
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[stack.GROUP])["AutoScalingGroups"][0]
    now = set(g["TargetGroupARNs"])
    if drop := sorted(now - set(wanted)):
        asg.detach_load_balancer_target_groups(AutoScalingGroupName=stack.GROUP, TargetGroupARNs=drop)
    if add := sorted(set(wanted) - now):
        asg.attach_load_balancer_target_groups(AutoScalingGroupName=stack.GROUP, TargetGroupARNs=add)
    return wanted


def local_deploy(bench, server: stack.LocalAws, pipe: str, ami: str, n: int, tgs: list[str]) -> dict:
    asg, elb = server.client("autoscaling"), server.client("elbv2")
    asg.update_auto_scaling_group(AutoScalingGroupName=stack.GROUP, MaxSize=max(2 * n, 6), MinSize=min(n, 3),
                                  DesiredCapacity=n)
    gate.settle(asg, elb, tgs, n, timeout=300)
    events = bench.work / f"economy-{n}-{len(tgs)}.ndjson"
    offset = server.log_offset()
    t0 = time.monotonic()
    summary, cpu = stack.bakeroll(bench.bin, ["--pipeline", pipe, "--events", str(events), "deploy", "--ami", ami], server.env)
    wall = time.monotonic() - t0
    logged = server.calls_since(offset)
    polls = sum(1 for line in events.read_text().splitlines() if json.loads(line).get("event") == "fleet")
    watch, fixed = split(logged, len(tgs))
    row = {"instances": n, "target_groups": len(tgs), "outcome": summary.get("outcome"), "polls": polls,
           "deploy_calls": logged, "summary_agrees": logged == summary.get("api_calls"),
           "summary_api_calls": summary.get("api_calls"), "watch_calls": watch, "fixed_calls": fixed,
           "calls_per_poll": sum(watch.values()) / max(polls, 1), "limit": 2 + len(tgs),
           "cpu_s": cpu, "cpu_ms_per_poll": 1000 * cpu / max(polls, 1), "wall_s": wall}
    bench.log(f"economy local {n} instances {len(tgs)} TGs: {row['outcome']}, {polls} polls, "
              f"{row['calls_per_poll']:.2f} calls per poll, {row['cpu_ms_per_poll']:.1f} ms CPU per poll")
    return row


def run(bench, local: tuple[int, ...], fake: tuple[int, ...]) -> dict:
    out: dict = {"local": [], "fake": []}
    server = stack.LocalAws(bench.work / "economy", 0.01)
    try:
        server.reseed(fresh=False)
        pipe = gate.pipeline(bench.work, "economy", "200ms")
        baked, _ = stack.bakeroll(bench.bin, ["--pipeline", pipe, "bake", "--commit", "benchgood"], server.env)
        images = [baked["bake"]["ami_id"], server.seeded["base_ami"]]
        i = 0
        for n in local:
            # 1 then 3 target groups at the first size, 3 then 1 at the next: one change of the group each time.
            for count in ((1, 3) if local.index(n) % 2 == 0 else (3, 1)):
                tgs = set_target_groups(server, count)
                out["local"].append(local_deploy(bench, server, pipe, images[i % 2], n, tgs))
                i += 1
    finally:
        server.down()
    text = bench.cargo_example("gate_calls", [*map(str, fake), "--tgs", "1,3"])
    for row in json.loads(text.strip().splitlines()[-1]):
        watch, fixed = split(row["deploy_calls"], row["target_groups"], lock=False)
        row.update(watch_calls=watch, fixed_calls=fixed)
        out["fake"].append(row)
    return out

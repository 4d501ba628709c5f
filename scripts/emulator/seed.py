"""`scripts/local-aws seed`: the storefront demo stack, one region, two AZs, a web tier behind an
Application Load Balancer. Idempotent: a second run finds and reports what exists.

Creates (us-east-1, the default account; seed_storefront.py builds it): VPC shop-vpc with an internet
gateway and subnets shop-a (us-east-1a) and shop-b (us-east-1b); security group shop-web; launch
template shop-web version 1 (newest `al2023-ami-*-x86_64` owned by amazon, t3.micro, the security
group, instance tag app=shop); ALB shop-alb; target groups shop-web (HTTP:80, /health, interval 10 s,
healthy 3, unhealthy 2) and shop-web-admin (HTTP:8080, interval 10 s, healthy 2); listeners HTTP:80 →
shop-web and HTTP:8080 → shop-web-admin (AWS reports the targets of a target group that no load
balancer uses as `unused`, so the admin group needs a listener too); ASG shop-web (min 3, max 6,
desired 3, both subnets, both target groups, HealthCheckType ELB, grace 60 s, DefaultInstanceWarmup
60 s, launch template version "1" or --version-ref); CloudWatch alarm shop-web-5xx
(HTTPCode_ELB_5XX_Count of shop-alb, Sum over 60 s > 10, state OK). Then waits until the 3 instances
are healthy in both target groups and writes seed.json. `--shape` adds other group shapes next to it
(seed_shapes.py); `--region`/`--account` build the same stack once more in another region and/or
account (seed_stacks.py), recorded under seed.json's `stacks`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import seed_shapes, seed_stacks, seed_storefront
from .seed_storefront import ALARM, NAME, SeedError  # noqa: F401 - NAME/ALARM as before, for importers

WAIT_LIMIT = 900.0  # real seconds; the scaled wait is ~45 AWS seconds


def main(argv: list[str], endpoint: str, state_dir: Path) -> int:
    parser = argparse.ArgumentParser(prog="scripts/local-aws seed")
    parser.add_argument("--version-ref", default="1", help='ASG launch template version: "1" (default), "$Latest", "$Default"')
    parser.add_argument("--no-wait", action="store_true", help="do not wait for healthy targets")
    parser.add_argument("--shape", action="append", default=[], choices=seed_shapes.SHAPES,
                        help="also create this group shape next to shop-web (repeatable): shop-lc, shop-mixed, "
                             "shop-warm, or the tiers shop-canary and shop-worker")
    parser.add_argument("--region", help="also build the storefront stack in this region (seed.json: stacks)")
    parser.add_argument("--account", help="... in this account (12 digits), through its role bakeroll-deploy, "
                                          "which trusts the default account")
    args = parser.parse_args(argv)
    try:
        extra = seed_stacks.wanted(args.region, args.account)
    except SeedError as e:
        print(f"local-aws seed: {e}", file=sys.stderr)
        return 2
    made: list[str] = []

    def note(kind: str, ident: str, created: bool) -> None:
        made.append(f"  {'created' if created else 'exists '} {kind:<16} {ident}")

    clients = seed_stacks.clients(endpoint, seed_stacks.DEFAULT_REGION, None)
    try:
        seed = seed_storefront.build(clients, seed_stacks.DEFAULT_REGION, args.version_ref, note)
    except SeedError as e:
        print(f"local-aws seed: {e}", file=sys.stderr)
        return 1
    shapes = {shape: seed_shapes.create(clients, shape, seed, note) for shape in dict.fromkeys(args.shape)}
    if shapes:  # only then: the default seed.json stays exactly as it was
        seed["shapes"] = shapes
    print("local-aws seed (us-east-1):", file=sys.stderr)
    print("\n".join(made), file=sys.stderr)
    seed_json = state_dir / "seed.json"
    stacks = seed_stacks.earlier(seed_json)
    waits = [(NAME, clients, seed["target_group_arns"])]
    if extra is not None:
        made.clear()
        try:
            entry, extra_clients = seed_stacks.create(endpoint, *extra, args.version_ref, note, made)
        except SeedError as e:
            print(f"local-aws seed: {e}", file=sys.stderr)
            return 1
        stacks[seed_stacks.key(*extra)] = entry
        waits.append((seed_stacks.key(*extra), extra_clients, entry["target_group_arns"]))
    if stacks:  # only with --region/--account (now or in an earlier run): the default keys stay as they were
        seed["stacks"] = stacks
    state_dir.mkdir(parents=True, exist_ok=True)
    seed_json.write_text(json.dumps(seed, indent=2) + "\n")

    if not args.no_wait:
        t0 = time.monotonic()
        for label, made_clients, tg_arns in waits:
            while not (ids := seed_storefront.ready(made_clients["autoscaling"], made_clients["elbv2"], tg_arns)):
                if time.monotonic() - t0 > WAIT_LIMIT:
                    print(f"local-aws seed: instances of {label} did not become healthy in time", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            print(f"  3 instances of {label} healthy in both target groups after {time.monotonic() - t0:.2f} s: "
                  f"{', '.join(ids)}", file=sys.stderr)
        for shape, info in shapes.items():
            while not seed_shapes.ready(clients["autoscaling"], clients["elbv2"], info, seed["target_group_arns"]):
                if time.monotonic() - t0 > WAIT_LIMIT:
                    print(f"local-aws seed: the {shape} shape did not become healthy in time", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            names = ", ".join(info["groups"]) if "groups" in info else info["asg_name"]
            print(f"  {names} ({shape}) healthy after {time.monotonic() - t0:.2f} s", file=sys.stderr)
    print(f"  wrote {seed_json}", file=sys.stderr)
    json.dump(seed, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0

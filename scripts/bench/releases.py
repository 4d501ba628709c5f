"""releases.py: section 7 of scripts/bench/run, a release across many groups and regions.

* Waves (fake cloud, virtual time, every AWS call taking 150 ms): `cargo run --example waves` — AWS calls per
  poll of one wave of G = 1, 3 and 10 groups in T distinct target groups (pairs of groups share one, as a
  canary shares its web tier's), against the bound 1 + G + T; and a deploy of three tiers of different sizes
  in one wave against the largest (the slowest) deployed alone.
* Copies (local AWS at time scale 0.01, the real binary): `bakeroll deploy --ami` of a fresh image to an
  environment in the bake region and 1 other region, and to one in the bake region and 3 others (the
  storefront stack seeded in each: `seed --region`), alternating which goes first. The copy phase is read
  from the run's `--events`: from the first `copy` phase event to the first event after the last copy was
  available (the first group's launch-template version); a copy is pending 300 AWS s (3 s here). Each
  deploy copies a new image (made with CreateImage from a seeded instance), so no copy is reused.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import stack

REPO = stack.REPO
REGIONS = ("ap-south-1", "eu-west-1", "ap-southeast-1")

PIPELINE = """region = "us-east-1"
[bake]
base_ami_filter = {{ owners = ["amazon"], name = "al2023-ami-*-x86_64" }}
ami_name = "shop-{{commit}}"
poll_interval = "200ms"
timeout = "60s"
image_timeout = "60s"
{envs}"""

ENV = """[environments.{name}]
auto_scaling_groups = ["shop-web"]
regions = [{regions}]
copy_timeout = "60s"
instance_warmup = "60s"
poll_interval = "200ms"
health_grace = "20s"
timeout = "3m"
metrics = "off"
"""


def waves(bench) -> dict:
    out = bench.cargo_example("waves", ["--groups", "1,3,10"])
    return json.loads(out.strip().splitlines()[-1])


def copy_phase(events: Path) -> float | None:
    """Seconds from the first `copy` phase event to the first event after the copies (the first group's version)."""
    lines = [json.loads(x) for x in events.read_text().splitlines() if x.strip()]
    start = next((x["unix_ms"] for x in lines if x.get("phase") == "copy"), None)
    if start is None:
        return None
    after = next((x["unix_ms"] for x in lines if x["unix_ms"] >= start and x.get("phase") in ("template", "refresh", "pin")), None)
    return None if after is None else (after - start) / 1000


def copies(bench, pairs: int) -> dict:
    server = stack.LocalAws(bench.work / "regions", 0.01)
    server.reseed()
    for r in REGIONS:
        server.seed("--region", r)
    envs = ENV.format(name="one", regions='"us-east-1", "ap-south-1"') + ENV.format(
        name="three", regions=", ".join(f'"{r}"' for r in ("us-east-1", *REGIONS)))
    pipeline = bench.work / "regions.toml"
    pipeline.write_text(PIPELINE.format(envs=envs))
    ec2 = server.client("ec2")
    instance = server.read_state("shop-web")["instances"][0]["id"]
    runs = []
    n = 0
    for i in range(pairs):
        for env in (("one", "three") if i % 2 == 0 else ("three", "one")):
            n += 1
            image = ec2.create_image(InstanceId=instance, Name=f"bench-copy-{n}", NoReboot=True,
                                     TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "bakeroll:pipeline", "Value": "regions"}]}])["ImageId"]
            deadline = time.monotonic() + 60
            while ec2.describe_images(ImageIds=[image])["Images"][0]["State"] != "available":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench image {image} never became available")
                time.sleep(0.1)
            events = bench.work / f"copies-{n}.ndjson"
            p = stack.run([bench.bin, "--pipeline", pipeline, "--env", env, "--output", "json", "--no-progress",
                           "--events", events, "deploy", "--ami", image], env=server.env)
            summary = json.loads(p.stdout) if p.stdout.strip() else {}
            phase = copy_phase(events) if events.exists() else None
            runs.append({"env": env, "regions": 1 if env == "one" else 3, "image": image, "exit_code": p.returncode,
                         "copy_s": phase, "copy_calls": summary.get("api_calls", {}).get("ec2:CopyImage")})
            bench.log(f"copies to {runs[-1]['regions']} region(s): {phase} s, exit {p.returncode}")
    server.down()
    one = [r["copy_s"] for r in runs if r["regions"] == 1 and r["copy_s"] is not None]
    three = [r["copy_s"] for r in runs if r["regions"] == 3 and r["copy_s"] is not None]
    return {"runs": runs, "scale": 0.01, "copy_aws_s": 300,
            "median_one_s": statistics.median(one) if one else None, "median_three_s": statistics.median(three) if three else None}


def run(bench, quick: bool) -> dict:
    t0 = time.monotonic()
    out = {"waves": waves(bench), "copies": copies(bench, pairs=1 if quick else 3)}
    out["seconds"] = time.monotonic() - t0
    return out

"""The reliability matrix's region cases' view of a local AWS (run in its virtualenv, boto3): each region of
the deploy account seeded by `scripts/local-aws seed --account A [--region R]`, read the way the case is
judged, and the changes a case makes to the deploy role before bakeroll runs.

    regional_state.py SEED_JSON GROUP PIPELINE read [REGION...]
        one JSON document on stdout (default regions: the bake region and each seeded one):
        {"<region>": read_state.py's document of GROUP in that region of the deploy account, with
        `images`, `snapshots` and `build_instances` of the bake account (the caller's credentials) in that
        region, where bakeroll bakes and copies; or {"missing": true, ...} when there is no such group}
    regional_state.py SEED_JSON GROUP PIPELINE require-external-id
        the role's trust policy then allows the bake account only with an sts:ExternalId the pipeline file
        does not give: bakeroll's AssumeRole is refused, as AWS refuses it
    regional_state.py SEED_JSON GROUP PIPELINE fence REGION
        the role's inline policy then denies its sessions every action outside REGION (IAM, STS aside)

The deploy account is read and changed as its administrator (moto's x-moto-account-id header), never
through the role: a role that refuses bakeroll still lets the judge see.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from read_state import Reader, owned  # noqa: E402

EXTERNAL_ID = "not-in-the-pipeline-file"
BAKE_REGION = "us-east-1"


def stacks(seed: dict) -> dict[str, dict]:
    """The seeded stacks of the deploy account, by region (in the order seeded)."""
    return {key.split("/", 1)[1]: stack for key, stack in seed.get("stacks", {}).items()}


def deploy_clients(account: str, region: str):
    """The deploy account's clients as its administrator: moto's x-moto-account-id header (what the
    emulator's tests use to act as an account), not the role, so that a role bakeroll may not assume or
    use anywhere is still read (and changed) here."""
    def client(service: str):
        c = boto3.client(service, region_name=region)
        c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        return c
    return client("ec2"), client("autoscaling"), client("elbv2"), client("iam")


def read(seed: dict, group: str, pipeline: str, regions: list[str]) -> dict:
    out = {}
    account = next(iter(stacks(seed).values()))["account"]
    for region in regions:
        ec2, asg, elb, _ = deploy_clients(account, region)
        if asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]:
            doc = Reader(ec2, asg, elb).read(group, pipeline)
        else:
            doc = {"missing": True, "desired": 0, "group_tags": {}, "launch_template": {}, "instances": [],
                   "target_health": {}, "lt_versions": [], "refreshes": []}
        images, snapshots, builds = owned(boto3.client("ec2", region_name=region), pipeline)
        doc.update(images=images, snapshots=snapshots, build_instances=builds)
        out[region] = doc
    return out


def role(seed: dict) -> tuple[str, str]:
    """(the deploy account, its role's name)."""
    stack = next(iter(stacks(seed).values()))
    return stack["account"], stack["role_arn"].rsplit("/", 1)[1]


def require_external_id(seed: dict) -> None:
    account, name = role(seed)
    *_, iam = deploy_clients(account, BAKE_REGION)
    bake_account = boto3.client("sts").get_caller_identity()["Account"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{bake_account}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]}
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(policy))


def fence(seed: dict, allowed: str) -> None:
    """The IAM User Guide's "Denies access to AWS based on the requested Region" as the role's inline
    policy: the role's sessions may act in `allowed` only (IAM and STS aside)."""
    account, name = role(seed)
    *_, iam = deploy_clients(account, BAKE_REGION)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyAllOutsideRequestedRegions", "Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": [allowed]}}}]}
    iam.put_role_policy(RoleName=name, PolicyName="region-fence", PolicyDocument=json.dumps(policy))


def main(seed_path: str, group: str, pipeline: str, command: str, *args: str) -> int:
    seed = json.loads(Path(seed_path).read_text())
    if command == "read":
        print(json.dumps(read(seed, group, pipeline, list(args) or [BAKE_REGION, *[r for r in stacks(seed) if r != BAKE_REGION]]),
                         default=str))
    elif command == "require-external-id":
        require_external_id(seed)
    elif command == "fence":
        fence(seed, args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

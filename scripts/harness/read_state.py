"""What a local AWS holds around one Auto Scaling group, read with an independent client (boto3, never the
SDK bakeroll uses), as one JSON document: the end-to-end tests' asserts (tests/support/mod.rs `inspect`)
and the reliability matrix's verdicts (scripts/reliability) read the same document.

    read_state.py GROUP [PIPELINE]   one document on stdout
    read_state.py --serve            one request a line on stdin ({"group": G, "pipeline": P or null}),
                                     one document (or {"error": ...}) a line on stdout, until stdin closes:
                                     boto3's import and client set-up (about a CPU second) paid once, not
                                     on every read of a test that polls

Endpoint and credentials come from the environment (the `export` lines of `scripts/local-aws up`).
PIPELINE narrows `build_instances` to that pipeline's (tag bakeroll:pipeline); without it, every build
instance. (Not named inspect.py: that would shadow the standard library module.)
"""

from __future__ import annotations

import json
import sys

import boto3


def tags(items) -> dict:
    return {t["Key"]: t["Value"] for t in items or []}


def instances(ec2, **kw) -> list[dict]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(**kw):
        for r in page["Reservations"]:
            out.extend(r["Instances"])
    return out


def owned(ec2, pipeline: str | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """The account's own images (each with its snapshots' tags), the snapshots bakeroll tagged, and the
    build instances (of `pipeline`, or all) that `ec2`'s account and region hold."""
    images = []
    for im in ec2.describe_images(Owners=["self"])["Images"]:
        snaps = [b["Ebs"]["SnapshotId"] for b in im.get("BlockDeviceMappings", []) if b.get("Ebs", {}).get("SnapshotId")]
        snap_tags = {s["SnapshotId"]: tags(s.get("Tags")) for s in ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]} if snaps else {}
        # snapshots: {id: tags} (iterating it gives the ids)
        images.append({"id": im["ImageId"], "name": im.get("Name"), "state": im["State"], "tags": tags(im.get("Tags")),
                       "snapshots": snap_tags})
    # Snapshots bakeroll tagged (provenance), whether or not an image still lists them.
    snapshots = [{"id": s["SnapshotId"], "tags": tags(s.get("Tags"))} for s in ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["bakeroll:commit", "bakeroll:pipeline"]}])["Snapshots"]]
    filters = [{"Name": "tag:bakeroll:role", "Values": ["build-instance"]}]
    if pipeline:
        filters.append({"Name": "tag:bakeroll:pipeline", "Values": [pipeline]})
    builds = [{"id": i["InstanceId"], "state": i["State"]["Name"], "tags": tags(i.get("Tags"))}
              for i in instances(ec2, Filters=filters)]
    return images, snapshots, builds


class Reader:
    def __init__(self, ec2=None, asg=None, elb=None):
        """The clients of the account and region to read (default: the environment's)."""
        self.ec2, self.asg, self.elb = ec2 or boto3.client("ec2"), asg or boto3.client("autoscaling"), elb or boto3.client("elbv2")

    def read(self, group: str, pipeline: str | None = None) -> dict:
        ec2, asg, elb = self.ec2, self.asg, self.elb
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in g["Instances"]]
        image_of = {i["InstanceId"]: i["ImageId"] for i in instances(ec2, InstanceIds=ids)} if ids else {}
        health = {}
        for arn in g.get("TargetGroupARNs", []):
            name = arn.split(":targetgroup/")[1].split("/")[0]
            desc = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            health[name] = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in desc}
        lt = g.get("LaunchTemplate") or {}
        versions = []
        if lt:
            for page in ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateId=lt["LaunchTemplateId"]):
                for v in page["LaunchTemplateVersions"]:
                    versions.append({"number": v["VersionNumber"], "image": v["LaunchTemplateData"].get("ImageId"),
                                     "instance_type": v["LaunchTemplateData"].get("InstanceType"),
                                     "description": v.get("VersionDescription") or "", "default": v.get("DefaultVersion", False)})
        images, snapshots, builds = owned(ec2, pipeline)
        refreshes = []
        for r in asg.describe_instance_refreshes(AutoScalingGroupName=group).get("InstanceRefreshes", []):
            desired = (r.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
            refreshes.append({"id": r["InstanceRefreshId"], "status": r["Status"], "desired_version": desired.get("Version"),
                              "start": str(r.get("StartTime"))})
        return {
            "desired": g["DesiredCapacity"],
            "group_tags": tags(g.get("Tags")),
            "launch_template": lt,
            "instances": [{"id": i["InstanceId"], "image": image_of.get(i["InstanceId"]), "lifecycle": i["LifecycleState"],
                           "health": i["HealthStatus"]} for i in g["Instances"]],
            "target_health": health,
            "lt_versions": versions,
            "images": images,
            "build_instances": builds,
            "snapshots": snapshots,
            "refreshes": refreshes,
        }


def serve(reader: Reader) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = reader.read(req["group"], req.get("pipeline"))
        except Exception as e:  # noqa: BLE001 — the asking test shows it
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    if argv == ["--serve"]:
        serve(Reader())
        return 0
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(Reader().read(argv[0], argv[1] if len(argv) > 1 else None), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

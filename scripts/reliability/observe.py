"""What the local AWS holds, for the reliability matrix's verdicts: one JSON document on stdout, read
with boto3 (an independent client, straight from the local AWS, never through the fault proxy).

Usage: observe.py GROUP PIPELINE_NAME  (endpoint and credentials from the environment). Runs with the
local AWS's virtualenv python (boto3); the matrix itself is standard library only.
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


def main(group: str, pipeline: str) -> None:
    ec2, asg, elb = boto3.client("ec2"), boto3.client("autoscaling"), boto3.client("elbv2")
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
        for v in ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])["LaunchTemplateVersions"]:
            versions.append({"number": v["VersionNumber"], "image": v["LaunchTemplateData"].get("ImageId"),
                             "description": v.get("VersionDescription") or "", "default": v.get("DefaultVersion", False)})
    refreshes = []
    for r in asg.describe_instance_refreshes(AutoScalingGroupName=group).get("InstanceRefreshes", []):
        desired = (r.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
        refreshes.append({"id": r["InstanceRefreshId"], "status": r["Status"], "desired_version": desired.get("Version"),
                          "start": str(r.get("StartTime"))})
    images = []
    for im in ec2.describe_images(Owners=["self"])["Images"]:
        snaps = [b["Ebs"]["SnapshotId"] for b in im.get("BlockDeviceMappings", []) if b.get("Ebs", {}).get("SnapshotId")]
        images.append({"id": im["ImageId"], "name": im.get("Name"), "state": im["State"], "tags": tags(im.get("Tags")),
                       "snapshots": snaps})
    snapshots = [{"id": s["SnapshotId"], "tags": tags(s.get("Tags"))}
                 for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    builds = [{"id": i["InstanceId"], "state": i["State"]["Name"], "tags": tags(i.get("Tags"))}
              for i in instances(ec2, Filters=[{"Name": "tag:bakeroll:role", "Values": ["build-instance"]},
                                               {"Name": "tag:bakeroll:pipeline", "Values": [pipeline]}])]
    print(json.dumps({
        "desired": g["DesiredCapacity"],
        "launch_template": lt,
        "group_tags": {t["Key"]: t["Value"] for t in g.get("Tags", [])},
        "instances": [{"id": i["InstanceId"], "image": image_of.get(i["InstanceId"]), "lifecycle": i["LifecycleState"],
                       "health": i["HealthStatus"]} for i in g["Instances"]],
        "target_health": health,
        "lt_versions": versions,
        "refreshes": refreshes,
        "images": images,
        "snapshots": snapshots,
        "build_instances": builds,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

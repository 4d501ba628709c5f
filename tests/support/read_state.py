"""(Not named inspect.py: that would shadow the standard library module.) Reads the local AWS's state with an independent client (boto3) for the end-to-end tests' asserts.

Usage: read_state.py GROUP  -> one JSON document on stdout. Endpoint and credentials come from the
environment (the `env` file `scripts/local-aws up` writes).
"""

import json
import sys

import boto3


def tags(items):
    return {t["Key"]: t["Value"] for t in items or []}


def main(group):
    ec2 = boto3.client("ec2")
    asg = boto3.client("autoscaling")
    elb = boto3.client("elbv2")
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in g["Instances"]]
    images_of = {}
    if ids:
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                images_of[i["InstanceId"]] = i["ImageId"]
    health = {}
    for arn in g.get("TargetGroupARNs", []):
        name = arn.split(":targetgroup/")[1].split("/")[0]
        desc = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        health[name] = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in desc}
    lt = g.get("LaunchTemplate") or {}
    versions = []
    if lt:
        token = None
        while True:
            kw = {"LaunchTemplateId": lt["LaunchTemplateId"]}
            if token:
                kw["NextToken"] = token
            page = ec2.describe_launch_template_versions(**kw)
            for v in page["LaunchTemplateVersions"]:
                versions.append({
                    "number": v["VersionNumber"],
                    "image": v["LaunchTemplateData"].get("ImageId"),
                    "instance_type": v["LaunchTemplateData"].get("InstanceType"),
                    "description": v.get("VersionDescription"),
                    "default": v.get("DefaultVersion", False),
                })
            token = page.get("NextToken")
            if not token:
                break
    images = []
    for im in ec2.describe_images(Owners=["self"])["Images"]:
        snaps = [b["Ebs"]["SnapshotId"] for b in im.get("BlockDeviceMappings", []) if "Ebs" in b and b["Ebs"].get("SnapshotId")]
        snap_tags = {}
        if snaps:
            for s in ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]:
                snap_tags[s["SnapshotId"]] = tags(s.get("Tags"))
        images.append({"id": im["ImageId"], "name": im.get("Name"), "state": im["State"], "tags": tags(im.get("Tags")), "snapshots": snap_tags})
    builds = []
    for r in ec2.describe_instances(Filters=[{"Name": "tag:bakeroll:role", "Values": ["build-instance"]}])["Reservations"]:
        for i in r["Instances"]:
            builds.append({"id": i["InstanceId"], "state": i["State"]["Name"]})
    snapshots = [{"id": s["SnapshotId"], "tags": tags(s.get("Tags"))} for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["bakeroll:commit"]}])["Snapshots"]]
    refreshes = asg.describe_instance_refreshes(AutoScalingGroupName=group).get("InstanceRefreshes", [])
    print(json.dumps({
        "desired": g["DesiredCapacity"],
        "group_tags": {t["Key"]: t["Value"] for t in g.get("Tags", [])},
        "launch_template": lt,
        "instances": [{"id": i["InstanceId"], "image": images_of.get(i["InstanceId"]), "lifecycle": i["LifecycleState"], "health": i["HealthStatus"]} for i in g["Instances"]],
        "target_health": health,
        "lt_versions": versions,
        "images": images,
        "build_instances": builds,
        "snapshots": snapshots,
        "refreshes": [{"id": r["InstanceRefreshId"], "status": r["Status"],
                       "desired_version": ((r.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}).get("Version")}
                      for r in refreshes],
    }, default=str))


if __name__ == "__main__":
    main(sys.argv[1])

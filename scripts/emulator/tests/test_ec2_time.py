"""EC2 behaviour that takes time (Amazon EC2 User Guide — "Amazon EC2 instance state changes",
"Change the instance initiated shutdown behavior", "Create an Amazon EBS-backed AMI"; EC2 API
Reference — "CreateImage", "DescribeImages", "GetConsoleOutput")."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_for


def _ami(ec2) -> str:
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    return max(imgs, key=lambda i: i["CreationDate"])["ImageId"]


def _state(ec2, iid) -> str:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _states(fresh, ec2, iid, until: str, limit_aws: float) -> list[tuple[float, str]]:
    t0, seen = time.monotonic(), []
    while True:
        s = _state(ec2, iid)
        if not seen or seen[-1][1] != s:
            seen.append(((time.monotonic() - t0) / fresh.scale, s))
        if s == until or (time.monotonic() - t0) / fresh.scale > limit_aws:
            return seen
        time.sleep(0.002)


def _in_order(seen, canonical: list[str]) -> bool:
    """The observed states are canonical states in canonical order (a slow poll may miss one)."""
    states = [s for _, s in seen]
    positions = [canonical.index(s) for s in states if s in canonical]
    return len(positions) == len(states) and positions == sorted(positions) and len(set(positions)) == len(positions)


def _run(ec2, script: str | None = None, **kw) -> str:
    if script is not None:
        kw["UserData"] = script  # boto3 base64-encodes it, as EC2 receives it
    return ec2.run_instances(ImageId=_ami(ec2), MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)[
        "Instances"][0]["InstanceId"]


def test_instance_is_pending_then_running(fresh, clients):
    ec2, _, _ = clients
    out = ec2.run_instances(ImageId=_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]
    assert out["State"]["Name"] == "pending"
    seen = _states(fresh, ec2, out["InstanceId"], "running", 100)
    assert _in_order(seen, ["pending", "running"]) and seen[-1][1] == "running", seen
    stop = ec2.stop_instances(InstanceIds=[out["InstanceId"]])["StoppingInstances"][0]
    assert stop["CurrentState"]["Name"] == "stopping"
    seen = _states(fresh, ec2, out["InstanceId"], "stopped", 100)
    assert _in_order(seen, ["stopping", "stopped"]) and seen[-1][1] == "stopped", seen


@pytest.mark.parametrize("last", ["poweroff", "sudo shutdown -h now", "halt -p"])
def test_user_data_that_powers_off_stops_the_instance(fresh, clients, last):
    ec2, _, _ = clients
    iid = _run(ec2, f"#!/bin/bash\nset -e\ndnf install -y nginx\necho ok > /opt/marker\n{last}\n")
    seen = _states(fresh, ec2, iid, "stopped", 400)
    assert _in_order(seen, ["pending", "running", "stopping", "stopped"]) and "running" in [s for _, s in seen], seen
    assert seen[-1][1] == "stopped"
    assert 60 <= seen[-1][0] <= 140, seen  # boot 15 + provisioning 60 + stopping 10
    reason = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["StateReason"]
    assert reason["Code"] == "Client.InstanceInitiatedShutdown"
    log = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore base64-decodes it for us
    assert "cloud-init" in log and "Power down" in log


def test_shutdown_behavior_terminate(fresh, clients):
    ec2, _, _ = clients
    iid = _run(ec2, "#!/bin/sh\npoweroff\n", InstanceInitiatedShutdownBehavior="terminate")
    assert _states(fresh, ec2, iid, "terminated", 400)[-1][1] == "terminated"


def test_failing_provisioning_never_stops(fresh, clients):
    ec2, _, _ = clients
    iid = _run(ec2, "#!/bin/sh\necho local-aws:fail-provisioning\nexit 1\npoweroff\n")
    seen = _states(fresh, ec2, iid, "stopped", 400)
    assert seen[-1][1] == "running"
    log = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore base64-decodes it for us
    assert "ERROR" in log


def test_instance_without_poweroff_keeps_running(fresh, clients):
    ec2, _, _ = clients
    iid = _run(ec2, "#!/bin/sh\necho hello\n")
    assert _states(fresh, ec2, iid, "stopped", 200)[-1][1] == "running"


def test_image_is_pending_then_available_with_snapshot(fresh, clients):
    ec2, _, _ = clients
    iid = _run(ec2)
    wait_for(lambda: _state(ec2, iid) == "running")
    image_id = ec2.create_image(InstanceId=iid, Name="shop-2026", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "app", "Value": "shop"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "app", "Value": "shop"}]}])["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "pending"
    snap_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert snap["State"] == "pending"
    assert {"Key": "app", "Value": "shop"} in snap["Tags"]
    ec2.create_tags(Resources=[snap_id], Tags=[{"Key": "bakeroll:build", "Value": "42"}])
    t0 = time.monotonic()
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert (time.monotonic() - t0) / fresh.scale >= 60
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert snap["State"] == "completed"
    assert {"Key": "bakeroll:build", "Value": "42"} in snap["Tags"]
    with pytest.raises(ClientError) as err:
        ec2.create_image(InstanceId=iid, Name="shop-2026")
    assert err.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"


def test_describe_images_by_owner_alias_and_self(fresh, clients):
    ec2, _, _ = clients
    amazon = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*"]}])["Images"]
    assert amazon and all(i.get("ImageOwnerAlias") == "amazon" for i in amazon)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    iid = _run(ec2)
    mine = ec2.create_image(InstanceId=iid, Name="mine")["ImageId"]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [mine]

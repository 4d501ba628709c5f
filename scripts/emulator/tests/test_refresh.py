"""Instance refresh, driven through boto3 against local-aws, checked against the AWS documentation
(Amazon EC2 Auto Scaling User Guide: "How an instance refresh works", "Instance maintenance
policies", "Add checkpoints", "Use bake time", "Cancel an instance refresh", "Undo changes with a
manual or auto rollback")."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import group, make_image, new_version, refresh_status, wait_for, wait_refresh_done

TIME_SCALE = 0.004
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


def test_default_preferences_replace_one_at_a_time(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(AutoScalingGroupName="shop-web", DesiredConfiguration={
        "LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}})
    most_new_pending = 0
    while True:
        g = group(asg)  # read before the status: if the refresh is still running after, g was mid-refresh
        if refresh_status(asg)["Status"] in TERMINAL:
            break
        most_new_pending = max(most_new_pending, len([i for i in g["Instances"] if i["LifecycleState"] == "Pending"]))
        # the group's configuration stays the old one until the refresh succeeds
        assert g["LaunchTemplate"]["Version"] == "1"
    assert refresh_status(asg)["Status"] == "Successful"
    assert most_new_pending == 1  # Min 90 % of 3 rounds up to 3: one instance at a time


def test_second_start_is_refused(fresh, clients):
    ec2, asg, _ = clients
    fresh.seed()
    asg.start_instance_refresh(AutoScalingGroupName="shop-web")
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="shop-web")
    assert err.value.response["Error"]["Code"] == "InstanceRefreshInProgress"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("prefs,fragment", [
    ({"MinHealthyPercentage": 101}, "minHealthyPercentage"),
    ({"MaxHealthyPercentage": 201}, "maxHealthyPercentage"),
    ({"MinHealthyPercentage": 50, "MaxHealthyPercentage": 160}, "cannot be greater than 100"),
    ({"CheckpointDelay": 60}, "CheckpointPercentages"),
    ({"CheckpointPercentages": [50, 20, 100]}, "ascending"),
    ({"BakeTime": 172801}, "bakeTime"),
    ({"AutoRollback": True}, "desired configuration"),
])
def test_out_of_range_preferences_are_validation_errors(fresh, clients, prefs, fragment):
    _, asg, _ = clients
    fresh.seed()
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="shop-web", Preferences=prefs)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in err.value.response["Error"]["Message"]


def test_unhealthy_ami_with_auto_rollback_restores_old_image(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    bad = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-bad", unhealthy=True))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": bad}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "AutoRollback": True},
    )
    seen, gap, last = set(), 0.0, time.time()
    while (r := refresh_status(asg))["Status"] not in TERMINAL:
        seen.add(r["Status"])
        gap, last = max(gap, time.time() - last), time.time()
    assert r["Status"] == "RollbackSuccessful"
    assert r["RollbackDetails"]["RollbackReason"]
    assert "RollbackStartTime" in r["RollbackDetails"]
    # The rollback was reported while it ran: seen by these polls whenever it lasted longer than the longest
    # gap between two of them (a loaded machine once answered too slowly to see a shorter one).
    rolling_back = (r["EndTime"] - r["RollbackDetails"]["RollbackStartTime"]).total_seconds()
    if rolling_back > gap:
        assert "RollbackInProgress" in seen, (rolling_back, gap)
    g = group(asg)
    assert g["LaunchTemplate"]["Version"] == "1"
    ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
    assert len(ids) == 3
    images = {i["ImageId"] for res in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in res["Instances"]}
    assert images == {seed["base_ami"]}


def test_unhealthy_ami_without_auto_rollback_fails_and_keeps_group_config(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    bad = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-bad", unhealthy=True))
    asg.start_instance_refresh(AutoScalingGroupName="shop-web", DesiredConfiguration={
        "LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": bad}})
    r = wait_refresh_done(asg)
    assert r["Status"] == "Failed"
    assert "health" in r["StatusReason"]
    assert group(asg)["LaunchTemplate"]["Version"] == "1"


def test_cancel_stops_without_undoing(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    image = make_image(ec2, seed["base_ami"], "shop-v2")
    version = new_version(ec2, image)
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 100},
    )
    wait_for(lambda: refresh_status(asg)["PercentageComplete"] >= 33, what="first replacement")
    asg.cancel_instance_refresh(AutoScalingGroupName="shop-web")
    r = wait_refresh_done(asg)
    assert r["Status"] == "Cancelled"
    time.sleep(fresh.aws(400))  # long enough for any further replacement to have happened
    live = [i for i in group(asg)["Instances"] if i["LifecycleState"] in ("Pending", "InService")]
    images = [i["ImageId"] for res in ec2.describe_instances(InstanceIds=[i["InstanceId"] for i in live])["Reservations"]
              for i in res["Instances"]]
    assert image in images and seed["base_ami"] in images, images  # a mixed fleet stays
    assert group(asg)["LaunchTemplate"]["Version"] == "1"
    with pytest.raises(ClientError) as err:
        asg.cancel_instance_refresh(AutoScalingGroupName="shop-web")
    assert err.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"


def test_manual_rollback_and_irreversible_cases(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    with pytest.raises(ClientError) as err:
        asg.rollback_instance_refresh(AutoScalingGroupName="shop-web")
    assert err.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"
    asg.start_instance_refresh(AutoScalingGroupName="shop-web")  # no desired configuration
    with pytest.raises(ClientError) as err:
        asg.rollback_instance_refresh(AutoScalingGroupName="shop-web")
    assert err.value.response["Error"]["Code"] == "IrreversibleInstanceRefresh"
    asg.cancel_instance_refresh(AutoScalingGroupName="shop-web")
    wait_refresh_done(asg)
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
    )
    wait_for(lambda: refresh_status(asg)["Status"] == "InProgress", what="InProgress")
    asg.rollback_instance_refresh(AutoScalingGroupName="shop-web")
    r = wait_refresh_done(asg)
    assert r["Status"] == "RollbackSuccessful"
    ids = [i["InstanceId"] for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"]
    images = {i["ImageId"] for res in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in res["Instances"]}
    assert images == {seed["base_ami"]}


def test_group_on_latest_cannot_roll_back(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed("--version-ref", "$Latest")
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    desired = {"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}}
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="shop-web", DesiredConfiguration=desired,
                                   Preferences={"AutoRollback": True})
    assert err.value.response["Error"]["Code"] == "ValidationError"
    asg.start_instance_refresh(AutoScalingGroupName="shop-web", DesiredConfiguration=desired)
    with pytest.raises(ClientError) as err:
        asg.rollback_instance_refresh(AutoScalingGroupName="shop-web")
    assert err.value.response["Error"]["Code"] == "IrreversibleInstanceRefresh"


def test_checkpoints_and_bake_time(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    asg.set_desired_capacity(AutoScalingGroupName="shop-web", DesiredCapacity=4)
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 50, "CheckpointPercentages": [50, 100], "CheckpointDelay": 600,
                     "BakeTime": 600},
    )
    r = wait_for(lambda: (lambda r: r if "Checkpoint" in (r.get("StatusReason") or "") else None)(refresh_status(asg)),
                 what="checkpoint")
    assert r["Status"] == "InProgress" and r["PercentageComplete"] == 50
    time.sleep(fresh.aws(300))
    assert refresh_status(asg)["PercentageComplete"] == 50  # paused for CheckpointDelay
    r = wait_for(lambda: (lambda r: r if r["Status"] == "Baking" else None)(refresh_status(asg)), what="Baking")
    assert r["PercentageComplete"] == 100
    assert group(asg)["LaunchTemplate"]["Version"] == "1"  # not applied before the bake ends
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful"
    assert group(asg)["LaunchTemplate"]["Version"] == version


def test_rollback_during_bake(fresh, clients):
    ec2, asg, _ = clients
    seed = fresh.seed()
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "BakeTime": 3600},
    )
    wait_for(lambda: refresh_status(asg)["Status"] == "Baking", what="Baking")
    asg.rollback_instance_refresh(AutoScalingGroupName="shop-web")
    seen = []
    while (r := refresh_status(asg))["Status"] not in TERMINAL:
        seen.append(r["PercentageComplete"])
    assert r["Status"] == "RollbackSuccessful"
    assert r["RollbackDetails"]["PercentageCompleteOnRollback"] == 100
    # "PercentageComplete does not include instances that are replaced during a rollback. This value
    # gradually goes back down to zero during a rollback."
    assert seen == sorted(seen, reverse=True) and r["PercentageComplete"] == 0, seen


def test_skip_matching_replaces_nothing_when_all_match(fresh, clients):
    _, asg, _ = clients
    fresh.seed()
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": "1"}},
        Preferences={"SkipMatching": True},
    )
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful" and r["PercentageComplete"] == 100 and r["InstancesToUpdate"] == 0
    assert {i["InstanceId"] for i in group(asg)["Instances"]} == before


def test_describe_lists_newest_first_with_preferences(fresh, clients):
    _, asg, _ = clients
    fresh.seed()
    first = asg.start_instance_refresh(AutoScalingGroupName="shop-web")["InstanceRefreshId"]
    asg.cancel_instance_refresh(AutoScalingGroupName="shop-web")
    wait_refresh_done(asg)
    second = asg.start_instance_refresh(AutoScalingGroupName="shop-web")["InstanceRefreshId"]
    items = asg.describe_instance_refreshes(AutoScalingGroupName="shop-web")["InstanceRefreshes"]
    assert [i["InstanceRefreshId"] for i in items] == [second, first]
    assert items[1]["Status"] == "Cancelled" and "EndTime" in items[1]
    assert items[0]["Preferences"]["MinHealthyPercentage"] == 90
    page = asg.describe_instance_refreshes(AutoScalingGroupName="shop-web", MaxRecords=1)
    assert len(page["InstanceRefreshes"]) == 1 and page["NextToken"]


@pytest.mark.parametrize("mode", ["Ignore", "Refresh", "Wait"])
def test_scale_in_protected_instances(fresh, clients, mode):
    ec2, asg, _ = clients
    seed = fresh.seed()
    protected = group(asg)["Instances"][0]["InstanceId"]
    asg.set_instance_protection(AutoScalingGroupName="shop-web", InstanceIds=[protected], ProtectedFromScaleIn=True)
    version = new_version(ec2, make_image(ec2, seed["base_ami"], "shop-v2"))
    asg.start_instance_refresh(
        AutoScalingGroupName="shop-web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "shop-web", "Version": version}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "ScaleInProtectedInstances": mode},
    )
    if mode == "Wait":
        r = wait_for(lambda: (lambda r: r if "protected" in (r.get("StatusReason") or "") else None)(
            refresh_status(asg)), what="waiting for protection")
        assert r["Status"] == "InProgress"
        asg.set_instance_protection(AutoScalingGroupName="shop-web", InstanceIds=[protected], ProtectedFromScaleIn=False)
    r = wait_refresh_done(asg)
    assert r["Status"] == "Successful"
    ids = {i["InstanceId"] for i in group(asg)["Instances"] if i["LifecycleState"] == "InService"}
    assert (protected in ids) == (mode == "Ignore")

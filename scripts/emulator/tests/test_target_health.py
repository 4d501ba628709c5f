"""Target health and group membership (Elastic Load Balancing User Guide — "Health checks for
Application Load Balancer target groups", "Deregistration delay"; Amazon EC2 Auto Scaling User
Guide — "Amazon EC2 Auto Scaling instance lifecycle")."""

from __future__ import annotations

import time

from .conftest import group, make_image, wait_for


def _tg(elbv2, vpc_id: str, lb_subnets: list[str], name="t", healthy=3, unhealthy=2, interval=10, listener=True):
    arn = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id, HealthCheckPath="/health",
                                    HealthCheckIntervalSeconds=interval, HealthyThresholdCount=healthy,
                                    UnhealthyThresholdCount=unhealthy)["TargetGroups"][0]["TargetGroupArn"]
    if listener:
        lb = elbv2.create_load_balancer(Name=f"{name}-lb", Subnets=lb_subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    return arn


def _state(elbv2, arn, iid):
    d = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": iid}])["TargetHealthDescriptions"][0]
    return d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")


def _timeline(fresh, elbv2, arn, iid, until: set, limit_aws=600, t0=None):
    """[(aws seconds since start, state, reason)] each time the answer changes, until a state in `until`.
    `t0`: the start (time.monotonic()), when it came before the call that started the change."""
    t0, seen = t0 if t0 is not None else time.monotonic(), []
    while True:
        s = _state(elbv2, arn, iid)
        if not seen or seen[-1][1:] != s:
            seen.append(((time.monotonic() - t0) / fresh.scale, *s))
        if s[0] in until or (time.monotonic() - t0) / fresh.scale > limit_aws:
            return seen
        time.sleep(0.002)


def _net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    return vpc, [a, b]


def _base_ami(ec2):
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    return max(imgs, key=lambda i: i["CreationDate"])["ImageId"]


def test_new_target_is_initial_then_healthy(fresh, clients):
    ec2, _, elbv2 = clients
    vpc, subnets = _net(ec2)
    arn = _tg(elbv2, vpc, subnets, healthy=3, interval=30)
    iid = ec2.run_instances(ImageId=_base_ami(ec2), MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    seen = _timeline(fresh, elbv2, arn, iid, {"healthy", "unhealthy"})
    # Until the first check (30 AWS s = 150 ms here) the registration is in progress; a first answer that
    # came later than that (a machine loaded enough to hold this process back for it) can only be initial.
    first = ("initial", "Elb.RegistrationInProgress") if seen[0][0] < 30 else ("initial", "Elb.InitialHealthChecking")
    assert seen[0][1:] == first, seen
    assert seen[-1][1] == "healthy"
    # 3 checks x 30 s once the instance runs (it booted while we registered); polling adds a little
    assert 90 <= seen[-1][0] <= 160, seen


def test_broken_ami_goes_unhealthy(fresh, clients):
    ec2, _, elbv2 = clients
    vpc, subnets = _net(ec2)
    arn = _tg(elbv2, vpc, subnets, healthy=3, unhealthy=2)
    bad = make_image(ec2, _base_ami(ec2), "broken", unhealthy=True)
    iid = ec2.run_instances(ImageId=bad, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    seen = _timeline(fresh, elbv2, arn, iid, {"healthy", "unhealthy"})
    assert seen[-1][1:] == ("unhealthy", "Target.FailedHealthChecks")
    assert all(s[1] == "initial" for s in seen[:-1])


def test_tagging_a_running_instance_breaks_it(fresh, clients):
    ec2, _, elbv2 = clients
    vpc, subnets = _net(ec2)
    arn = _tg(elbv2, vpc, subnets, healthy=2, unhealthy=3, interval=10)
    iid = ec2.run_instances(ImageId=_base_ami(ec2), MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    wait_for(lambda: _state(elbv2, arn, iid)[0] == "healthy", what="healthy")
    # Timed from before the tag is sent: it takes effect somewhere inside the call, and on a loaded machine
    # its answer can come back a couple of AWS seconds later (a CI run measured 18.4 s from the answer).
    t0 = time.monotonic()
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "local-aws:health", "Value": "unhealthy"}])
    seen = _timeline(fresh, elbv2, arn, iid, {"unhealthy"}, t0=t0)
    assert seen[-1][1] == "unhealthy"
    assert 20 <= seen[-1][0] <= 50, seen  # UnhealthyThresholdCount 3 x 10 s
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "local-aws:health"}])
    assert _timeline(fresh, elbv2, arn, iid, {"healthy"})[-1][1] == "healthy"


def test_target_group_without_load_balancer_is_unused(fresh, clients):
    ec2, _, elbv2 = clients
    vpc, subnets = _net(ec2)
    arn = _tg(elbv2, vpc, subnets, name="lonely", listener=False)
    iid = ec2.run_instances(ImageId=_base_ami(ec2), MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
    assert _state(elbv2, arn, iid) == ("unused", "Target.NotInUse")


def test_seeded_group_spreads_over_both_azs_and_registers(fresh, clients):
    _, asg, elbv2 = clients
    seed = fresh.seed()
    instances = group(asg)["Instances"]
    assert {i["AvailabilityZone"] for i in instances} == {"us-east-1a", "us-east-1b"}
    assert all(i["LaunchTemplate"]["Version"] == "1" for i in instances)
    for arn in seed["target_group_arns"]:
        states = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        assert sorted(d["Target"]["Id"] for d in states) == sorted(i["InstanceId"] for i in instances)
        assert {d["TargetHealth"]["State"] for d in states} == {"healthy"}


def test_scale_in_deregisters_with_draining(fresh, clients):
    _, asg, elbv2 = clients
    seed = fresh.seed()
    arn = seed["target_group_arns"][0]
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])
    before = {i["InstanceId"] for i in group(asg)["Instances"]}
    asg.update_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=2, DesiredCapacity=2)
    terminating = [i for i in group(asg)["Instances"] if i["LifecycleState"] == "Terminating"]
    assert len(terminating) == 1
    gone = terminating[0]["InstanceId"]
    assert _state(elbv2, arn, gone) == ("draining", "Target.DeregistrationInProgress")
    listed = {d["Target"]["Id"] for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
    assert listed == before  # draining targets are still listed
    wait_for(lambda: gone not in {d["Target"]["Id"] for d in
                                  elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]},
             what="drained target to disappear")
    assert _state(elbv2, arn, gone) == ("unused", "Target.NotRegistered")
    wait_for(lambda: gone not in {i["InstanceId"] for i in group(asg)["Instances"]}, what="instance to leave")


def test_ec2_terminated_member_is_replaced_and_registered(fresh, clients):
    ec2, asg, elbv2 = clients
    seed = fresh.seed()
    victim = group(asg)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[victim])
    def replaced():
        ids = {i["InstanceId"] for i in group(asg)["Instances"] if i["LifecycleState"] in ("Pending", "InService")}
        return ids if len(ids) == 3 and victim not in ids else None
    ids = wait_for(replaced, what="replacement")
    for arn in seed["target_group_arns"]:
        listed = {d["Target"]["Id"]: d["TargetHealth"]["State"]
                  for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
        assert ids <= set(listed)
        assert listed.get(victim, "draining") == "draining"


def test_elb_unhealthy_member_is_replaced_after_grace(fresh, clients):
    ec2, asg, _ = clients
    fresh.seed()
    victim = group(asg)["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[victim], Tags=[{"Key": "local-aws:health", "Value": "unhealthy"}])
    wait_for(lambda: any(i["InstanceId"] == victim and i["HealthStatus"] == "Unhealthy"
                         for i in group(asg)["Instances"]), what="Unhealthy")
    wait_for(lambda: len([i for i in group(asg)["Instances"]
                          if i["LifecycleState"] in ("Pending", "InService") and i["InstanceId"] != victim]) == 3,
             what="replacement")

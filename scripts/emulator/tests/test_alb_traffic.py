"""Which targets the load balancer's requests go to, and what they answer (Elastic Load Balancing User
Guide — "Health checks for Application Load Balancer target groups": healthy targets only, all unhealthy
ones when no target is healthy; "Deregistration delay": none to draining targets; "CloudWatch metrics for
your Application Load Balancer"): the traffic and image tags, Network Load Balancers and target groups in
no load balancer publishing nothing, and draws that depend on the seed, not on the run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from . import alb_helpers as h
from .conftest import Server, wait_for

TIME_SCALE = 0.005  # a minute of AWS time lasts 0.3 s


def _published(srv, cw, dims, since, n: int):
    """The RequestCount sums of the first n whole minutes from `since`, waiting until they are published."""
    def got():
        s = h.series(cw, "RequestCount", "Sum", dims, since)
        return s if len(s) >= n else None
    # n minutes, plus the one in progress and the delay; the 15 s are for a loaded machine's slow answers
    return wait_for(got, timeout=h.minutes(srv, n + 3) + 15, interval=0.02, what=f"{n} minutes published")[:n]


def test_image_tags_set_error_rate_and_latency_and_the_target_group_tag_the_traffic(fresh):
    ec2, elbv2, cw = fresh.client("ec2"), fresh.client("elbv2"), fresh.client("cloudwatch")
    vpc, subnets = h.network(ec2)
    lb, tg = h.balanced_group(elbv2, vpc, subnets, "tagged", rpm="300")
    ami = h.image(ec2, h.base_ami(ec2), "slow-and-failing", **{"local-aws:error-rate": "0.2", "local-aws:latency": "0.5"})
    iids = [h.launch(ec2, elbv2, ami, s, tg) for s in subnets]
    wait_for(lambda: all(h.state(elbv2, tg, i) == "healthy" for i in iids), timeout=10, what="healthy")
    since = h.now() + timedelta(seconds=h.minutes(fresh, 1))
    dims = {"LoadBalancer": h.dim(lb), "TargetGroup": h.dim(tg)}
    minutes = _published(fresh, cw, dims, since, 8)
    end = minutes[-1][0] + timedelta(seconds=h.minutes(fresh, 1))
    requests = sum(v for _, v in minutes)
    assert 8 * 300 * 0.85 <= requests <= 8 * 300 * 1.15  # local-aws:requests-per-minute=300, drawn
    errors = sum(v for _, v in h.series(cw, "HTTPCode_Target_5XX_Count", "Sum", dims, since, end))
    ok = sum(v for _, v in h.series(cw, "HTTPCode_Target_2XX_Count", "Sum", dims, since, end))
    assert errors + ok == requests and 0.16 <= errors / requests <= 0.24  # local-aws:error-rate=0.2
    (avg,) = [v for _, v in h.series(cw, "TargetResponseTime", "Average", dims, since, end, period=600)]
    assert 0.46 <= avg <= 0.54  # local-aws:latency=0.5 (s)
    # an image with no errors publishes no 5XX datapoints at all ("no data for a metric": not reported);
    # values that are not numbers in range are ignored (the defaults apply) and said once in server.log
    lb2, tg2 = h.balanced_group(elbv2, vpc, subnets, "flawless")
    lb3, tg3 = h.balanced_group(elbv2, vpc, subnets, "mistagged")
    clean = h.image(ec2, h.base_ami(ec2), "flawless", **{"local-aws:error-rate": "0"})
    odd = h.image(ec2, h.base_ami(ec2), "mistagged", **{"local-aws:error-rate": "2", "local-aws:latency": "fast"})
    h.launch(ec2, elbv2, clean, subnets[0], tg2)
    h.launch(ec2, elbv2, odd, subnets[0], tg3)
    dims2 = {"LoadBalancer": h.dim(lb2), "TargetGroup": h.dim(tg2)}
    dims3 = {"LoadBalancer": h.dim(lb3), "TargetGroup": h.dim(tg3)}
    start2 = h.now()
    assert len(_published(fresh, cw, dims2, start2, 4)) == 4
    assert h.series(cw, "HTTPCode_Target_5XX_Count", "Sum", dims2, start2) == []
    (odd_avg,) = [v for _, v in h.series(cw, "TargetResponseTime", "Average", dims3, start2, period=600)]
    assert 0.045 <= odd_avg <= 0.055  # the default 0.05 s
    log = (fresh.dir / "server.log").read_text()
    assert log.count(f"ignoring local-aws:latency='fast' on {odd}") == 1
    assert log.count(f"ignoring local-aws:error-rate='2' on {odd}") == 1


def test_requests_go_to_healthy_targets_then_fail_open_to_unhealthy_ones_never_to_draining(fresh):
    ec2, elbv2, cw = fresh.client("ec2"), fresh.client("elbv2"), fresh.client("cloudwatch")
    vpc, subnets = h.network(ec2)
    lb, tg = h.balanced_group(elbv2, vpc, subnets, "routing")
    base = h.base_ami(ec2)
    good = h.image(ec2, base, "good", **{"local-aws:error-rate": "0"})
    # fails only this target group's health checks, and answers every request it gets with a 5XX
    bad = h.image(ec2, base, "bad", **{"local-aws:health:routing": "unhealthy", "local-aws:error-rate": "1"})
    a, b = h.launch(ec2, elbv2, good, subnets[0], tg), h.launch(ec2, elbv2, bad, subnets[1], tg)
    wait_for(lambda: (h.state(elbv2, tg, a), h.state(elbv2, tg, b)) == ("healthy", "unhealthy"), timeout=10,
             what="one healthy, one unhealthy")
    dims = {"LoadBalancer": h.dim(lb), "TargetGroup": h.dim(tg)}
    since = h.now() - timedelta(seconds=h.minutes(fresh, 5))  # also the minutes before either was healthy
    assert len(_published(fresh, cw, dims, h.now(), 3)) == 3
    assert h.series(cw, "HTTPCode_Target_5XX_Count", "Sum", dims, since) == []  # never a request to b
    # all requests in the healthy target's zone
    assert h.series(cw, "RequestCount", "Sum", dict(dims, AvailabilityZone="us-east-1b"), since) == []
    elbv2.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": a}])  # a drains: b is the only one left
    open_since = h.now() + timedelta(seconds=h.minutes(fresh, 1))
    minutes = _published(fresh, cw, dims, open_since, 3)
    errors = dict(h.series(cw, "HTTPCode_Target_5XX_Count", "Sum", dims, open_since))
    assert [errors.get(ts) for ts, _ in minutes] == [v for _, v in minutes]  # fail open: all to b, all 5XX
    elbv2.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": b}])
    quiet_since = h.now() + timedelta(seconds=h.minutes(fresh, 1))
    h.wait_minutes(fresh, 5)
    assert h.series(cw, "RequestCount", "Sum", dims, quiet_since) == []  # no target to choose: no requests


def test_network_load_balancers_and_target_groups_in_no_load_balancer_publish_nothing(fresh):
    ec2, elbv2, cw = fresh.client("ec2"), fresh.client("elbv2"), fresh.client("cloudwatch")
    vpc, subnets = h.network(ec2)
    nlb, nlb_tg = h.balanced_group(elbv2, vpc, subnets, "tcp", kind="network")
    # AWS writes the type into the ARN (moto named every load balancer app/): clients tell an NLB by it.
    assert ":loadbalancer/net/tcp-lb/" in nlb, nlb
    assert elbv2.describe_load_balancers(LoadBalancerArns=[nlb])["LoadBalancers"][0]["Type"] == "network"
    assert elbv2.describe_target_groups(TargetGroupArns=[nlb_tg])["TargetGroups"][0]["LoadBalancerArns"] == [nlb]
    assert ":listener/net/tcp-lb/" in elbv2.describe_listeners(LoadBalancerArn=nlb)["Listeners"][0]["ListenerArn"]
    alone = elbv2.create_target_group(Name="alone", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"]
    alb, alb_tg = h.balanced_group(elbv2, vpc, subnets, "web")
    assert ":loadbalancer/app/web-lb/" in alb, alb
    ami = h.base_ami(ec2)
    for tg in (nlb_tg, alone, alb_tg):
        h.launch(ec2, elbv2, ami, subnets[0], tg)
    assert len(_published(fresh, cw, {"LoadBalancer": h.dim(alb), "TargetGroup": h.dim(alb_tg)}, h.now(), 3)) == 3
    listed = cw.list_metrics(Namespace=h.NS)["Metrics"]
    values = {d["Value"] for m in listed for d in m["Dimensions"]}
    assert h.dim(alb) in values and h.dim(alb_tg) in values
    assert not values & {h.dim(nlb), h.dim(nlb_tg), h.dim(alone)}
    assert h.series(cw, "RequestCount", "Sum", {"LoadBalancer": h.dim(nlb), "TargetGroup": h.dim(nlb_tg)},
                    h.now() - timedelta(seconds=10)) == []


def test_a_deleted_target_groups_minutes_stay_published_and_end_with_it(fresh):
    """CloudWatch keeps what was published: deleting a target group ends its traffic, not its history,
    even when nobody asked for its metrics before it went."""
    ec2, elbv2, cw = fresh.client("ec2"), fresh.client("elbv2"), fresh.client("cloudwatch")
    vpc, subnets = h.network(ec2)
    lb, tg = h.balanced_group(elbv2, vpc, subnets, "gone")
    iid = h.launch(ec2, elbv2, h.base_ami(ec2), subnets[0], tg)
    wait_for(lambda: h.state(elbv2, tg, iid) == "healthy", timeout=10, what="healthy")
    since = h.now()
    h.wait_minutes(fresh, 4)
    elbv2.delete_listener(ListenerArn=elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"])
    elbv2.delete_target_group(TargetGroupArn=tg)
    gone = h.now()
    h.wait_minutes(fresh, 4)  # the publication delay of the last minutes, and minutes it no longer serves
    got = h.series(cw, "RequestCount", "Sum", {"LoadBalancer": h.dim(lb), "TargetGroup": h.dim(tg)}, since)
    assert len(got) >= 3, got
    assert all(ts <= gone for ts, _ in got), (got, gone)


def _first_minutes(seed: str, n: int, asked_once: bool = False) -> list[float]:
    """RequestCount of a fresh server's lone target group, from the first minute its target is healthy:
    asked until they are published, or (asked_once) once, when they all have been."""
    srv = Server(scale=TIME_SCALE, LOCAL_AWS_METRICS_SEED=seed).up()
    try:
        ec2, elbv2, cw = srv.client("ec2"), srv.client("elbv2"), srv.client("cloudwatch")
        vpc, subnets = h.network(ec2)
        lb, tg = h.balanced_group(elbv2, vpc, subnets, "repro")
        iid = h.launch(ec2, elbv2, h.base_ami(ec2), subnets[0], tg)
        wait_for(lambda: h.state(elbv2, tg, iid) == "healthy", timeout=10, what="healthy")
        since = h.now() + timedelta(seconds=h.minutes(srv, 1))
        dims = {"LoadBalancer": h.dim(lb), "TargetGroup": h.dim(tg)}
        if asked_once:
            h.wait_minutes(srv, n + 4)
            return [v for _, v in h.series(cw, "RequestCount", "Sum", dims, since)][:n]
        return [v for _, v in _published(srv, cw, dims, since, n)]
    finally:
        srv.down()


def _aligned(a: list[float], b: list[float], run: int) -> bool:
    """`run` consecutive minutes equal at some offset. The runs may start several minutes apart: each
    counts from when its test saw the target healthy, and three servers at once on a loaded machine see
    that up to a few real seconds apart (a minute lasts 0.3 s here). By chance, five counts of about 600
    requests equal at one of these offsets: far below one in a million."""
    return any(a[i:i + run] == b[i + d:i + d + run] for d in range(-8, 9) for i in range(len(a) - run + 1)
               if 0 <= i + d and len(b[i + d:i + d + run]) == run)


def test_the_draws_depend_on_the_seed_not_on_the_run_nor_on_how_often_anyone_asks():
    with ThreadPoolExecutor(3) as pool:  # three servers of their own, side by side; the second asked once
        first, second, other = pool.map(lambda a: _first_minutes(a[0], 16, a[1]), (("7", False), ("7", True), ("8", False)))
    assert len(second) == 16, second
    assert _aligned(first, second, 5), (first, second)
    assert not _aligned(first, other, 5), (first, other)

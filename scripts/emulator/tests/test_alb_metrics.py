"""Application Load Balancer metrics in CloudWatch, on the seeded stack (Elastic Load Balancing User
Guide — "CloudWatch metrics for your Application Load Balancer"; CloudWatch API Reference —
"GetMetricData", "MetricStat", "ListMetrics"): minutes published after the delay, on the minute grid,
per dimension set; what each statistic means; periods, ScanBy, Unit; the Rust SDK's CBOR protocol."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from . import alb_helpers as h
from .conftest import wait_for
from .test_cli_and_protocol import _cloudwatch_rpcv2

TIME_SCALE = 0.005  # a minute of AWS time lasts 0.3 s


def _seeded(fresh) -> tuple[dict, dict, dict]:
    seed = fresh.seed()
    lb = h.dim(seed["load_balancer_arn"])
    web, admin = (h.dim(a) for a in seed["target_group_arns"])
    return seed, {"LoadBalancer": lb, "TargetGroup": web}, {"LoadBalancer": lb, "TargetGroup": admin}


def test_each_minute_is_published_after_it_ends_plus_the_delay_on_the_minute_grid(fresh):
    cw = fresh.client("cloudwatch")
    _, web, _ = _seeded(fresh)
    start = h.now()
    minute = h.minutes(fresh, 1)
    polls = []  # (asked at, answered at, timestamps in the answer), wall clock
    end = time.monotonic() + h.minutes(fresh, 6)
    while time.monotonic() < end:
        asked = time.time()
        got = h.series(cw, "RequestCount", "Sum", web, start - timedelta(seconds=2))
        polls.append((asked, time.time(), {round(ts.timestamp(), 3) for ts, _ in got}))
        time.sleep(0.005)
    stamps = sorted(set().union(*(p[2] for p in polls)))
    assert len(stamps) >= 5, stamps
    for a, b in zip(stamps, stamps[1:]):
        assert abs(b - a - minute) < 0.002  # one datapoint per minute of AWS time
    for ts in stamps:
        assert abs(ts / minute - round(ts / minute)) < 0.01  # k × 60 × scale after the epoch
        # visible 60 AWS seconds after its minute ended (minute + delay = 2 minutes after its timestamp):
        # in no answer given before then, in every answer asked for after then
        due = ts + 2 * minute
        assert not [p for p in polls if p[1] < due - 0.002 and ts in p[2]], ts
        assert not [p for p in polls if p[0] > due + 0.01 and ts not in p[2]], ts
    assert any(p[1] < s + 2 * minute for s in stamps[1:] for p in polls)  # some were watched before they were due


def test_dimension_sets_add_up_and_count_statistics_mean_one_request_each(fresh):
    cw = fresh.client("cloudwatch")
    seed, web, admin = _seeded(fresh)
    start = h.now() + timedelta(seconds=h.minutes(fresh, 1))  # whole minutes after seed returned (all healthy)
    h.wait_minutes(fresh, 7)
    end = h.now() - timedelta(seconds=h.minutes(fresh, 2))  # every minute before this one is published
    lb = {"LoadBalancer": web["LoadBalancer"]}
    got = {}
    for name, dims in {"web": web, "admin": admin, "lb": lb, "a": dict(lb, AvailabilityZone="us-east-1a"),
                       "b": dict(lb, AvailabilityZone="us-east-1b"),
                       "web-a": dict(web, AvailabilityZone="us-east-1a"),
                       "web-b": dict(web, AvailabilityZone="us-east-1b")}.items():
        got[name] = dict(h.series(cw, "RequestCount", "Sum", dims, start, end))
    common = sorted(set.intersection(*(set(v) for v in got.values())))
    assert len(common) >= 3, got
    for ts in common:
        assert got["lb"][ts] == got["web"][ts] + got["admin"][ts] == got["a"][ts] + got["b"][ts]
        assert got["web"][ts] == got["web-a"][ts] + got["web-b"][ts]
        assert 450 <= got["web"][ts] <= 750  # drawn around the default 600 a minute
    assert h.series(cw, "RequestCount", "Sum", {"TargetGroup": web["TargetGroup"]}, start) == []  # not an ALB set
    for stat in ("SampleCount", "Average", "Minimum", "Maximum", "p99"):
        values = dict(h.series(cw, "RequestCount", stat, web, start, end))
        expect = {ts: (got["web"][ts] if stat == "SampleCount" else 1.0) for ts in common}
        assert {ts: values[ts] for ts in common} == expect, stat
    # five minutes in one period: the sum of the minutes, stamped at the period's (rounded) start
    whole = h.series(cw, "RequestCount", "Sum", web, start, end, period=300)
    assert whole and whole[0][0].timestamp() <= common[0].timestamp()
    assert sum(v for _, v in whole) == sum(got["web"].values())
    # ScanBy's default is TimestampDescending
    res = cw.get_metric_data(MetricDataQueries=[h.query("RequestCount", "Sum", web)], StartTime=start,
                             EndTime=h.now())["MetricDataResults"][0]
    assert res["Timestamps"] == sorted(res["Timestamps"], reverse=True) and len(res["Timestamps"]) >= 3
    # Unit filters; a period that is not a multiple of 60 is refused
    assert h.series(cw, "RequestCount", "Sum", web, start, unit="Seconds") == []
    assert h.series(cw, "RequestCount", "Sum", web, start, unit="Count")
    with pytest.raises(ClientError) as e:
        h.series(cw, "RequestCount", "Sum", web, start, period=90)
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_response_time_statistics_and_percentiles(fresh):
    cw = fresh.client("cloudwatch")
    _, web, _ = _seeded(fresh)
    start = h.now()
    h.wait_minutes(fresh, 7)
    stats = {s: dict(h.series(cw, "TargetResponseTime", s, web, start, period=300)) for s in (
        "SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50", "p99", "p99.9")}
    counts = dict(h.series(cw, "RequestCount", "Sum", web, start, period=300))
    (ts,) = [t for t in stats["Average"] if stats["SampleCount"][t] >= 2000][:1]  # a full five minutes
    v = {s: stats[s][ts] for s in stats}
    assert v["SampleCount"] == counts[ts] and v["Average"] == pytest.approx(v["Sum"] / v["SampleCount"])
    assert 0.046 <= v["Average"] <= 0.054  # default latency 0.05 s
    assert v["Minimum"] < v["p50"] < v["p99"] <= v["p99.9"] <= v["Maximum"]
    assert 0.040 <= v["p50"] <= 0.048  # lognormal, σ 0.5: median 0.88 × mean
    assert 0.12 <= v["p99"] <= 0.165  # p99 2.8 × mean
    res = cw.get_metric_data(MetricDataQueries=[h.query("TargetResponseTime", "tm90", web)], StartTime=start,
                             EndTime=h.now())["MetricDataResults"][0]
    assert res["StatusCode"] == "InternalError" and "tm90" in res["Messages"][0]["Value"] and res["Values"] == []


def test_the_rust_sdk_protocol_and_list_metrics_see_the_same_metrics(fresh):
    cw = fresh.client("cloudwatch")
    seed, web, _ = _seeded(fresh)
    start = h.now()
    h.wait_minutes(fresh, 5)
    end = h.now() - timedelta(seconds=h.minutes(fresh, 2))  # all published: both answers see the same minutes
    boto = h.series(cw, "TargetResponseTime", "p99", web, start, end)
    status, headers, _, parsed = _cloudwatch_rpcv2(fresh.endpoint, "GetMetricData", {
        "MetricDataQueries": [h.query("TargetResponseTime", "p99", web)], "StartTime": start, "EndTime": end,
        "ScanBy": "TimestampAscending"})
    assert status == 200 and headers["content-type"] == "application/cbor"
    (res,) = parsed["MetricDataResults"]
    assert len(boto) >= 2 and res["Values"] == [v for _, v in boto]
    assert [round(t.timestamp(), 3) for t in res["Timestamps"]] == [round(t.timestamp(), 3) for t, _ in boto]
    listed = cw.list_metrics(Namespace=h.NS, MetricName="RequestCount")["Metrics"]
    dimension_sets = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert dimension_sets == {("LoadBalancer",), ("AvailabilityZone", "LoadBalancer"), ("LoadBalancer", "TargetGroup"),
                              ("AvailabilityZone", "LoadBalancer", "TargetGroup")}
    assert {"Name": "TargetGroup", "Value": web["TargetGroup"]} in [d for m in listed for d in m["Dimensions"]]
    names = {m["MetricName"] for m in cw.list_metrics(Namespace=h.NS)["Metrics"]}
    assert {"RequestCount", "TargetResponseTime", "HTTPCode_Target_2XX_Count"} <= names
    # moto's own metrics still answer beside them
    cw.put_metric_data(Namespace="Shop", MetricData=[{"MetricName": "Orders", "Value": 3.0}])
    wait_for(lambda: cw.list_metrics(Namespace="Shop")["Metrics"], timeout=5, what="custom metric")

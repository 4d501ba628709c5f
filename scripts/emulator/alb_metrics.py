"""CloudWatch's side of the Application Load Balancer metrics: GetMetricData and ListMetrics for namespace
AWS/ApplicationELB, answered from the per-minute records alb_traffic.py draws. Every other namespace, and
every other action, stays moto's.

Follows the Elastic Load Balancing User Guide — "CloudWatch metrics for your Application Load Balancer"
(metric names, units, statistics: for the count metrics "`Minimum`, `Maximum`, and `Average` all return
1"; TargetResponseTime's "most useful statistics are `Average` and `pNN.NN`"; the dimension sets
`LoadBalancer`, `AvailabilityZone`+`LoadBalancer`, `TargetGroup`+`LoadBalancer`,
`TargetGroup`+`AvailabilityZone`+`LoadBalancer`, their values the final portion of the ARNs) and the
CloudWatch API Reference — "GetMetricData" (StartTime rounded down to the minute, a datapoint per
period that has data, timestamp order by ScanBy, default TimestampDescending), "MetricStat" (Unit
filters; a regular-resolution period is a multiple of 60), "ListMetrics".

Published here: RequestCount, HTTPCode_Target_2XX_Count, HTTPCode_Target_5XX_Count, TargetResponseTime.
Periods are AWS durations: a Period of 60 spans one minute of AWS time (60 × scale real seconds), and
datapoint timestamps are wall clock, on the minute grid alb_traffic.py defines.
"""

from __future__ import annotations

import bisect
import math
import re
from datetime import datetime, timezone

from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import CloudWatchBackend, MetricDatum

from . import alb_traffic, clock
from .errors import validation_error

NAMESPACE = "AWS/ApplicationELB"
UNITS = {"RequestCount": "Count", "HTTPCode_Target_2XX_Count": "Count", "HTTPCode_Target_5XX_Count": "Count",
         "TargetResponseTime": "Seconds"}
DIMENSION_SETS = ({"LoadBalancer"}, {"LoadBalancer", "AvailabilityZone"}, {"LoadBalancer", "TargetGroup"},
                  {"LoadBalancer", "TargetGroup", "AvailabilityZone"})
SIMPLE = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")


def _epoch(value) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return float(value)


def _cells(store: dict, dims: dict, k_lo: int, k_hi: int, now: float):
    """(minute, Cell) for every visible cell of the metric's dimension values, minutes in [k_lo, k_hi)."""
    for (lb, tg), kept in store.items():
        if lb != dims["LoadBalancer"] or ("TargetGroup" in dims and tg != dims["TargetGroup"]):
            continue
        lo = bisect.bisect_left(kept, k_lo, key=lambda r: r.k)
        hi = bisect.bisect_left(kept, k_hi, key=lambda r: r.k)
        for rec in kept[lo:hi]:
            if rec.visible_at > now:
                break  # published in minute order: the rest are later still
            for zone, cell in rec.cells.items():
                if dims.get("AvailabilityZone", zone) == zone:
                    yield rec.k, cell


def _percentile(cells: list, n: int, p: float) -> float:
    """Nearest rank over the merged response-time bins: the smallest value with p % of requests at or below."""
    counts: dict[int, int] = {}
    for c in cells:
        for key, count in zip(c.bin_keys, c.bin_counts):
            counts[key] = counts.get(key, 0) + count
    rank, seen = max(1, math.ceil(p / 100.0 * n)), 0
    for key in sorted(counts):
        seen += counts[key]
        if seen >= rank:
            return alb_traffic.BIN_BASE ** key
    return alb_traffic.BIN_BASE ** max(counts)


def statistic(metric: str, stat: str, cells: list) -> float | None:
    """The statistic over the cells, or None when the metric has no data there (no datapoint)."""
    if metric == "HTTPCode_Target_5XX_Count":
        n = sum(c.errors for c in cells)
    elif metric == "HTTPCode_Target_2XX_Count":
        n = sum(c.count - c.errors for c in cells)
    else:
        n = sum(c.count for c in cells)
    if n == 0:
        return None
    percentile = _PERCENTILE.match(stat)
    if metric != "TargetResponseTime":  # every request counts 1
        return float(n) if stat in ("SampleCount", "Sum") else 1.0
    if stat == "SampleCount":
        return float(n)
    if stat == "Sum":
        return sum(c.latency_sum for c in cells)
    if stat == "Average":
        return sum(c.latency_sum for c in cells) / n
    if stat == "Minimum":
        return min(c.latency_min for c in cells)
    if stat == "Maximum":
        return max(c.latency_max for c in cells)
    return _percentile(cells, n, float(percentile.group(1)))


def _minutes(start: float, end: float) -> tuple[int, int]:
    """[first, last + 1) of the minutes a query from `start` to `end` (epoch seconds) covers."""
    k_start = math.floor(start / alb_traffic.MINUTE + 1e-9)  # rounded down to the whole minute
    k_end = math.ceil(end / alb_traffic.MINUTE - 1e-9)  # minutes starting before EndTime
    return k_start, k_end


def _query(store: dict, query: dict, start: float, end: float, now: float, descending: bool) -> dict:
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]["MetricName"]
    dims = {d["Name"]: d["Value"] for d in stat_spec["Metric"].get("Dimensions", [])}
    stat, period = stat_spec["Stat"], int(stat_spec["Period"])
    result = {"id": query["Id"], "label": query.get("Label") or f"{metric} {stat}", "values": [], "timestamps": [],
              "status_code": "Complete"}
    if period <= 0 or period % 60:
        raise validation_error(f"The parameter MetricDataQueries.member.{query['_n']}.MetricStat.Period must be a "
                               "multiple of 60 for the standard-resolution AWS/ApplicationELB metrics.")
    if stat not in SIMPLE and not _PERCENTILE.match(stat):
        result["status_code"] = "InternalError"
        result["messages"] = [{"Code": "Unsupported", "Value": f"local-aws computes {', '.join(SIMPLE)} and pNN.NN for "
                                                              f"{NAMESPACE}, not {stat}"}]
        return result
    if metric not in UNITS or set(dims) not in DIMENSION_SETS or stat_spec.get("Unit", UNITS[metric]) != UNITS[metric]:
        return result  # not published (by this emulator or, for other dimension sets, by AWS): no data
    step = period // 60
    k_start, k_end = _minutes(start, end)
    buckets: dict[int, list] = {}
    for k, cell in _cells(store, dims, k_start, k_end, now):
        buckets.setdefault((k - k_start) // step, []).append(cell)
    for j in sorted(buckets, reverse=descending):
        value = statistic(metric, stat, buckets[j])
        if value is not None:
            result["values"].append(value)
            result["timestamps"].append(datetime.fromtimestamp(alb_traffic.minute_wall(k_start + j * step), timezone.utc))
    return result


_original_get_metric_data = CloudWatchBackend.get_metric_data


def get_metric_data(self: CloudWatchBackend, queries, start_time, end_time, scan_by="TimestampAscending"):
    ours = [q for q in queries if q.get("MetricStat", {}).get("Metric", {}).get("Namespace") == NAMESPACE]
    if not ours:
        return _original_get_metric_data(self, queries, start_time, end_time, scan_by)
    start, end = _epoch(start_time), _epoch(end_time)
    if start >= end:
        raise validation_error("The parameter EndTime must be greater than StartTime.")
    # Only the minutes asked for are drawn (each is drawn on its own: see alb_traffic.publish).
    alb_traffic.publish(self.account_id, self.region_name, *_minutes(start, end))
    store, now = self.__dict__.get("_la_alb_series", {}), clock.now()
    results = {}
    for n, q in enumerate(queries, 1):
        if q in ours:
            results[q["Id"]] = _query(store, dict(q, _n=n), start, end, now, scan_by == "TimestampDescending")
    others = [dict(q, ReturnData=True) for q in queries if "MetricStat" in q and q not in ours]
    if others:
        for r in _original_get_metric_data(self, others, start_time, end_time, scan_by):
            results[r["id"]] = r
    answer = []
    for q in queries:
        if "Expression" in q and q["Id"] not in results:
            values, timestamps = parse_expression(q["Expression"], list(results.values()))
            results[q["Id"]] = {"id": q["Id"], "label": q.get("Label") or q["Id"], "values": values,
                                "timestamps": timestamps, "status_code": "Complete"}
        if q.get("ReturnData", True) and q["Id"] in results:
            answer.append(results[q["Id"]])
    return answer


def _identities(backend: CloudWatchBackend) -> list[MetricDatum]:
    """One metric per name and dimension set that has published data (for ListMetrics)."""
    alb_traffic.publish(backend.account_id, backend.region_name)
    now, seen = clock.now(), {}
    for (lb, tg), kept in backend.__dict__.get("_la_alb_series", {}).items():
        for rec in kept:
            if rec.visible_at > now:
                break
            for zone, cell in rec.cells.items():
                names = ["RequestCount", "TargetResponseTime"] + (["HTTPCode_Target_5XX_Count"] if cell.errors else []) \
                    + (["HTTPCode_Target_2XX_Count"] if cell.count > cell.errors else [])
                for name in names:
                    for dims in ((("LoadBalancer", lb),), (("LoadBalancer", lb), ("AvailabilityZone", zone)),
                                 (("LoadBalancer", lb), ("TargetGroup", tg)),
                                 (("LoadBalancer", lb), ("TargetGroup", tg), ("AvailabilityZone", zone))):
                        seen.setdefault((name, dims), None)
    return [MetricDatum(NAMESPACE, name, 0.0, [{"Name": k, "Value": v} for k, v in dims], None, UNITS[name])
            for name, dims in seen]


_original_filtered = CloudWatchBackend.get_filtered_metrics


def get_filtered_metrics(self: CloudWatchBackend, metric_name, namespace, dimensions):
    found = _original_filtered(self, metric_name, namespace, dimensions)
    for md in _identities(self):
        if md.filter(namespace=namespace, name=metric_name, dimensions=dimensions, already_present_metrics=found):
            found.append(md)
    return found


def install() -> None:
    CloudWatchBackend.get_metric_data = get_metric_data
    CloudWatchBackend.get_filtered_metrics = get_filtered_metrics

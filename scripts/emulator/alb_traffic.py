"""The traffic an Application Load Balancer sends to each target group, drawn per minute of emulated
time from the instances that serve it, and kept as the per-minute records CloudWatch publishes
(alb_metrics.py answers GetMetricData from them).

Follows the Elastic Load Balancing User Guide for Application Load Balancers — "CloudWatch metrics for
your Application Load Balancer" (metrics are sent "in 60-second intervals" and only "when requests are
flowing"; they exclude health checks; RequestCount counts "requests where the load balancer node was
able to choose a target"), "Health checks for Application Load Balancer target groups" (requests go to
healthy targets; "If a target group contains only unhealthy registered targets, the load balancer
routes requests to all those targets") and "Deregistration delay" (no new requests to draining targets).

Each tick samples, per target group behind an Application Load Balancer, which of its targets can take
requests (with each one's Availability Zone, error rate and latency) and the group's rate. When a minute
has passed and someone reads its metrics (publish, called by GetMetricData for the minutes it asks and
by ListMetrics), its requests are drawn: arrivals of a Poisson process at the group's rate, each sent to a target chosen
evenly among those serving at that moment, failing (5XX) with the target image's error rate, taking a
TargetResponseTime drawn from a lognormal whose mean is the image's latency. The draw is seeded by
(LOCAL_AWS_METRICS_SEED, target group name, minute number since the group first served), so it never
depends on how often anyone asks. Tags (see README):

* `local-aws:requests-per-minute` on the target group (default 600);
* `local-aws:error-rate` (0-1, default 0.002) and `local-aws:latency` (seconds, default 0.05) on the AMI.

Time: a minute is 60 AWS seconds (60 × LOCAL_AWS_TIME_SCALE real seconds); minute k starts at wall-clock
time k × 60 × scale seconds after the Unix epoch (whole UTC minutes at scale 1), which is its datapoints'
timestamp. Its records become visible LOCAL_AWS_METRICS_DELAY_SECONDS (AWS seconds, default 60) after it
ends, and are kept for RETENTION_MINUTES.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import random
import time
from array import array
from dataclasses import dataclass, field

from moto.cloudwatch.models import cloudwatch_backends
from moto.ec2.models import ec2_backends
from moto.elbv2.models import elbv2_backends

from . import clock, image_access, target_health

log = logging.getLogger("local-aws")

RPM_TAG, ERROR_TAG, LATENCY_TAG = "local-aws:requests-per-minute", "local-aws:error-rate", "local-aws:latency"
DEFAULT_RPM, DEFAULT_ERROR_RATE, DEFAULT_LATENCY = 600.0, 0.002, 0.05
LATENCY_SIGMA = 0.5  # lognormal shape: p50 ≈ 0.88 × mean, p99 ≈ 2.8 × mean
DELAY_SECONDS = clock.env_seconds("LOCAL_AWS_METRICS_DELAY_SECONDS", 60)
SEED = os.environ.get("LOCAL_AWS_METRICS_SEED", "0")
RETENTION_MINUTES = 24 * 60
MAX_RPM = 100_000.0  # every request is drawn: the cost grows with the rate
BIN_BASE = 1.01  # response times are kept in 1 % (relative) bins for percentiles; sums, min and max are exact

MINUTE = 60.0 * clock.SCALE  # real seconds of one minute of AWS time
_WALL0, _MONO0 = time.time(), time.monotonic()


def minute_of(mono: float) -> int:
    """Index of the minute of AWS time running at real monotonic time `mono`."""
    return math.floor((_WALL0 + mono - _MONO0) / MINUTE)


def minute_start(k: int) -> float:
    """Real monotonic time at which minute k starts."""
    return k * MINUTE - _WALL0 + _MONO0


def minute_wall(k: int) -> float:
    """Wall-clock (Unix) time at which minute k starts: its datapoints' timestamp."""
    return k * MINUTE


@dataclass
class Cell:
    """One minute of one target group in one Availability Zone."""

    count: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    latency_min: float = math.inf
    latency_max: float = 0.0
    bins: dict = field(default_factory=dict)  # while drawing; frozen into the arrays below

    def add(self, error: bool, latency: float) -> None:
        self.count += 1
        self.errors += error
        self.latency_sum += latency
        self.latency_min = min(self.latency_min, latency)
        self.latency_max = max(self.latency_max, latency)
        b = round(math.log(latency, BIN_BASE))
        self.bins[b] = self.bins.get(b, 0) + 1

    def freeze(self) -> None:
        keys = sorted(self.bins)
        self.bin_keys = array("i", keys)
        self.bin_counts = array("I", (self.bins[k] for k in keys))
        del self.bins


@dataclass
class Record:
    """What CloudWatch holds for one target group (behind one load balancer) for one minute."""

    k: int
    visible_at: float  # real monotonic time the datapoints are published
    cells: dict  # Availability Zone → Cell


def series(account_id: str, region: str) -> dict[tuple[str, str], list[Record]]:
    """The region's records per (LoadBalancer, TargetGroup) dimension values (`app/<name>/<id>`,
    `targetgroup/<name>/<id>`), each list in minute order, those not yet visible included."""
    return cloudwatch_backends[account_id][region].__dict__.setdefault("_la_alb_series", {})


def dimension(arn: str) -> str:
    """The dimension value: the final portion of the ARN (app/<name>/<id>, targetgroup/<name>/<id>)."""
    return arn.split(":", 5)[5].removeprefix("loadbalancer/")


def _number(tags: dict, key: str, default: float, low: float, high: float, where: str) -> float:
    raw = tags.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
        if low <= value <= high:
            return value
    except ValueError:
        pass
    if (where, key, raw) not in _warned:  # read every tick: say it once
        _warned.add((where, key, raw))
        log.warning("ignoring %s=%r on %s (must be a number from %s to %s); using %s", key, raw, where, low, high, default)
    return default


_warned: set = set()


def _image(ec2, image_id: str) -> tuple[float, float]:
    tags = image_access.rule_tags(ec2, image_id)  # a shared image behaves as its owner tagged it
    return (_number(tags, ERROR_TAG, DEFAULT_ERROR_RATE, 0.0, 1.0, image_id),
            _number(tags, LATENCY_TAG, DEFAULT_LATENCY, 1e-6, 3600.0, image_id))


def _serving(tg, ec2) -> tuple:
    """(instance id, zone, error rate, latency) of each target the load balancer sends requests to now."""
    by_state: dict[str, list] = {}
    for tid in list(target_health.recs(tg)):
        state = target_health.status(tg, tid)[0]
        rec = target_health.recs(tg).get(tid)
        if rec is None or rec.instance is None:
            continue  # IP and Lambda targets have no application model here
        by_state.setdefault(state, []).append(rec.instance)
    chosen = by_state.get("healthy") or by_state.get("unavailable") or by_state.get("unhealthy") or []
    return tuple((i.id, getattr(i.placement, "zone", None) or "unknown", *_image(ec2, i.image_id)) for i in chosen)


class Track:
    """Per target group: its names, the serving samples of the retention window, the minutes drawn."""

    def __init__(self, k: int, tg_name: str, tg_dim: str):
        self.first_k = k
        self.tg_name, self.tg_dim = tg_name, tg_dim
        self.lb_dim: str | None = None  # the Application Load Balancer's dimension value, once seen
        self.deleted_at: float | None = None  # real monotonic time the target group was found deleted
        # (real monotonic time, serving or None, requests per minute), a sample when either changed
        self.samples: list[tuple[float, tuple | None, float]] = []
        self.drawn: set[int] = set()

    def sample(self, now: float, serving, rpm: float) -> None:
        if not self.samples or self.samples[-1][1:] != (serving, rpm):
            self.samples.append((now, serving, rpm))

    def index_at(self, t: float) -> int:
        """Index of the sample in effect at `t` (-1: none yet)."""
        return bisect.bisect_right(self.samples, t, key=lambda s: s[0]) - 1

    def serving_at(self, t: float, start: int = 0) -> tuple[int, tuple | None]:
        i = start
        while i + 1 < len(self.samples) and self.samples[i + 1][0] <= t:
            i += 1
        if not self.samples or self.samples[i][0] > t:
            return i, None
        return i, self.samples[i][1]

    def rate_at(self, t: float) -> float:
        """Requests per minute in effect at `t`."""
        i = self.index_at(t)
        return self.samples[i][2] if i >= 0 else 0.0

    def forget(self, k: int) -> None:
        """Drops the samples only minutes before k (out of the retention) needed."""
        del self.samples[:max(0, self.index_at(minute_start(k)))]


def draw_minute(track: Track, k: int, rate_per_minute: float) -> dict:
    """The requests of minute k: Availability Zone → Cell (zones without requests left out)."""
    cells: dict[str, Cell] = {}
    if rate_per_minute <= 0:
        return cells
    rng = random.Random(f"{SEED}|{track.tg_name}|{k - track.first_k}")
    start, t = minute_start(k), 0.0
    i = max(0, track.index_at(start))
    mu_shift = LATENCY_SIGMA ** 2 / 2
    while True:
        # Every arrival draws the same four numbers whoever serves it, so the n-th request of a minute is
        # the same request in every run; only which target (if any) takes it depends on the fleet.
        t += rng.expovariate(rate_per_minute / 60.0)  # AWS seconds into the minute
        pick, fail, z = rng.random(), rng.random(), rng.gauss(0.0, 1.0)
        if t >= 60.0:
            break
        i, serving = track.serving_at(start + t * clock.SCALE, i)
        if not serving:
            continue  # no target to choose: not a request RequestCount counts
        _, zone, error_rate, latency = serving[int(pick * len(serving))]
        cell = cells.get(zone) or cells.setdefault(zone, Cell())
        cell.add(fail < error_rate, math.exp(math.log(latency) - mu_shift + LATENCY_SIGMA * z))
    for cell in cells.values():
        cell.freeze()
    return cells


def _application_lb(backend, tg):
    for arn in tg.load_balancer_arns:
        lb = backend.load_balancers.get(arn)
        if lb is not None and lb.type == "application":
            return lb  # a target group serves one load balancer; the first one is taken
    return None


def _tracks(backend) -> dict[str, Track]:
    """The region's tracks by target group ARN (a deleted group's stays while its minutes are retained)."""
    return backend.__dict__.setdefault("_la_traffic_tracks", {})


def advance_traffic() -> None:
    """The tick: samples who serves each target group (and its rate). Drawing waits for a reader
    (publish): a minute's draw depends only on these samples and the seed, so drawing it when someone
    asks for it gives the records a draw at the minute's end would, and a server nobody asks for metrics
    (most of them, at a small time scale a hundred minutes a real second) draws nothing."""
    now = clock.now()
    oldest = minute_of(now) - RETENTION_MINUTES
    for backend in clock.backends(elbv2_backends):
        ec2 = ec2_backends[backend.account_id][backend.region_name]
        tracks = _tracks(backend)
        for tg in list(backend.target_groups.values()):
            lb = _application_lb(backend, tg)
            track = tracks.get(tg.arn)
            if track is None:
                if lb is None:
                    continue  # never behind an Application Load Balancer: nothing to publish
                track = tracks[tg.arn] = Track(minute_of(now), tg.name, dimension(tg.arn))
            if lb is not None:
                track.lb_dim = dimension(lb.arn)
            tags = backend.tagging_service.get_tag_dict_for_resource(tg.arn)
            rpm = _number(tags, RPM_TAG, DEFAULT_RPM, 0.0, MAX_RPM, tg.name)
            track.sample(now, _serving(tg, ec2) if lb is not None else None, rpm)
        for arn, track in list(tracks.items()):
            if arn not in backend.target_groups and track.deleted_at is None:
                track.deleted_at = now
                track.sample(now, None, 0.0)  # deleted: no more requests
            track.forget(oldest)
            if track.deleted_at is not None and minute_of(track.deleted_at) < oldest:
                del tracks[arn]  # every minute it served is out of the retention


def publish(account_id: str, region: str, k_lo: int | None = None, k_hi: int | None = None) -> None:
    """Draws the minutes in [k_lo, k_hi) (default: all) that have ended and are not drawn yet into the
    region's CloudWatch records: called by whoever reads them (GetMetricData for the minutes it asks,
    ListMetrics), under the lock, after the request's advance (so the samples reach now)."""
    k_now = minute_of(clock.now())
    oldest = k_now - RETENTION_MINUTES
    for backend in clock.backends(elbv2_backends):
        if (backend.account_id, backend.region_name) != (account_id, region):
            continue
        for track in list(_tracks(backend).values()):
            lo = max(track.first_k, oldest) if k_lo is None else max(track.first_k, oldest, k_lo)
            hi = k_now if k_hi is None else min(k_now, k_hi)
            track.drawn = {m for m in track.drawn if m >= oldest}  # the rest is out of the retention
            for k in range(lo, hi):
                if k in track.drawn:
                    continue
                track.drawn.add(k)
                cells = draw_minute(track, k, track.rate_at(minute_start(k + 1)))
                if cells and track.lb_dim is not None:
                    kept = series(account_id, region).setdefault((track.lb_dim, track.tg_dim), [])
                    bisect.insort(kept, Record(k, minute_start(k + 1) + clock.real_seconds(DELAY_SECONDS), cells),
                                  key=lambda r: r.k)
                    cut = 0
                    while kept[cut].k < oldest:
                        cut += 1
                    del kept[:cut]

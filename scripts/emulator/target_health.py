"""Target health that follows the application on each target, and deregistration with draining.

Follows the Elastic Load Balancing User Guide for Application Load Balancers — "Health checks for
Application Load Balancer target groups" (health check interval, HealthyThresholdCount consecutive
successes to become healthy, UnhealthyThresholdCount consecutive failures to become unhealthy, the
target states initial/healthy/unhealthy/unused/draining/unavailable and their reason codes) and
"Deregistration delay" (a deregistered target is `draining` for deregistration_delay.timeout_seconds,
default 300, then it is gone).

moto reports every registered target `healthy` at once. Here each registered target is checked every
HealthCheckIntervalSeconds (scaled) from the moment its instance is `running`; a check succeeds
unless the application is broken, which a test controls with the tag `local-aws:health=unhealthy` on
the instance's AMI (every instance launched from it is broken) or on the instance itself (breaks a
running instance from the moment the tag is set; removing the tag heals it), or with
`local-aws:health:<target-group-name>=unhealthy` on the AMI (its instances fail that target group's
checks only). The state is computed from those timestamps, never from how often anyone asks.
"""

from __future__ import annotations

import math

from moto.ec2.models import ec2_backends
from moto.elbv2.exceptions import InvalidTargetError, TargetNotRunning, TargetGroupNotFoundError
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

from . import clock, image_access
from .ec2_lifecycle import HEALTH_TAG, instance_broken_at


class Rec:
    """One registration of one target in one target group."""

    __slots__ = ("id", "port", "instance", "registered_at", "drain_until", "base", "checks", "state", "ok", "fail")

    def __init__(self, target_id: str, port, instance):
        self.id = target_id
        self.port = port
        self.instance = instance  # looked up once: moto's lookup walks every reservation
        self.registered_at = clock.now()
        self.drain_until: float | None = None  # set when deregistered
        self._reset()

    def _reset(self) -> None:
        self.base: float | None = None  # real time health checks are counted from
        self.checks = 0
        self.state = "initial"
        self.ok = 0
        self.fail = 0


def recs(tg: FakeTargetGroup) -> dict[str, Rec]:
    return tg.__dict__.setdefault("_la_recs", {})


def _ec2(tg: FakeTargetGroup):
    return ec2_backends[tg.account_id][tg.region_name]


def _instance(tg: FakeTargetGroup, target_id: str):
    if not target_id.startswith("i-"):
        return None
    return _ec2(tg).get_instance_by_id(target_id)


def drain_seconds(tg: FakeTargetGroup) -> float:
    try:
        return float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0


def ami_broken(backend, image_id: str, target_group: str) -> bool:
    """The image is broken for every target group (`local-aws:health`) or for this one only
    (`local-aws:health:<target-group-name>`)."""
    # moto's TagBackend keeps {resource id: {key: value}}; get_tags() would build regexes per call. A
    # shared image's rules are its owner's tags (image_access.rule_tags).
    tags = image_access.rule_tags(backend, image_id)
    return tags.get(HEALTH_TAG) == "unhealthy" or tags.get(f"{HEALTH_TAG}:{target_group}") == "unhealthy"


def _register(self: FakeTargetGroup, targets) -> None:
    for target in targets:
        tid = target["Id"]
        instance = _instance(self, tid)
        if instance is not None and instance.state not in ("pending", "running"):
            raise TargetNotRunning(instance_id=tid)
        rec = recs(self).get(tid)
        port = target.get("Port", self.port)
        if rec is not None and rec.drain_until is None:
            continue  # registering a registered target changes nothing (AWS is idempotent)
        recs(self)[tid] = Rec(tid, port, instance)
        self.targets[tid] = {"Id": tid, "Port": port}
        self.deregistered_targets.pop(tid, None)


def begin_drain(tg: FakeTargetGroup, tid: str) -> None:
    rec = recs(tg).get(tid)
    if rec is None or rec.drain_until is not None:
        return
    rec.drain_until = clock.deadline(drain_seconds(tg))
    t = tg.targets.pop(tid, None)
    if t:
        tg.deregistered_targets[tid] = t


def _deregister(self: FakeTargetGroup, targets) -> None:
    for target in targets:
        rec = recs(self).get(target["Id"])
        if rec is None or rec.drain_until is not None:
            raise InvalidTargetError()
        begin_drain(self, target["Id"])


def _deregister_terminated(self: FakeTargetGroup, instance_ids) -> None:
    for tid in list(recs(self)):
        if tid in instance_ids:
            begin_drain(self, tid)


def _evaluate(tg: FakeTargetGroup, rec: Rec, instance) -> None:
    """Run, in order, every health check that is due by now and has not been counted yet."""
    if instance is None:  # IP / Lambda targets have no application model: they pass
        if rec.state == "initial":
            rec.state = "healthy"
        return
    running_since = getattr(instance, "_la_running_since", None)
    if instance.state != "running" or running_since is None:
        rec._reset()
        return
    if rec.base is None:
        rec.base = max(rec.registered_at, running_since)
    interval = clock.real_seconds(float(tg.health_check_interval_seconds or 30))
    healthy_n = int(tg.healthy_threshold_count or 5)
    unhealthy_n = int(tg.unhealthy_threshold_count or 2)
    due = int(math.floor((clock.now() - rec.base) / interval)) if interval > 0 else rec.checks + 1
    if due - rec.checks > 1000:  # a long-idle server: older checks cannot change today's answer
        rec.checks = due - 1000
    backend = _ec2(tg)
    image_broken = ami_broken(backend, instance.image_id, tg.name)
    for k in range(rec.checks + 1, due + 1):
        at = rec.base + k * interval
        ok = not (image_broken or instance_broken_at(backend, instance, at))
        if ok:
            rec.ok, rec.fail = rec.ok + 1, 0
            if rec.state != "healthy" and rec.ok >= healthy_n:
                rec.state = "healthy"
        else:
            rec.ok, rec.fail = 0, rec.fail + 1
            if rec.state != "unhealthy" and rec.fail >= unhealthy_n:
                rec.state = "unhealthy"
    rec.checks = max(rec.checks, due)


def status(tg: FakeTargetGroup, tid: str) -> tuple[str, str | None, str | None]:
    """(State, Reason, Description) of target `tid` now, as DescribeTargetHealth reports it."""
    rec = recs(tg).get(tid)
    now = clock.now()
    if rec is not None and rec.drain_until is not None and rec.drain_until <= now:
        del recs(tg)[tid]
        tg.deregistered_targets.pop(tid, None)
        rec = None
    if rec is None:
        return "unused", "Target.NotRegistered", "Target is not registered to the target group"
    if rec.drain_until is not None:
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    instance = rec.instance
    if instance is not None and instance.state in ("shutting-down", "terminated"):
        begin_drain(tg, tid)  # AWS deregisters terminated instances itself
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    if not tg.load_balancer_arns:
        return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
    if instance is not None and instance.state in ("stopping", "stopped"):
        rec._reset()
        return "unused", "Target.InvalidState", "Target is in the stopped state"
    if not tg.health_check_enabled:
        return "unavailable", "Target.HealthCheckDisabled", "Health checks are disabled"
    _evaluate(tg, rec, instance)
    if rec.state == "healthy":
        return "healthy", None, None
    if rec.state == "unhealthy":
        return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
    if rec.checks == 0:
        return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
    return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"


def _health_for(self: FakeTargetGroup, target, ec2_backend) -> FakeHealthStatus:
    tid = target["Id"]
    rec = recs(self).get(tid)
    port = target.get("Port") or (rec.port if rec else self.port)
    state, reason, description = status(self, tid)
    return FakeHealthStatus(tid, port, self.health_check_port, state, reason, description)


def _describe_target_health(self: ELBv2Backend, target_group_arn: str, targets):
    tg = self.target_groups.get(target_group_arn)
    if tg is None:
        raise TargetGroupNotFoundError()
    if not targets:
        for tid in list(recs(tg)):
            status(tg, tid)  # drops targets whose draining has finished
        targets = [{"Id": r.id, "Port": r.port} for r in recs(tg).values()]
    return [tg.health_for(t, self.ec2_backend) for t in targets]


# --- which load balancers use a target group (TargetGroup.LoadBalancerArns, Target.NotInUse) -------

def _forwarded(actions) -> list[str]:
    arns = []
    for action in actions or []:
        if action.type == "forward":
            data = action.data
            arns += [data["TargetGroupArn"]] if "TargetGroupArn" in data else [
                tg["TargetGroupArn"] for tg in data.get("ForwardConfig", {}).get("TargetGroups", [])]
    return arns


def sync_load_balancer_arns(backend: ELBv2Backend) -> None:
    """Each target group's LoadBalancerArns, derived from the listeners and rules that forward to it: once
    per load balancer (moto appended one per listener or rule, and never updated them on ModifyListener,
    ModifyRule or deletions)."""
    using: dict[str, list[str]] = {arn: [] for arn in backend.target_groups}
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            for rule in listener.rules.values():
                for tg_arn in _forwarded(rule.actions):
                    if tg_arn in using and lb.arn not in using[tg_arn]:
                        using[tg_arn].append(lb.arn)
    for arn, tg in backend.target_groups.items():
        tg.load_balancer_arns = using[arn]


def _then_sync(method):
    def wrapped(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        sync_load_balancer_arns(self)
        return result
    return wrapped


def install() -> None:
    for name in ("create_listener", "modify_listener", "delete_listener", "create_rule", "modify_rule",
                 "delete_rule", "delete_load_balancer"):
        setattr(ELBv2Backend, name, _then_sync(getattr(ELBv2Backend, name)))
    FakeTargetGroup.register = _register
    FakeTargetGroup.deregister = _deregister
    FakeTargetGroup.deregister_terminated_instances = _deregister_terminated
    FakeTargetGroup.health_for = _health_for
    ELBv2Backend.describe_target_health = _describe_target_health

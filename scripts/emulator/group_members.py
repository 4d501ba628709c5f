"""Who is a member of an Auto Scaling group, and which target groups know it: the lifecycle states
that count as capacity, the list of warm pool instances, registration of members in the group's
target groups, deregistration (with draining) of instances that leave, and a member's health as the
load balancer sees it.

Follows the Amazon EC2 Auto Scaling User Guide — "Amazon EC2 Auto Scaling instance lifecycle" (an
instance is registered with the group's target groups before it is InService, and deregistered,
with the target group's deregistration delay, before it is terminated) and "Use Elastic Load
Balancing health checks" (with HealthCheckType ELB an instance is unhealthy when the load balancer
reports it so in any of the group's target groups).
"""

from __future__ import annotations

from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState
from moto.elbv2.models import elbv2_backends

from . import target_health as th
from .errors import validation_error

# Lifecycle states that count towards the group's capacity (and that a scale-in may pick).
LIVE = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
# Members in these states are registered in the group's target groups. Pending:Wait is not: a
# launch lifecycle hook holds the instance back until its action is completed.
REGISTERED = ("Pending", "Pending:Proceed", "InService")


def requested_group(response) -> FakeAutoScalingGroup:
    """The group a request's AutoScalingGroupName names; ValidationError as AWS answers when there is none."""
    name = response._get_param("AutoScalingGroupName")
    group = response.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise validation_error(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def live_states(group: FakeAutoScalingGroup) -> list[InstanceState]:
    return [s for s in group.instance_states if s.lifecycle_state in LIVE]


def warm_states(group: FakeAutoScalingGroup) -> list[InstanceState]:
    """The group's warm pool instances (warm_pool.py keeps them; they are not members of the
    group's capacity and are never registered in its target groups)."""
    return group.__dict__.setdefault("_la_warm", [])


def _elbv2(group: FakeAutoScalingGroup):
    return elbv2_backends[group.account_id][group.region]


def reconcile(group: FakeAutoScalingGroup) -> None:
    """Register members in every target group of the group; deregister (drain) what the group
    registered earlier and that is no longer a member."""
    registered: dict[str, set] = group.__dict__.setdefault("_la_registered", {})
    members = {s.instance.id for s in group.instance_states
               if s.lifecycle_state in REGISTERED and s.instance.state in ("pending", "running")
               and not getattr(s.instance, "_la_no_lb", False)}
    elbv2 = _elbv2(group)
    for arn in list(group.target_group_arns):
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        ids = registered.setdefault(arn, set())
        add = members - ids
        if add:
            tg.register([{"Id": i, "Port": tg.port} for i in sorted(add)])
            ids |= add
    for arn, ids in registered.items():
        tg = elbv2.target_groups.get(arn)
        leaving = ids - members if arn in group.target_group_arns else set(ids)
        for i in leaving:
            if tg is not None:
                th.begin_drain(tg, i)
            ids.discard(i)


def deregister(group: FakeAutoScalingGroup, instance_id: str) -> float:
    """Deregister a leaving instance from the group's target groups; the AWS seconds it drains."""
    drain = 0.0
    elbv2 = _elbv2(group)
    for arn, ids in getattr(group, "_la_registered", {}).items():
        tg = elbv2.target_groups.get(arn)
        if tg is not None and instance_id in ids:
            th.begin_drain(tg, instance_id)
            drain = max(drain, th.drain_seconds(tg))
        ids.discard(instance_id)
    return drain


def target_states(group: FakeAutoScalingGroup, instance_id: str) -> list[str]:
    """The instance's target state in each of the group's target groups."""
    elbv2 = _elbv2(group)
    out = []
    for arn in group.target_group_arns:
        tg = elbv2.target_groups.get(arn)
        if tg is not None:
            out.append(th.status(tg, instance_id)[0])
    return out


def elb_unhealthy(group: FakeAutoScalingGroup, instance_id: str) -> bool:
    return "unhealthy" in target_states(group, instance_id)

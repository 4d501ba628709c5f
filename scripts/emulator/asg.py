"""Auto Scaling group behaviour moto lacks: instances that go Pending → InService → Terminating with
connection draining, launches balanced across the group's subnets, target-group registration that
follows group membership, ELB health-check replacement, and the per-instance launch template.

Follows the Amazon EC2 Auto Scaling User Guide — "Amazon EC2 Auto Scaling instance lifecycle"
(Pending, InService, Terminating; an instance is registered with the group's target groups before it
is InService and deregistered, with the target group's deregistration delay, before it is
terminated), "Health checks for instances in an Auto Scaling group" and "Set the health check grace
period" (with HealthCheckType ELB, an InService instance whose target is unhealthy after the grace
period is marked Unhealthy and replaced), "Balance across Availability Zones" and "Configure
termination policies" (default policy: scale in from the AZ with most instances, prefer instances
from an older configuration).

moto launches every instance into the first subnet, never deregisters instances that leave, does not
register the replacements of EC2-terminated members, never looks at target health, and reports the
group's current template version for every instance. All of that is fixed here.
"""

from __future__ import annotations

from moto.autoscaling.models import (
    ASG_NAME_TAG,
    AutoScalingBackend,
    FakeAutoScalingGroup,
    InstanceState,
    TerminateInstanceActivity,
    autoscaling_backends,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.elbv2.models import elbv2_backends

from . import clock
from . import target_health as th

LIVE = ("Pending", "InService")


def live_states(group: FakeAutoScalingGroup) -> list[InstanceState]:
    return [s for s in group.instance_states if s.lifecycle_state in LIVE]


def launch_spec(group: FakeAutoScalingGroup):
    """(template, version string) new instances of the group launch from: an active instance
    refresh's desired configuration wins ("Desired configuration" in the instance refresh guide)."""
    override = getattr(group, "_la_launch_override", None)
    if override:
        return override
    return group.ec2_launch_template, group.launch_template_version


def _pick_subnet(group: FakeAutoScalingGroup) -> tuple[str | None, str]:
    counts: dict[str, int] = {}
    for s in live_states(group):
        counts[s.instance.placement.zone] = counts.get(s.instance.placement.zone, 0) + 1
    if group.vpc_zone_identifier:
        ids = [x.strip() for x in group.vpc_zone_identifier.split(",") if x.strip()]
        subnets = group.ec2_backend.describe_subnets(subnet_ids=ids)
        by_id = {s.id: s for s in subnets}
        ordered = [by_id[i] for i in ids if i in by_id]
        best = min(ordered, key=lambda s: counts.get(s.availability_zone, 0))
        return best.id, best.availability_zone
    zones = list(group.availability_zones)
    return None, min(zones, key=lambda z: counts.get(z, 0))


def launch(group: FakeAutoScalingGroup, count: int) -> list[InstanceState]:
    template, version_ref = launch_spec(group)
    if template is None:  # launch configurations: keep moto's own launch path
        _orig_replace(group, count, group.get_propagated_tags())
        return []
    version = template.get_version(version_ref)
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    tags.update(version.instance_tags)
    new_states = []
    for _ in range(count):
        subnet_id, zone = _pick_subnet(group)
        reservation = group.ec2_backend.run_instances(
            version.image_id,
            1,
            version.user_data,
            version.security_groups,
            instance_type=version.instance_type or "m1.small",
            tags={"instance": dict(tags)},
            placement=zone,
            launch_config=None,
            launch_template={"LaunchTemplateId": template.id, "Version": str(version.number)},
            is_instance_type_default=False,
            associate_public_ip=None,
            subnet_id=subnet_id,
        )
        for instance in reservation.instances:
            instance.autoscaling_group = group
            instance._la_lt = {
                "LaunchTemplateId": template.id,
                "LaunchTemplateName": template.name,
                "Version": str(version_ref),
            }
            instance._la_lt_key = (template.id, version.number)
            state = InstanceState(
                instance,
                lifecycle_state="Pending",
                protected_from_scale_in=group.new_instances_protected_from_scale_in,
                autoscaling_group=group,
            )
            group.instance_states.append(state)
            new_states.append(state)
    reconcile(group)
    return new_states


def _replace(self: FakeAutoScalingGroup, count_needed: int, propagated_tags) -> None:
    launch(self, count_needed)


def begin_termination(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    """Terminating: deregister from the target groups, wait out the deregistration delay, then
    terminate the EC2 instance (EC2 Auto Scaling instance lifecycle)."""
    if state.lifecycle_state in ("Terminating", "Terminated"):
        return
    state.lifecycle_state = "Terminating"
    drain = 0.0
    elbv2 = elbv2_backends[group.account_id][group.region]
    for arn in list(getattr(group, "_la_registered", {})):
        tg = elbv2.target_groups.get(arn)
        ids = group._la_registered[arn]
        if tg is not None and state.instance.id in ids:
            th.begin_drain(tg, state.instance.id)
            drain = max(drain, th.drain_seconds(tg))
        ids.discard(state.instance.id)
    state._la_terminate_at = clock.deadline(drain)


def _choose_for_scale_in(group: FakeAutoScalingGroup, n: int) -> list[InstanceState]:
    chosen: list[InstanceState] = []
    candidates = [s for s in live_states(group) if not s.protected_from_scale_in]
    current = launch_spec(group)
    current_key = None
    if current[0] is not None:
        current_key = (current[0].id, current[0].get_version(current[1]).number)
    for _ in range(n):
        if not candidates:
            break
        zones: dict[str, int] = {}
        for s in live_states(group):
            if s not in chosen:
                zones[s.availability_zone] = zones.get(s.availability_zone, 0) + 1
        busiest = max(zones.values()) if zones else 0
        pool = [s for s in candidates if zones.get(s.availability_zone, 0) == busiest] or candidates
        pool.sort(key=lambda s: (getattr(s.instance, "_la_lt_key", None) == current_key, s.instance.launch_time))
        pick = pool[0]
        chosen.append(pick)
        candidates.remove(pick)
    return chosen


def _set_desired_capacity(self: FakeAutoScalingGroup, new_capacity) -> None:
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    delta = (self.desired_capacity or 0) - len(live_states(self))
    if delta > 0:
        launch(self, delta)
    elif delta < 0:
        for state in _choose_for_scale_in(self, -delta):
            begin_termination(self, state)
    reconcile(self)


def reconcile(group: FakeAutoScalingGroup) -> None:
    """Register Pending/InService members in every target group of the group; deregister (drain)
    what the group registered earlier and that is no longer a member."""
    registered: dict[str, set] = group.__dict__.setdefault("_la_registered", {})
    members = {s.instance.id for s in live_states(group) if s.instance.state in ("pending", "running")}
    elbv2 = elbv2_backends[group.account_id][group.region]
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


def elb_unhealthy(group: FakeAutoScalingGroup, instance_id: str) -> bool:
    elbv2 = elbv2_backends[group.account_id][group.region]
    for arn in group.target_group_arns:
        tg = elbv2.target_groups.get(arn)
        if tg is not None and th.status(tg, instance_id)[0] == "unhealthy":
            return True
    return False


def _tick_group(group: FakeAutoScalingGroup) -> None:
    now = clock.now()
    suspended = {p["ProcessName"] for p in group.suspended_processes}
    for state in list(group.instance_states):
        inst = state.instance
        if state.lifecycle_state == "Pending" and inst.state == "running":
            state.lifecycle_state = "InService"
            state._la_in_service_at = now
        if state.lifecycle_state == "Terminating" and getattr(state, "_la_terminate_at", 0) <= now:
            if inst.state not in ("shutting-down", "terminated"):
                group.ec2_backend.terminate_instances([inst.id])
            group.instance_states.remove(state)
            continue
        if state.lifecycle_state not in LIVE or "ReplaceUnhealthy" in suspended:
            continue
        unhealthy = inst.state in ("stopping", "stopped", "shutting-down", "terminated")
        grace_over = state.lifecycle_state == "InService" and (
            clock.aws_elapsed(getattr(state, "_la_in_service_at", now)) >= (group.health_check_grace_period or 0)
        )
        if not unhealthy and grace_over and "ELB" in (group.health_check_type or "") and "HealthCheck" not in suspended:
            unhealthy = elb_unhealthy(group, inst.id)
        if unhealthy:
            state.health_status = "Unhealthy"
            inst._la_replaced_unhealthy = True
            begin_termination(group, state)
    # Keep the desired capacity: replace members that were terminated (health check replacement,
    # EC2 TerminateInstances). During an instance refresh the refresh itself may run above the
    # desired capacity (MaxHealthyPercentage), so only an idle group is scaled back in.
    missing = (group.desired_capacity or 0) - len(live_states(group))
    if missing > 0:
        launch(group, missing)
    elif missing < 0 and not getattr(group, "_la_refresh_active", False):
        for state in _choose_for_scale_in(group, -missing):
            begin_termination(group, state)
    reconcile(group)


def advance_groups() -> None:
    for backend in clock.backends(autoscaling_backends):
        for group in list(backend.autoscaling_groups.values()):
            _tick_group(group)


def _terminate_instance(self: AutoScalingBackend, instance_id: str, should_decrement: bool):
    for group in self.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id and state.lifecycle_state in LIVE:
                original = group.desired_capacity
                begin_termination(group, state)
                if should_decrement:
                    group.desired_capacity = (group.desired_capacity or 0) - 1
                else:
                    launch(group, 1)
                return TerminateInstanceActivity(state.instance, original)
    from moto.autoscaling.exceptions import ValidationError

    raise ValidationError("Instance Id not found - No managed instance found for instance ID: " + instance_id)


def _notify_terminate(self: AutoScalingBackend, instance_ids) -> None:
    # EC2 TerminateInstances on members: they leave at once; _tick_group launches replacements.
    for group in self.autoscaling_groups.values():
        group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
        reconcile(group)


def _delete_group(self: AutoScalingBackend, group_name: str) -> None:
    group = self.autoscaling_groups.get(group_name)
    if group is None:
        from moto.autoscaling.exceptions import ValidationError

        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    ids = [s.instance.id for s in group.instance_states if s.instance.state not in ("terminated",)]
    group.instance_states = []
    reconcile(group)
    if ids:
        self.ec2_backend.terminate_instances(ids)
    self.autoscaling_groups.pop(group_name, None)


def _update_attached_target_groups(self: AutoScalingBackend, group_name: str) -> None:
    reconcile(self.autoscaling_groups[group_name])


def _instance_launch_template(self: InstanceState):
    lt = getattr(self.instance, "_la_lt", None)
    if lt is not None:
        return dict(lt)
    return _orig_lt_property.fget(self)


def _with_group_defaults(original, creating: bool):
    """moto ignores DefaultInstanceWarmup and defaults HealthCheckGracePeriod to 300 s; the API's
    default is 0 ("Set the health check grace period": 0 when created with the CLI or an SDK)."""

    def handler(self: AutoScalingResponse):
        result = original(self)
        warmup = self._get_param("DefaultInstanceWarmup")
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None and warmup is not None:
            group.default_instance_warmup = int(warmup)
        if group is not None and creating and self._get_param("HealthCheckGracePeriod") is None:
            group.health_check_grace_period = 0
        return result

    handler.__name__ = original.__name__
    return handler


_orig_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances
_orig_lt_property = InstanceState.launch_template


def install() -> None:
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace
    FakeAutoScalingGroup.set_desired_capacity = _set_desired_capacity
    AutoScalingBackend.terminate_instance = _terminate_instance
    AutoScalingBackend.notify_terminate_instances = _notify_terminate
    AutoScalingBackend.delete_auto_scaling_group = _delete_group
    AutoScalingBackend.update_attached_target_groups = _update_attached_target_groups
    InstanceState.launch_template = property(_instance_launch_template)
    AutoScalingResponse.create_auto_scaling_group = _with_group_defaults(AutoScalingResponse.create_auto_scaling_group, True)
    AutoScalingResponse.update_auto_scaling_group = _with_group_defaults(AutoScalingResponse.update_auto_scaling_group, False)

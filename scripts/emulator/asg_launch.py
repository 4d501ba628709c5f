"""What an Auto Scaling group's new instances launch from and where: the launch template version (or
an active instance refresh's desired configuration) or the launch configuration, the subnet/AZ with
the fewest members, and what DescribeAutoScalingGroups reports per instance (the LaunchTemplate or
LaunchConfigurationName it was launched from).

Follows the Amazon EC2 Auto Scaling User Guide — "Balance across Availability Zones" (launch into
the zone with the fewest instances), "Create an Auto Scaling group using a launch configuration"
(instances launch from the configuration's image, instance type, security groups, user data, key
pair), "Migrate your Auto Scaling groups to launch templates" (UpdateAutoScalingGroup switches a
group from one to the other) and "Desired configuration" in "How an instance refresh works".

moto put every instance into the first subnet, reported the group's current template version for
every instance, crashed launching a launch-configuration group with desired capacity above 0, and
kept the old configuration when a group switched between a launch configuration and a template.
"""

from __future__ import annotations

from moto.autoscaling.models import ASG_NAME_TAG, FakeAutoScalingGroup, InstanceState

from . import lifecycle_hooks
from .group_members import live_states, reconcile


def launch_spec(group: FakeAutoScalingGroup):
    """(template, version string) new instances of the group launch from: an active instance
    refresh's desired configuration wins. (None, None) for a group on a launch configuration."""
    override = getattr(group, "_la_launch_override", None)
    if override:
        return override
    if group.ec2_launch_template is None:
        return None, None
    return group.ec2_launch_template, group.launch_template_version


def current_key(group: FakeAutoScalingGroup) -> tuple | None:
    """The configuration an instance launched now would have (compared with instance._la_key)."""
    template, version_ref = launch_spec(group)
    if template is not None:
        return (template.id, template.get_version(version_ref).number)
    if group.launch_config is not None:
        return ("launch-configuration", group.launch_config.name)
    return None


def _launch_args(group: FakeAutoScalingGroup) -> tuple[dict, dict]:
    """run_instances arguments for one new instance, and the record kept on the instance (what is
    reported per instance, and its configuration key)."""
    template, version_ref = launch_spec(group)
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    if template is not None:
        version = template.get_version(version_ref)
        tags.update(version.instance_tags)
        args = dict(image_id=version.image_id, user_data=version.user_data, security_groups=version.security_groups,
                    instance_type=version.instance_type or "m1.small", launch_config=None, associate_public_ip=None,
                    launch_template={"LaunchTemplateId": template.id, "Version": str(version.number)})
        record = {"_la_lt": {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
                             "Version": str(version_ref)},
                  "_la_lc": None, "_la_key": (template.id, version.number)}
    else:
        lc = group.launch_config
        args = dict(image_id=lc.image_id, user_data=lc.user_data, security_groups=lc.security_groups,
                    instance_type=lc.instance_type, launch_config=lc, launch_template=None,
                    associate_public_ip=lc.associate_public_ip_address, key_name=lc.key_name)
        record = {"_la_lt": None, "_la_lc": lc.name, "_la_key": ("launch-configuration", lc.name)}
    args["tags"] = {"instance": tags}
    return args, record


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
    """Launch `count` instances into the group: Pending and registered in its target groups, or
    Pending:Wait when the group has launch lifecycle hooks."""
    new_states = []
    for _ in range(count):
        args, record = _launch_args(group)
        subnet_id, zone = _pick_subnet(group)
        image_id, user_data, security_groups = args.pop("image_id"), args.pop("user_data"), args.pop("security_groups")
        reservation = group.ec2_backend.run_instances(
            image_id, 1, user_data, security_groups, placement=zone, subnet_id=subnet_id,
            is_instance_type_default=False, **args)
        for instance in reservation.instances:
            instance.autoscaling_group = group
            instance.__dict__.update(record)
            state = InstanceState(
                instance,
                lifecycle_state="Pending",
                protected_from_scale_in=group.new_instances_protected_from_scale_in,
                autoscaling_group=group,
            )
            lifecycle_hooks.begin(group, state)  # Pending:Wait, not registered, while launch hooks wait
            group.instance_states.append(state)
            new_states.append(state)
    reconcile(group)
    return new_states


# --- configuration of the group, and what is reported per instance ------------------------------

def forget_launch_configuration(group: FakeAutoScalingGroup) -> None:
    group.launch_config = None
    group.__dict__.pop("launch_configuration_name", None)


def _set_configuration(self: FakeAutoScalingGroup, launch_config_name, launch_template, mixed_instances_policy):
    """A group uses a launch configuration or a launch template, never both (moto kept the old one
    when UpdateAutoScalingGroup switched, and the template won even after a switch back)."""
    _orig_set_configuration(self, launch_config_name, launch_template, mixed_instances_policy)
    if launch_config_name:
        self.ec2_launch_template = None
    elif launch_template or mixed_instances_policy:
        forget_launch_configuration(self)


def _instance_launch_template(self: InstanceState):
    if "_la_lt" not in self.instance.__dict__:  # not launched by the emulator (moto's own path)
        return _orig_lt_property.fget(self)
    lt = self.instance._la_lt
    return dict(lt) if lt is not None else None


def _instance_launch_configuration_name(self: InstanceState):
    if "_la_lc" not in self.instance.__dict__:
        return _orig_lc_property.fget(self)
    return self.instance._la_lc


def _replace(self: FakeAutoScalingGroup, count_needed: int, propagated_tags) -> None:
    launch(self, count_needed)


_orig_set_configuration = FakeAutoScalingGroup._set_launch_configuration
_orig_lt_property = InstanceState.launch_template
_orig_lc_property = InstanceState.launch_configuration_name


def install() -> None:
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace
    FakeAutoScalingGroup._set_launch_configuration = _set_configuration
    InstanceState.launch_template = property(_instance_launch_template)
    InstanceState.launch_configuration_name = property(_instance_launch_configuration_name)

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

import copy

from moto.autoscaling.models import ASG_NAME_TAG, FakeAutoScalingGroup, InstanceState

from . import launch_access, lifecycle_hooks
from .errors import AwsError
from .group_members import live_states, reconcile
from .launch_config import Config


def current_config(group: FakeAutoScalingGroup) -> Config | None:
    """What new instances of the group launch from: an active instance refresh's desired
    configuration wins over the group's own."""
    return getattr(group, "_la_launch_override", None) or Config.of_group(group)


def _template_extras(version) -> dict:
    """run_instances arguments from launch template data that moto's launch path does not apply
    itself (it applies KeyName, SecurityGroupIds, BlockDeviceMappings, UserData and instance tags)."""
    data = version.data
    extras = {}
    if (data.get("Monitoring") or {}).get("Enabled"):
        extras["monitoring_state"] = "enabled"
    if data.get("MetadataOptions"):
        extras["metadata_options"] = data["MetadataOptions"]
    if data.get("EbsOptimized"):
        extras["ebs_optimized"] = True
    if (data.get("Placement") or {}).get("Tenancy"):
        extras["_tenancy"] = data["Placement"]["Tenancy"]
    for nic in data.get("NetworkInterfaces") or []:
        if nic.get("DeviceIndex", 0) == 0 and nic.get("AssociatePublicIpAddress") is not None:
            extras["associate_public_ip"] = bool(nic["AssociatePublicIpAddress"])
    return extras


def _launch_args(group: FakeAutoScalingGroup) -> tuple[dict, dict]:
    """run_instances arguments for one new instance, and the record kept on the instance (what is
    reported per instance, and its configuration key)."""
    config = current_config(group)
    choice = config.choose(live_states(group)) if config is not None else None
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    if choice is not None:
        version = choice.version
        tags.update(version.instance_tags)
        args = dict(image_id=version.image_id, user_data=version.user_data, security_groups=version.security_groups,
                    instance_type=choice.instance_type, launch_config=None, associate_public_ip=None,
                    launch_template={"LaunchTemplateId": choice.template.id, "Version": str(version.number)})
        args.update(_template_extras(version))
        record = {"_la_lt": {"LaunchTemplateId": choice.template.id, "LaunchTemplateName": choice.template.name,
                             "Version": str(choice.version_ref)},
                  "_la_lc": None, "_la_key": (choice.template.id, version.number), "_la_spot": choice.spot}
        spot = choice.spot
    else:
        lc = group.launch_config
        args = dict(image_id=lc.image_id, user_data=lc.user_data, security_groups=lc.security_groups,
                    instance_type=lc.instance_type, launch_config=lc, launch_template=None,
                    associate_public_ip=lc.associate_public_ip_address, key_name=lc.key_name,
                    ebs_optimized=bool(lc.ebs_optimized),
                    monitoring_state="enabled" if lc.instance_monitoring_enabled else "disabled")
        spot = bool(lc.spot_price)
        record = {"_la_lt": None, "_la_lc": lc.name, "_la_key": ("launch-configuration", lc.name), "_la_spot": spot}
    if spot:
        args["instance_market_options"] = "spot"  # moto marks the instance InstanceLifecycle spot
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


def launch_instance(group: FakeAutoScalingGroup) -> InstanceState | None:
    """Run one instance for the group, from what new instances launch from (current_config), into
    the zone with the fewest members: Pending (Pending:Wait while launch lifecycle hooks wait), a
    member of the group, not yet registered (reconcile() does that). warm_pool.py moves the state
    into the warm pool instead. None when EC2 refuses the launch (a failed scaling activity; the
    group tries again after a pause: launch_access)."""
    if launch_access.backing_off(group):
        return None
    args, record = _launch_args(group)
    subnet_id, zone = _pick_subnet(group)
    image_id, user_data, security_groups = args.pop("image_id"), args.pop("user_data"), args.pop("security_groups")
    tenancy = args.pop("_tenancy", None)
    try:
        reservation = group.ec2_backend.run_instances(
            image_id, 1, user_data, security_groups, placement=zone, subnet_id=subnet_id,
            is_instance_type_default=False, **args)
    except AwsError as error:  # e.g. an image the group's account may not launch
        launch_access.refused(group, record["_la_key"], args.get("instance_type"), error)
        return None
    instance = reservation.instances[0]
    instance.autoscaling_group = group
    if tenancy:
        instance.placement.tenancy = tenancy
    instance.__dict__.update(record)
    if any(p["ProcessName"] == "AddToLoadBalancer" for p in group.suspended_processes):
        instance._la_no_lb = True  # "does not add the instances that were launched while suspended"
    state = InstanceState(
        instance,
        lifecycle_state="Pending",
        protected_from_scale_in=group.new_instances_protected_from_scale_in,
        autoscaling_group=group,
    )
    group.instance_states.append(state)
    return state


def launch(group: FakeAutoScalingGroup, count: int) -> list[InstanceState]:
    """Launch `count` instances into the group: Pending and registered in its target groups, or
    Pending:Wait when the group has launch lifecycle hooks."""
    new_states = []
    for _ in range(count):
        state = launch_instance(group)
        if state is None:
            break
        lifecycle_hooks.begin(group, state)  # Pending:Wait, not registered, while launch hooks wait
        new_states.append(state)
    reconcile(group)
    return new_states


# --- configuration of the group, and what is reported per instance ------------------------------

def _set_configuration(self: FakeAutoScalingGroup, launch_config_name, launch_template, mixed_instances_policy):
    """A group uses a launch configuration, a launch template or a mixed instances policy, one at a
    time (moto kept the old one when UpdateAutoScalingGroup switched, and the template won even
    after a switch back). Existing instances keep what they were launched from."""
    kept = self.__dict__.pop("_la_keep_policy", None)
    if kept and not (launch_config_name or launch_template or mixed_instances_policy):
        self.mixed_instances_policy = kept  # moto's update() has just wiped it (see _update)
    _orig_set_configuration(self, launch_config_name, launch_template, mixed_instances_policy)
    if launch_config_name:
        self.ec2_launch_template = None
        self.mixed_instances_policy = None
    elif launch_template or mixed_instances_policy:
        self.launch_config = None
        self.__dict__.pop("launch_configuration_name", None)
        if launch_template:
            self.mixed_instances_policy = None


def _merge_policy(current: dict | None, given: dict) -> dict:
    """UpdateAutoScalingGroup's MixedInstancesPolicy changes what it names: InstancesDistribution
    and the template specification or Overrides each replace their counterpart; the rest stays."""
    merged = copy.deepcopy(current or {})
    spec = (merged.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    if spec and spec.get("LaunchTemplateId"):
        spec.pop("LaunchTemplateName", None)  # as reported it names both; a request names one
    for key, value in given.items():
        if key == "LaunchTemplate" and isinstance(value, dict):
            merged.setdefault("LaunchTemplate", {}).update(copy.deepcopy(value))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _update(self: FakeAutoScalingGroup, **kw) -> None:
    """moto's UpdateAutoScalingGroup wiped the group's MixedInstancesPolicy whenever the request did
    not repeat it (e.g. only a MaxSize change): keep it unless the request switches the group to a
    launch template or configuration."""
    given = kw.get("mixed_instances_policy")
    switching = bool(kw.get("launch_config_name") or kw.get("launch_template"))
    if given:
        kw["mixed_instances_policy"] = _merge_policy(self.mixed_instances_policy, given)
    elif not switching and self.mixed_instances_policy:
        self._la_keep_policy = self.mixed_instances_policy  # restored by _set_configuration, before any launch
    _orig_update(self, **kw)


def _group_launch_template(self: FakeAutoScalingGroup):
    """A group with a mixed instances policy has no top-level LaunchTemplate (the template lives in
    the policy)."""
    if self.mixed_instances_policy:
        return None
    return _orig_group_lt.fget(self)


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
_orig_update = FakeAutoScalingGroup.update
_orig_group_lt = FakeAutoScalingGroup.launch_template
_orig_lt_property = InstanceState.launch_template
_orig_lc_property = InstanceState.launch_configuration_name


def install() -> None:
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace
    FakeAutoScalingGroup._set_launch_configuration = _set_configuration
    FakeAutoScalingGroup.update = _update
    FakeAutoScalingGroup.launch_template = property(_group_launch_template)
    InstanceState.launch_template = property(_instance_launch_template)
    InstanceState.launch_configuration_name = property(_instance_launch_configuration_name)

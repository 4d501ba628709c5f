"""What an Auto Scaling group's instances launch from, as one value: a launch template version, a
launch configuration, or a mixed instances policy (a launch template, instance-type overrides that
may name their own template, and an On-Demand/Spot distribution). A group's configuration, an
instance refresh's desired configuration and the configuration a rollback returns to are all a
`Config`; it chooses what the next instance launches as, says whether an instance matches it
(SkipMatching, scale-in, which instances a refresh has replaced), and can be saved on a group.

Follows the Amazon EC2 Auto Scaling User Guide — "Auto Scaling groups with multiple instance types
and purchase options" (OnDemandBaseCapacity first, then OnDemandPercentageAboveBaseCapacity of the
rest, "rounds up to the next integer in favor of On-Demand Instances"; the `prioritized` On-Demand
strategy takes the overrides in order), "Use multiple launch templates" (an override's own
LaunchTemplateSpecification), "Use an instance refresh with skip matching" (an instance matches when
it uses the desired launch template and one of the desired instance types) and the API Reference —
"MixedInstancesPolicy", "LaunchTemplateOverrides", "InstancesDistribution", "RefreshPreferences"
(AutoRollback: not for a group on `$Latest`/`$Default`).

Our choices (README): no prices exist, so On-Demand instances take the first override whose type is
given, and Spot instances go to the override with the fewest Spot instances so far (diversified, the
order breaking ties); WeightedCapacity and InstanceRequirements are stored, not used (every instance
counts 1; an override without InstanceType uses its template's type).
"""

from __future__ import annotations

import copy
import math

from moto.autoscaling.models import FakeAutoScalingGroup

NOT_NUMBERED = ("$latest", "$default")


class Choice:
    """What one new instance launches as."""

    def __init__(self, template, version_ref: str, instance_type: str | None, spot: bool):
        self.template = template
        self.version_ref = version_ref
        self.version = template.get_version(version_ref)
        self.instance_type = instance_type or self.version.instance_type or "m1.small"
        self.spot = spot


def _template(ec2, spec: dict):
    if spec.get("LaunchTemplateId"):
        return ec2.get_launch_template(spec["LaunchTemplateId"])
    return ec2.get_launch_template_by_name(spec["LaunchTemplateName"])


def _version_ref(spec: dict) -> str:
    return str(spec.get("Version") or "$Default")


def _numbered(ref) -> bool:
    return ref is not None and str(ref).lower() not in NOT_NUMBERED


class Config:
    """kind is "lt" (template, version_ref), "lc" (lc) or "mip" (policy, a dict as the API shapes it)."""

    def __init__(self, kind: str, ec2, template=None, version_ref: str | None = None, lc=None,
                 policy: dict | None = None, given_version: str | None = None):
        self.kind = kind
        self.ec2 = ec2
        self.template = template
        self.version_ref = version_ref
        self.given_version = given_version  # the LaunchTemplate.Version as the client gave it (may be None)
        self.lc = lc
        self.policy = policy

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def of_group(cls, group: FakeAutoScalingGroup) -> "Config | None":
        """The configuration saved on the group."""
        if group.mixed_instances_policy:
            return cls("mip", group.ec2_backend, policy=copy.deepcopy(group.mixed_instances_policy))
        if group.ec2_launch_template is not None:
            return cls("lt", group.ec2_backend, template=group.ec2_launch_template,
                       version_ref=group.launch_template_version,
                       given_version=getattr(group, "provided_launch_template_version", None))
        if group.launch_config is not None:
            return cls("lc", group.ec2_backend, lc=group.launch_config)
        return None

    @classmethod
    def from_desired(cls, group: FakeAutoScalingGroup, desired: dict) -> "Config":
        """A StartInstanceRefresh DesiredConfiguration; unknown templates or versions raise EC2's errors."""
        ec2 = group.ec2_backend
        if desired.get("MixedInstancesPolicy"):
            policy = copy.deepcopy(desired["MixedInstancesPolicy"])
            config = cls("mip", ec2, policy=policy)
            for template, ref, _ in config.entries():
                template.get_version(ref)
            return config
        spec = desired["LaunchTemplate"]
        template = _template(ec2, spec)
        template.get_version(_version_ref(spec))
        return cls("lt", ec2, template=template, version_ref=_version_ref(spec), given_version=spec.get("Version"))

    # --- mixed instances policy -----------------------------------------------------------------
    def entries(self) -> list[tuple]:
        """(template, version ref, instance type or None) per override, in priority order."""
        if self.kind == "lt":
            return [(self.template, self.version_ref, None)]
        if self.kind != "mip":
            return []
        lt = self.policy.get("LaunchTemplate") or {}
        base_spec = lt.get("LaunchTemplateSpecification") or {}
        base = _template(self.ec2, base_spec)
        out = []
        for override in lt.get("Overrides") or []:
            spec = override.get("LaunchTemplateSpecification")
            if spec:
                out.append((_template(self.ec2, spec), _version_ref(spec), override.get("InstanceType")))
            else:
                out.append((base, _version_ref(base_spec), override.get("InstanceType")))
        return out or [(base, _version_ref(base_spec), None)]

    def _distribution(self) -> dict:
        return (self.policy or {}).get("InstancesDistribution") or {}

    def on_demand_target(self, capacity: int) -> int:
        """On-Demand instances among `capacity`: the base, then the percentage above it, rounded up."""
        dist = self._distribution()
        base = int(dist.get("OnDemandBaseCapacity") or 0)
        pct = dist.get("OnDemandPercentageAboveBaseCapacity")
        pct = 100 if pct is None else int(pct)
        if capacity <= base:
            return capacity
        return base + math.ceil((capacity - base) * pct / 100)

    # --- launching ------------------------------------------------------------------------------
    def choose(self, members: list) -> Choice | None:
        """What the next instance launches as, given the group's current members (InstanceStates).
        None for a launch configuration (asg_launch launches those itself)."""
        if self.kind == "lc":
            return None
        if self.kind == "lt":
            version = self.template.get_version(self.version_ref)
            market = (version.data.get("InstanceMarketOptions") or {}).get("MarketType")
            return Choice(self.template, self.version_ref, None, market == "spot")
        entries = self.entries()
        on_demand = sum(1 for s in members if not getattr(s.instance, "_la_spot", False))
        spot = on_demand >= self.on_demand_target(len(members) + 1)
        if not spot:
            template, ref, itype = entries[0]
            return Choice(template, ref, itype, False)
        counts = {}
        for s in members:
            if getattr(s.instance, "_la_spot", False):
                counts[s.instance.instance_type] = counts.get(s.instance.instance_type, 0) + 1
        best = min(range(len(entries)), key=lambda i: (counts.get(entries[i][2], 0), i))
        template, ref, itype = entries[best]
        return Choice(template, ref, itype, True)

    # --- matching -------------------------------------------------------------------------------
    def matches(self, instance) -> bool:
        """Whether the instance uses this configuration (its template version, and for a mixed
        instances policy one of its instance types with that type's template)."""
        key = getattr(instance, "_la_key", None)
        if self.kind == "lc":
            return key == ("launch-configuration", self.lc.name)
        entries = self.entries()
        typed = [e for e in entries if e[2]]
        if typed:
            for template, ref, itype in typed:
                if itype == instance.instance_type:
                    return key == (template.id, template.get_version(ref).number)
            return False
        return any(key == (t.id, t.get_version(ref).number) for t, ref, _ in entries)

    def rollback_blocker(self) -> str | None:
        """Why a refresh could not roll back to this (saved) configuration, or None."""
        if self.kind == "lc":
            return "The Auto Scaling group does not use a launch template, so the instance refresh cannot be rolled back."
        refs = [self.given_version] if self.kind == "lt" else self._policy_versions()
        if not all(_numbered(r) for r in refs):
            return ("The Auto Scaling group uses the launch template's $Latest or $Default version, so the instance "
                    "refresh cannot be rolled back. Use a specific version number.")
        return None

    def _policy_versions(self) -> list:
        lt = self.policy.get("LaunchTemplate") or {}
        specs = [lt.get("LaunchTemplateSpecification") or {}]
        specs += [o["LaunchTemplateSpecification"] for o in lt.get("Overrides") or [] if o.get("LaunchTemplateSpecification")]
        return [s.get("Version") for s in specs]

    # --- saving on the group --------------------------------------------------------------------
    def apply(self, group: FakeAutoScalingGroup) -> None:
        """Make this the group's configuration (a successful refresh): exactly one of the three."""
        if self.kind == "lc":
            group.mixed_instances_policy = None
            group._set_launch_configuration(self.lc.name, None, None)
            return
        group.launch_config = None
        group.__dict__.pop("launch_configuration_name", None)
        if self.kind == "mip":
            group.mixed_instances_policy = copy.deepcopy(self.policy)
            group._set_launch_configuration(None, None, group.mixed_instances_policy)
            return
        group.mixed_instances_policy = None
        group._set_launch_configuration(None, {"LaunchTemplateId": self.template.id,
                                               "Version": self.given_version or "$Default"}, None)

"""ClientToken idempotency for RunInstances and CreateLaunchTemplateVersion (and CopyImage, through
image_copy), which moto ignores.

Follows the Amazon EC2 Developer Guide — "Ensuring idempotency in Amazon EC2 API requests": a retry
of a request that completed successfully, with the same client token and the same parameters,
"succeeds without performing any further actions" and returns the original result (which "might
contain updated information, such as the current creation status": a replayed RunInstances shows
the instances' current state); the same token with one or more different parameters, other than
the Region or Availability Zone, fails with `IdempotentParameterMismatch`. CreateLaunchTemplateVersion
is Regional (the token counts once per account and Region). RunInstances is zonal when the request
names an Availability Zone (Placement.AvailabilityZone) or implies one (SubnetId): the same token
may then launch once in each zone; otherwise Regional.

Tokens are kept for the server's lifetime (AWS: "at least 24 hours after the termination of the
instance"); only successful requests are remembered, and DryRun requests are never (they complete
nothing).
"""

from __future__ import annotations

import json

from moto.core.responses import ActionResult
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.launch_templates import LaunchTemplates

from .errors import AwsError

NOT_COMPARED = ("ClientToken", "DryRun")


def _fingerprint(self) -> str:
    params = {k: v for k, v in dict(self.params).items() if k not in NOT_COMPARED}
    return json.dumps(params, sort_keys=True, default=str)


def _run_instances_zone(self) -> str | None:
    """The Availability Zone a RunInstances request names or implies (zonal idempotency)."""
    zone = self._get_param("Placement.AvailabilityZone")
    if zone:
        return zone
    subnet_id = self._get_param("SubnetId")
    if subnet_id:
        subnets = self.ec2_backend.describe_subnets(subnet_ids=[subnet_id])  # unknown: moto's own error
        return subnets[0].availability_zone if subnets else subnet_id
    return None


def idempotent(action: str, original, scope=lambda self: None):
    """Wrap an EC2 response handler so that its ClientToken makes it idempotent (per account and
    Region, and per `scope` of the request when given). Also used by image_copy for CopyImage."""

    def handler(self):
        token = self._get_param("ClientToken")
        if not token or str(self._get_param("DryRun", "")).lower() == "true":
            return original(self)
        seen = self.ec2_backend.__dict__.setdefault("_la_client_tokens", {})
        key = (action, token, scope(self))
        fingerprint = _fingerprint(self)
        if key in seen:
            earlier, result = seen[key]
            if earlier != fingerprint:
                raise AwsError(
                    "IdempotentParameterMismatch",
                    f"The client token '{token}' was already used by a {action} request with different "
                    "parameters. Use a new client token, or repeat the earlier request unchanged.",
                )
            return ActionResult(result)
        answer = original(self)
        seen[key] = (fingerprint, answer.result)
        return answer

    handler.__name__ = original.__name__
    return handler


def install() -> None:
    """After launch_templates.install(): wraps the emulator's CreateLaunchTemplateVersion."""
    InstanceResponse.run_instances = idempotent("RunInstances", InstanceResponse.run_instances, _run_instances_zone)
    LaunchTemplates.create_launch_template_version = idempotent(
        "CreateLaunchTemplateVersion", LaunchTemplates.create_launch_template_version)

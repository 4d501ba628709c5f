"""AMI deregistration: its protection — EnableImageDeregistrationProtection (WithCooldown),
DisableImageDeregistrationProtection, DescribeImages' `DeregistrationProtection`, and DeregisterImage
refused while the protection (or its cooldown) is in effect — and DeregisterImage's
DeleteAssociatedSnapshots. moto 5.2.5 has none of it: both actions answered InvalidAction,
DescribeImages had no such field, and DeleteAssociatedSnapshots was ignored.

Follows the Amazon EC2 User Guide — "Protect an Amazon EC2 AMI from deregistration" ("the AMI can't be
deregistered by any user, regardless of their IAM permissions"; the optional 24-hour cooldown is "the
time during which deregistration protection remains in effect after you turn it off"; "turned off by
default on all existing and new AMIs") and "Deregister an Amazon EC2 AMI" ("You can't deregister an AMI
that is not owned by your account"); EC2 API Reference — "EnableImageDeregistrationProtection",
"DisableImageDeregistrationProtection", "Image" (DeregistrationProtection).

DeleteAssociatedSnapshots follows the DeregisterImage reference: the image's snapshots are deleted
with it unless another AMI uses them (`skipped`), and DeleteSnapshotResults reports each (`success`).

The values DescribeImages reports are those AWS answers: `disabled`, `enabled-without-cooldown`,
`enabled-with-cooldown` (AWS CLI examples and Terraform's acceptance tests against AWS), and during
the cooldown `disabled after <time>` (what aws-nuke parses from AWS; AWS does not document it, and the
time format here is ours). The cooldown is an AWS duration: 86,400 AWS seconds, scaled like every other.
"""

from __future__ import annotations

from datetime import timedelta

from moto.core.responses import ActionResult
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.responses.amis import AmisResponse

from . import clock
from .errors import AwsError

COOLDOWN_SECONDS = 24 * 3600  # "a 24-hour cooldown period"

_original_deregister = AmiBackend.deregister_image


def _state(ami: Ami) -> tuple[str, float | None]:
    """(mode, cooldown end in real monotonic seconds or None); mode is 'disabled', 'without', 'with'."""
    return getattr(ami, "_la_protection", ("disabled", None))


def protection(ami: Ami) -> str:
    """The DeregistrationProtection value DescribeImages shows now."""
    mode, until = _state(ami)
    if mode == "with":
        return "enabled-with-cooldown"
    if mode == "without":
        return "enabled-without-cooldown"
    if until is not None and until > clock.now():
        end = clock.wall() + timedelta(seconds=until - clock.now())
        return f"disabled after {end.strftime('%Y-%m-%dT%H:%M:%S.')}{end.microsecond // 1000:03d}Z"
    return "disabled"


def _owned_image(backend, ami_id: str) -> Ami:
    """The image, which must exist and belong to the caller's account (AWS: only the owner manages it)."""
    ami = backend.describe_images(ami_ids=[ami_id])  # raises InvalidAMIID.Malformed / .NotFound
    image = next((a for a in ami if a.id == ami_id), None)
    if image is None:  # deregistered earlier: moto keeps the id in deleted_amis
        raise AwsError("InvalidAMIID.Unavailable", f"The image id '[{ami_id}]' is no longer available")
    if image.owner_id != backend.account_id:
        raise AwsError("AuthFailure", f"Not authorized for image:{ami_id}")
    return image


def enable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    ami_id = self._get_param("ImageId")
    with_cooldown = str(self._get_param("WithCooldown", False)).lower() == "true"
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, ami_id)
    # Turning it on again replaces the previous setting, including a cooldown still running.
    image._la_protection = ("with" if with_cooldown else "without", None)
    return ActionResult({"Return": protection(image)})


def disable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    ami_id = self._get_param("ImageId")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, ami_id)
    mode, until = _state(image)
    if mode == "with":
        until = clock.deadline(COOLDOWN_SECONDS)
    image._la_protection = ("disabled", until)
    return ActionResult({"Return": protection(image)})


def _deregister_image(self: AmiBackend, ami_id: str) -> None:
    image = self.amis.get(ami_id)
    if image is not None:
        if image.owner_id != self.account_id:
            raise AwsError("AuthFailure", f"Not authorized for image:{ami_id}")
        shown = protection(image)
        if shown.startswith("enabled"):
            raise AwsError(
                "OperationNotPermitted",
                f"The image {ami_id} cannot be deregistered because deregistration protection is enabled "
                f"({shown}). Disable it with DisableImageDeregistrationProtection first.",
            )
        if shown != "disabled":
            raise AwsError(
                "OperationNotPermitted",
                f"The image {ami_id} cannot be deregistered yet: deregistration protection stays in effect "
                f"during its 24-hour cooldown ({shown}).",
            )
    _original_deregister(self, ami_id)


def deregister_image(self: AmisResponse) -> ActionResult:
    ami_id = self._get_param("ImageId")
    delete = str(self._get_param("DeleteAssociatedSnapshots", False)).lower() == "true"
    self.error_on_dryrun()
    backend = self.ec2_backend
    ami = backend.amis.get(ami_id)
    snapshots = [ami.ebs_snapshot] if delete and ami is not None and ami.owner_id == backend.account_id else []
    backend.deregister_image(ami_id)
    result: dict = {"Return": True}
    if delete:
        results = []
        for snapshot in snapshots:
            if any(other.ebs_snapshot is snapshot for other in backend.amis.values()):
                results.append({"SnapshotId": snapshot.id, "ReturnCode": "skipped"})  # another AMI uses it
                continue
            backend.snapshots.pop(snapshot.id, None)
            results.append({"SnapshotId": snapshot.id, "ReturnCode": "success"})
        result["DeleteSnapshotResults"] = results
    return ActionResult(result)


def install() -> None:
    Ami.deregistration_protection = property(protection)  # serialized as Image.DeregistrationProtection
    AmiBackend.deregister_image = _deregister_image
    AmisResponse.enable_image_deregistration_protection = enable_image_deregistration_protection
    AmisResponse.disable_image_deregistration_protection = disable_image_deregistration_protection
    AmisResponse.deregister_image = deregister_image

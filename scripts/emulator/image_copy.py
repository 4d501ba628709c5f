"""CopyImage as AWS does it: called in the destination Region (and account), the copy and its snapshot
start `pending` and become `available`/`completed` after the copy time (or `failed`/`error`), with
CopyImageTags, TagSpecifications for the image and the snapshots, ClientToken idempotency, encryption
(Encrypted, KmsKeyId as key id, alias or ARN, the account's default EBS key otherwise) and the source's
checks. moto copied at once, only within the caller's account, ignored tags, tokens and encryption.

Follows the EC2 API Reference — "CopyImage" (initiated in the destination Region; CopyImageTags copies
"your user-defined AMI tags", not `aws:` system tags nor tags other accounts attached to a shared AMI;
TagSpecifications tag "the new AMI and new snapshots", the same tags on every snapshot; "AWS
authenticates the KMS key asynchronously. Therefore, if you specify an identifier that is not valid,
the action can appear to complete, but eventually fails"; "The specified KMS key must exist in the
destination Region"; without KmsKeyId "your AWS managed KMS key for Amazon EBS is used"; "you cannot
create an unencrypted copy of an encrypted snapshot"; SnapshotCopyCompletionDurationMinutes, 15-minute
steps, for a time-based copy), the EC2 User Guide — "Copy an Amazon EC2 AMI" (cross-account copies need
the owner's launch permission and read access to the snapshots), and "Ensuring idempotency in Amazon EC2
API requests". A failed copy is `failed` with StateReason "Copy image failed with an internal error."
(what AWS shows for an invalid KMS key: hashicorp/packer #6599, #6737).

Our choices (README): a copy lasts LOCAL_AWS_COPY_SECONDS (default 300 AWS seconds; AWS completes
standard copies "on a best-effort basis" and publishes no figure — minutes to tens of minutes are
reported) or SnapshotCopyCompletionDurationMinutes; a copy whose key is unusable fails KEY_SECONDS (10
AWS s) after it started; the tag `local-aws:copy` on the source image makes copies fail (`fail`: at the
end of the copy time; `fail-after:<AWS seconds>`).
"""

from __future__ import annotations

import logging
import re

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidTaggableResourceType
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse

from . import clock, idempotency, image_access, kms_access
from .errors import AwsError

log = logging.getLogger("local-aws")
COPY_SECONDS = clock.env_seconds("LOCAL_AWS_COPY_SECONDS", 300)
KEY_SECONDS = 10.0
COPY_TAG = "local-aws:copy"
_FAIL_AFTER = re.compile(r"^fail-after:(\d+(?:\.\d+)?)$")
FAILED_REASON = {"Code": "Server.InternalError", "Message": "Copy image failed with an internal error."}


def _flag(self: AmisResponse, name: str) -> bool:
    return str(self._get_param(name, False)).lower() == "true"


def _source(self: AmisResponse, source_region: str, image_id: str):
    """(source image as the caller sees it, the caller's backend in the source Region)."""
    if source_region not in ec2_backends[self.current_account]:
        raise AwsError("InvalidParameterValue", f"Invalid value '{source_region}' for SourceRegion.")
    backend = ec2_backends[self.current_account][source_region]
    if not (image_id or "").startswith("ami-"):
        raise AwsError("InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "ami-...")')
    ami = image_access.visible(backend, image_id)
    if ami is None:
        if image_id in backend.deleted_amis:
            raise AwsError("InvalidAMIID.Unavailable", f"The image id '[{image_id}]' is no longer available")
        raise AwsError("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    if ami.state != "available":
        raise AwsError("InvalidAMIID.Unavailable",
                       f"The AMI ID '{image_id}' is currently {ami.state} and may not be used for this operation")
    if ami.owner_id != self.current_account and not ami.is_public:
        for snapshot in image_access.snapshots(ami):
            if self.current_account not in snapshot.create_volume_permission_userids and \
                    "all" not in snapshot.create_volume_permission_groups:
                raise AwsError("AuthFailure", "You do not have permission to access the storage of this ami")
    return ami, backend


def _duration(self: AmisResponse) -> float:
    minutes = self._get_param("SnapshotCopyCompletionDurationMinutes")
    if minutes is None:
        return COPY_SECONDS
    minutes = int(minutes)
    if minutes < 15 or minutes > 2880 or minutes % 15:
        raise AwsError("InvalidParameterValue", "SnapshotCopyCompletionDurationMinutes must be a multiple of 15 "
                                                "from 15 to 2880.")
    return minutes * 60.0


def _key(self: AmisResponse, source, source_backend, encrypted: bool, key_id: str | None):
    """(KmsKeyId the copy's snapshots show, why the copy will fail on its key or None)."""
    if not encrypted:
        return None, None
    dest = self.ec2_backend
    key = kms_access.resolve(self.current_account, self.region, key_id) if key_id else kms_access.default_ebs_key(dest)
    problem = kms_access.launch_problem(source_backend, image_access.snapshots(source), by_autoscaling=False)
    if key is None:
        return key_id, "unknown key"
    if key.region != self.region or key.key_state != "Enabled" or key.key_spec != "SYMMETRIC_DEFAULT":
        problem = problem or "key not usable here"
    elif key.account_id != self.current_account and not kms_access.policy_allows(
            key, self.current_account, None, kms_access.LAUNCH_ACTIONS):
        problem = problem or "key policy"
    return key.arn, problem


def _tags(self: AmisResponse, source, source_backend) -> tuple[dict, dict]:
    image_tags: dict[str, str] = {}
    if _flag(self, "CopyImageTags"):  # the caller's own tags on the source (not another owner's, not aws:)
        image_tags.update({k: v for k, v in source_backend.tags.get(source.id, {}).items() if not k.startswith("aws:")})
    snapshot_tags: dict[str, str] = {}
    for spec in self._get_param("TagSpecifications", []) or []:
        kind = spec.get("ResourceType")
        if kind not in ("image", "snapshot"):
            raise InvalidTaggableResourceType(kind)
        target = image_tags if kind == "image" else snapshot_tags
        target.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    return image_tags, snapshot_tags


def copy_image(self: AmisResponse) -> ActionResult:
    source_id, source_region = self._get_param("SourceImageId"), self._get_param("SourceRegion")
    name, description = self._get_param("Name"), self._get_param("Description")
    key_id, asked_encrypted = self._get_param("KmsKeyId"), _flag(self, "Encrypted")
    if key_id and not asked_encrypted:
        raise AwsError("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
    duration = _duration(self)
    source, source_backend = _source(self, source_region, source_id)
    image_tags, snapshot_tags = _tags(self, source, source_backend)
    self.error_on_dryrun()
    dest = self.ec2_backend
    for ami in dest.amis.values():
        if ami.name == name and ami.owner_id == dest.account_id:
            raise AwsError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")
    source_snapshots = image_access.snapshots(source)
    encrypted = asked_encrypted or dest.ebs_encryption_by_default or any(s.encrypted for s in source_snapshots)
    shown_key, key_problem = _key(self, source, source_backend, encrypted, key_id)

    copy = Ami(dest, f"ami-{_random_id()}", source_ami=image_access.source(source), name=name,
               description=description)
    dest.amis[copy.id] = copy
    copy.state = "pending"
    copy.source_image_id, copy.source_image_region = source.id, source_region
    snapshot = copy.ebs_snapshot
    snapshot.status, snapshot._la_progress = "pending", "0%"
    snapshot.encrypted, snapshot.kms_key_id = encrypted, shown_key
    first = source_snapshots[0].id if source_snapshots else ""
    snapshot.description = f"Copied for DestinationAmi {copy.id} from SourceAmi {source.id} for SourceSnapshot {first}."
    for key, value in image_tags.items():
        copy.add_tag(key, value)
    for key, value in snapshot_tags.items():
        snapshot.add_tag(key, value)

    started = clock.now()
    copy._la_copy = {"started": started, "done": clock.deadline(duration), "fail_at": None}
    rule = image_access.rule_tags(source_backend, source.id).get(COPY_TAG, "")
    if key_problem:
        log.info("copy %s of %s will fail: its KMS key %s (%s)", copy.id, source.id, key_id or "(default)", key_problem)
        copy._la_copy["fail_at"] = clock.deadline(min(KEY_SECONDS, duration))
    elif rule == "fail":
        copy._la_copy["fail_at"] = copy._la_copy["done"]
    elif _FAIL_AFTER.match(rule):
        copy._la_copy["fail_at"] = clock.deadline(min(float(_FAIL_AFTER.match(rule).group(1)), duration))
    dest.__dict__.setdefault("_la_copies", []).append(copy.id)
    return ActionResult({"ImageId": copy.id})


def _random_id() -> str:
    from moto.ec2.utils import random_ami_id

    return random_ami_id().removeprefix("ami-")


def advance_copies() -> None:
    """Copies in progress: snapshot progress, then `available`/`completed` or `failed`/`error`."""
    now = clock.now()
    for backend in clock.backends(ec2_backends):
        copies = backend.__dict__.get("_la_copies")
        if not copies:
            continue
        for ami_id in list(copies):
            ami = backend.amis.get(ami_id)
            if ami is None:  # deregistered while pending
                copies.remove(ami_id)
                continue
            state, snapshot = ami._la_copy, ami.ebs_snapshot
            if state["fail_at"] is not None and state["fail_at"] <= now:
                copies.remove(ami_id)
                ami.state, ami.state_reason = "failed", dict(FAILED_REASON)
                snapshot.status = "error"
            elif state["done"] <= now:
                copies.remove(ami_id)
                ami.state, snapshot.status, snapshot._la_progress = "available", "completed", "100%"
            else:
                span = max(state["done"] - state["started"], 1e-9)
                snapshot._la_progress = f"{min(99, int(100 * (now - state['started']) / span))}%"


def _block_device_mappings(self: Ami) -> list[dict]:
    """moto's mapping, with the snapshot's encryption (DescribeImages shows Ebs.Encrypted)."""
    mappings = _orig_bdm.fget(self)
    for mapping in mappings:
        mapping["Ebs"]["Encrypted"] = bool(getattr(self.ebs_snapshot, "encrypted", False))
    return mappings


_orig_bdm = Ami.block_device_mappings


def install() -> None:
    """After idempotency.install (it wraps this handler for ClientToken)."""
    AmisResponse.copy_image = idempotency.idempotent("CopyImage", copy_image)
    Ami.block_device_mappings = property(_block_device_mappings)

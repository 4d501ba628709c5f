"""AMIs that take time to create, their snapshots, and AMI name uniqueness.

Follows the Amazon EC2 User Guide — "Create an Amazon EBS-backed AMI" (CreateImage answers at once
with the image `pending`; it becomes `available` when its snapshots are complete; tags in
TagSpecifications may target `image` and `snapshot`) and the EC2 API Reference — "CreateImage"
(error `InvalidAMIName.Duplicate` when the name is already used by an image of the account in the
region).

moto makes the image `available` immediately, answers HTTP 500 when TagSpecifications tag the
snapshot, and accepts duplicate names. Here the image (and its snapshot) stay `pending` for
LOCAL_AWS_IMAGE_SECONDS (AWS seconds, default 120), then become `available` (snapshot `completed`).
"""

from __future__ import annotations

from moto.ec2.exceptions import InvalidTaggableResourceType
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend

from . import clock
from .protocol import AwsError

IMAGE_SECONDS = clock.env_seconds("LOCAL_AWS_IMAGE_SECONDS", 120)

_orig_create_image = AmiBackend.create_image


def _create_image(self, instance_id: str, name: str, description: str, tag_specifications):
    for ami in self.amis.values():
        if ami.name == name and ami.owner_id == self.account_id:
            raise AwsError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")
    image_tags, snapshot_tags = [], []
    for spec in tag_specifications or []:
        kind = spec.get("ResourceType")
        if kind == "image":
            image_tags.append(spec)
        elif kind == "snapshot":
            snapshot_tags.extend(spec.get("Tags", []))
        else:
            raise InvalidTaggableResourceType(kind)
    ami = _orig_create_image(self, instance_id, name, description, image_tags)
    snapshot = ami.ebs_snapshot
    for tag in snapshot_tags:
        snapshot.add_tag(tag["Key"], tag["Value"])
    ami.state = "pending"
    snapshot.status = "pending"
    snapshot._la_progress = "0%"
    ami._la_available_at = clock.deadline(IMAGE_SECONDS)
    self.__dict__.setdefault("_la_pending_images", []).append(ami.id)
    return ami


@clock.on_tick
def advance_images() -> None:
    now = clock.now()
    for backend in clock.backends(ec2_backends):
        pending = backend.__dict__.get("_la_pending_images")
        if not pending:
            continue
        for ami_id in list(pending):
            ami = backend.amis.get(ami_id)
            if ami is None:  # deregistered while pending
                pending.remove(ami_id)
                continue
            if ami._la_available_at <= now:
                pending.remove(ami_id)
                ami.state = "available"
                ami.ebs_snapshot.status = "completed"
                ami.ebs_snapshot._la_progress = "100%"


def install() -> None:
    AmiBackend.create_image = _create_image
    from moto.ec2.models.elastic_block_store import Snapshot

    Snapshot.progress = property(lambda self: getattr(self, "_la_progress", "100%"))

"""Which images an account can see and launch in a region, across the accounts moto keeps apart: an
image lives in its owner's (account, region) EC2 backend only, so another account's backend never
holds it. This module finds an image wherever it is owned, decides whether an account may launch it
(it owns it, it is public, or it has an explicit launch permission), shows a shared image as the other
account sees it (without the owner's tags), and gives the tags the emulator's test-controlled rules
read from an image wherever it runs.

Follows the Amazon EC2 User Guide — "Share an AMI with specific AWS accounts" (an account with launch
permission can describe and launch the AMI) and the DescribeImages reference ("Images available to you
include public images, private images that you own, and private images owned by other AWS accounts for
which you have explicit launch permissions"); tags are per account (an account an image is shared with
does not see the owner's tags, and may tag the image for itself).

The backends looked at are those that exist (an account/region nobody used has no images); moto's
catalogue AMIs are copied into every backend and stay local to it.
"""

from __future__ import annotations

from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami

from . import clock


def region_backends(region: str) -> list:
    """The EC2 backends of every account that exist in `region`."""
    return [b for b in clock.backends(ec2_backends) if b.region_name == region]


def owned(region: str, image_id: str):
    """(backend, image) of the account that owns `image_id` in `region`, or None (catalogue images
    are owned by no account of ours and are local to every backend)."""
    for backend in region_backends(region):
        ami = backend.amis.get(image_id)
        if ami is not None and ami.owner_id == backend.account_id:
            return backend, ami
    return None


def known(image_id: str) -> bool:
    """Whether any account holds this image in any region (a registered image the emulator issued or
    moto's catalogue holds), so that an id nobody issued can be told from one that is not visible."""
    return any(image_id in b.amis for b in clock.backends(ec2_backends))


def may_launch(account: str, ami: Ami) -> bool:
    """Its owner, anyone for a public image, an account with an explicit launch permission."""
    return ami.owner_id == account or ami.is_public or {"UserId": account} in ami.launch_permissions


class SharedImage(Ami):
    """Another account's image as `viewer` (an EC2 backend) sees it: the owner's image data, but tags
    from the viewer's own backend (tags do not cross accounts). A snapshot of the attributes, made for
    one answer; changes go to the owner's image, never to a view."""

    def __init__(self, ami: Ami, viewer):  # noqa: D107 - deliberately no Ami.__init__ (it creates volumes)
        self.__dict__.update(ami.__dict__)
        self.ec2_backend = viewer
        self.source = ami


def shared_with(backend) -> list[SharedImage]:
    """Images other accounts own in this backend's region that its account may launch (explicit launch
    permission or public), as it sees them."""
    out = []
    for other in region_backends(backend.region_name):
        if other.account_id == backend.account_id:
            continue
        for ami in list(other.amis.values()):
            if ami.owner_id == other.account_id and ami.id not in backend.amis and may_launch(backend.account_id, ami):
                out.append(SharedImage(ami, backend))
    return out


def visible(backend, image_id: str) -> Ami | None:
    """The image as `backend`'s account may launch it in its region: its own (or a catalogue image),
    or another account's image shared with it; None otherwise."""
    ami = backend.amis.get(image_id)
    if ami is not None:
        return ami
    found = owned(backend.region_name, image_id)
    if found is not None and may_launch(backend.account_id, found[1]):
        return SharedImage(found[1], backend)
    return None


def source(ami: Ami) -> Ami:
    """The owner's image behind a view (or the image itself)."""
    return getattr(ami, "source", ami)


def rule_tags(backend, image_id: str) -> dict[str, str]:
    """The tags the emulator's test-controlled rules (`local-aws:health`, `local-aws:error-rate`, ...)
    read for an image an instance of `backend` was launched from: the owner's tags (a release behaves
    as its image says, in whichever account it is launched), overridden by the launching account's own
    tags on that image id."""
    tags: dict[str, str] = {}
    if image_id and image_id not in backend.amis:
        found = owned(backend.region_name, image_id)
        if found is not None:
            tags.update(found[0].tags.get(image_id, {}))
    tags.update(backend.tags.get(image_id, {}))
    return tags


def snapshots(ami: Ami) -> list:
    """The image's EBS snapshots (moto gives every image one, the root volume's)."""
    snapshot = getattr(source(ami), "ebs_snapshot", None)
    return [snapshot] if snapshot is not None else []

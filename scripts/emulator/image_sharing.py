"""Sharing images across accounts: DescribeImages that shows another account's image to the accounts it
is shared with (by id, with ExecutableUsers, in the plain listing; never with Owners=self), the launch
permissions only the owner may read and change, the refusals AWS gives when sharing images or snapshots
encrypted with the AWS managed EBS key (or sharing a pending image), and createVolumePermission on
snapshots. moto kept each account's images in its own backend: another account never saw them.

Follows the EC2 API Reference — "DescribeImages" (images available to you: public, your own, and other
accounts' images you have explicit launch permissions for; ExecutableUsers: `self` or your account id
returns AMIs shared with your account, another id the AMIs shared with that id, `all` the public ones),
"ModifyImageAttribute", "DescribeImageAttribute", "ModifySnapshotAttribute" ("Snapshots encrypted with
your default KMS key cannot be shared with other accounts"); the EC2 User Guide — "Share an AMI with
specific AWS accounts" (AMIs with snapshots encrypted with an AWS managed key cannot be shared; share
the snapshots too, and the customer managed key).

The answers for the refusals are what AWS is observed to send (README: the codes are not documented):
ModifyImageAttribute on an AMI with AWS-managed-key snapshots → `InvalidParameter` "Snapshots encrypted
with the AWS Managed CMK can't be shared. Specify another snapshot." (DataDog/stratus-red-team #109,
hashicorp/packer #7410); made public while encrypted → `UnsupportedOperation` (opendevstack/ods-core
#1062); a pending AMI → `InvalidAMIID.Unavailable` "… is currently pending and may not be used for this
operation" (SUSE-Enceladus/ec2imgutils #45); ModifySnapshotAttribute on a default-key snapshot →
`OperationNotPermitted` "Encrypted snapshots with EBS default key cannot be shared" (packer #7499).
"""

from __future__ import annotations

from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError, UnvailableAMIIdError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.utils import generic_filter

from . import image_access, kms_access
from .errors import AwsError


def _executable_by(ami, users: list[str], account: str) -> bool:
    permissions = image_access.source(ami).launch_permissions
    for user in users:
        if user == "all" and ami.is_public:
            return True
        if {"UserId": account if user == "self" else user} in permissions:
            return True
    return False


def _describe_images(self: AmiBackend, ami_ids=None, filters=None, exec_users=None, owners=None):
    """moto's DescribeImages, plus the images other accounts share with this one (as it sees them), and
    ExecutableUsers as AWS scopes it (moto returned every public image for `self`)."""
    shared = image_access.shared_with(self)
    if ami_ids:  # as moto: ids alone decide (filters are not applied with ids)
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [a for a in list(self.amis.values()) + shared if a.id in ami_ids]
        if not images and not [i for i in ami_ids if i in self.deleted_amis]:
            raise InvalidAMIIdError(ami_ids)
        return images
    images = list(self.amis.values()) + shared
    if exec_users:
        images = [a for a in images if _executable_by(a, exec_users, self.account_id)]
    if owners:
        wanted = [self.account_id if o == "self" else o for o in owners]
        images = [a for a in images if a.owner_id in wanted or a.owner_alias in wanted]
    if filters:
        return generic_filter(filters, images)
    return images


def _own_image(self: AmiBackend, ami_id: str):
    """The image, which this account must own: another account's image it can see → AuthFailure (only
    the owner manages an AMI); one it cannot → moto's InvalidAMIID.NotFound / .Unavailable."""
    ami = self.amis.get(ami_id)
    if ami is not None and ami.owner_id == self.account_id:
        return ami
    if ami is not None or image_access.visible(self, ami_id) is not None:
        raise AwsError("AuthFailure", f"Not authorized for image:{ami_id}")
    if ami_id in self.deleted_amis:
        raise UnvailableAMIIdError(ami_id)
    raise InvalidAMIIdError(ami_id)


def _refuse_sharing(self: AmiBackend, ami, added: list[dict]) -> None:
    if ami.state == "pending":
        raise AwsError("InvalidAMIID.Unavailable",
                       f"The AMI ID '{ami.id}' is currently pending and may not be used for this operation")
    encrypted = [s for s in image_access.snapshots(ami) if getattr(s, "encrypted", False)]
    if not added or not encrypted:
        return
    if {"Group": "all"} in added:
        raise AwsError("UnsupportedOperation", "Encrypted snapshots can't be shared publicly. Specify another snapshot.")
    for snapshot in encrypted:
        key = kms_access.resolve(self.account_id, self.region_name, snapshot.kms_key_id)
        if key is not None and kms_access.aws_managed(key):
            raise AwsError("InvalidParameter",
                           "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")


def _modify_image_attribute(self: AmiBackend, ami_id: str, launch_permissions_to_add, launch_permissions_to_remove):
    ami = _own_image(self, ami_id)
    self.validate_permission_targets(launch_permissions_to_add)
    _refuse_sharing(self, ami, launch_permissions_to_add)
    _orig_modify(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove)


def _describe_image_attribute(self: AmiBackend, ami_id: str, attribute_name: str):
    ami = self.amis.get(ami_id)
    if ami is None:
        _own_image(self, ami_id)  # raises: someone else's (AuthFailure), deregistered or unknown
    return _orig_describe_attribute(self, ami_id, attribute_name)


def _add_create_volume_permission(self: EBSBackend, snapshot_id: str, user_ids, groups) -> None:
    snapshot = self.get_snapshot(snapshot_id)  # InvalidSnapshot.NotFound, also for others' snapshots
    if user_ids and getattr(snapshot, "encrypted", False):
        key = kms_access.resolve(self.account_id, self.region_name, snapshot.kms_key_id)
        if key is not None and kms_access.aws_managed(key):
            raise AwsError("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    _orig_add_cvp(self, snapshot_id, user_ids, groups)


_orig_modify = AmiBackend.modify_image_attribute
_orig_describe_attribute = AmiBackend.describe_image_attribute
_orig_add_cvp = EBSBackend.add_create_volume_permission


def install() -> None:
    AmiBackend.describe_images = _describe_images
    AmiBackend.modify_image_attribute = _modify_image_attribute
    AmiBackend.describe_image_attribute = _describe_image_attribute
    EBSBackend.add_create_volume_permission = _add_create_volume_permission

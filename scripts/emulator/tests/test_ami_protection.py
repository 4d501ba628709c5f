"""AMI deregistration protection (Amazon EC2 User Guide — "Protect an Amazon EC2 AMI from
deregistration", "Deregister an Amazon EC2 AMI"; EC2 API Reference —
"EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection", "Image")."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from .conftest import make_image, wait_for

# The cooldown is 24 AWS hours: 86,400 × 0.00005 = 4.3 real seconds.
TIME_SCALE = 0.00005


def _base(ec2) -> str:
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-*-x86_64"]}])["Images"]
    return max(imgs, key=lambda i: (i["CreationDate"], i["Name"]))["ImageId"]


def _shown(ec2, ami: str) -> str:
    return ec2.describe_images(ImageIds=[ami])["Images"][0]["DeregistrationProtection"]


def _refused(call, **kw) -> ClientError:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value


def test_protection_without_cooldown_blocks_deregistration_until_disabled(fresh, clients):
    ec2, _, _ = clients
    base = _base(ec2)
    ami, other = make_image(ec2, base, "protected"), make_image(ec2, base, "unprotected")
    # "turned off by default on all existing and new AMIs"
    assert _shown(ec2, ami) == _shown(ec2, base) == "disabled"
    assert ec2.enable_image_deregistration_protection(ImageId=ami)["Return"] == "enabled-without-cooldown"
    assert _shown(ec2, ami) == "enabled-without-cooldown" and _shown(ec2, other) == "disabled"
    err = _refused(ec2.deregister_image, ImageId=ami)
    assert err.response["Error"]["Code"] == "OperationNotPermitted"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400 and ami in err.response["Error"]["Message"]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] in ("pending", "available")  # still there
    ec2.deregister_image(ImageId=other)  # the protection is per image
    assert ec2.disable_image_deregistration_protection(ImageId=ami)["Return"] == "disabled"
    assert _shown(ec2, ami) == "disabled"
    ec2.deregister_image(ImageId=ami)  # no cooldown: at once
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_cooldown_keeps_protection_for_24_hours_after_disabling(fresh, clients):
    ec2, _, _ = clients
    ami = make_image(ec2, _base(ec2), "cooled")
    assert ec2.enable_image_deregistration_protection(ImageId=ami, WithCooldown=True)["Return"] == "enabled-with-cooldown"
    assert _refused(ec2.deregister_image, ImageId=ami).response["Error"]["Code"] == "OperationNotPermitted"
    t0 = time.monotonic()
    shown = ec2.disable_image_deregistration_protection(ImageId=ami)["Return"]
    assert shown.startswith("disabled after ") and _shown(ec2, ami) == shown
    until = datetime.strptime(shown.removeprefix("disabled after "), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    ahead = (until - datetime.now(timezone.utc)).total_seconds()  # wall clock; the 24 h are scaled
    assert fresh.aws(86400) - 1.0 < ahead <= fresh.aws(86400) + 0.1, ahead
    err = _refused(ec2.deregister_image, ImageId=ami)
    assert err.response["Error"]["Code"] == "OperationNotPermitted" and "cooldown" in err.response["Error"]["Message"]
    wait_for(lambda: _shown(ec2, ami) == "disabled", timeout=fresh.aws(86400) + 10, interval=0.05, what="cooldown end")
    assert time.monotonic() - t0 >= fresh.aws(86400) - 0.05
    ec2.deregister_image(ImageId=ami)


def test_enabling_again_during_the_cooldown_protects_again(fresh, clients):
    ec2, _, _ = clients
    ami = make_image(ec2, _base(ec2), "again")
    ec2.enable_image_deregistration_protection(ImageId=ami, WithCooldown=True)
    ec2.disable_image_deregistration_protection(ImageId=ami)
    assert ec2.enable_image_deregistration_protection(ImageId=ami)["Return"] == "enabled-without-cooldown"
    assert ec2.disable_image_deregistration_protection(ImageId=ami)["Return"] == "disabled"  # no cooldown left
    ec2.deregister_image(ImageId=ami)


def test_refusals(fresh, clients):
    ec2, _, _ = clients
    base = _base(ec2)
    ami = make_image(ec2, base, "mine")
    codes = {}
    for label, call, kw in [
        ("not owned", ec2.enable_image_deregistration_protection, {"ImageId": base}),
        ("not owned, disable", ec2.disable_image_deregistration_protection, {"ImageId": base}),
        ("unknown", ec2.enable_image_deregistration_protection, {"ImageId": "ami-0123456789abcdef0"}),
        ("malformed", ec2.enable_image_deregistration_protection, {"ImageId": "image-1"}),
        ("dry run", ec2.enable_image_deregistration_protection, {"ImageId": ami, "DryRun": True}),
        ("deregister not owned", ec2.deregister_image, {"ImageId": base}),
    ]:
        codes[label] = _refused(call, **kw).response["Error"]["Code"]
    assert codes == {"not owned": "AuthFailure", "not owned, disable": "AuthFailure",
                     "unknown": "InvalidAMIID.NotFound", "malformed": "InvalidAMIID.Malformed",
                     "dry run": "DryRunOperation", "deregister not owned": "AuthFailure"}
    assert _shown(ec2, ami) == "disabled"  # the dry run changed nothing
    ec2.deregister_image(ImageId=ami)
    assert _refused(ec2.enable_image_deregistration_protection, ImageId=ami).response["Error"][
        "Code"] == "InvalidAMIID.Unavailable"
    assert ec2.describe_images(ImageIds=[base])["Images"][0]["ImageId"] == base  # the catalogue image survived

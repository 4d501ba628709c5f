"""`scripts/local-aws seed --region R --account A`: the storefront stack once more, in region R (default
us-east-1) of account A (default the default account 123456789012), next to the default stack, which
stays exactly as it is. In another account the stack is built the way a deploy tool reaches it: that
account gets IAM role `bakeroll-deploy` whose trust policy lets the default account (its root) assume
it, and the stack is created with credentials from sts:AssumeRole on that role. seed.json keeps every
such stack under `stacks`, keyed "<account>/<region>", across runs.

Follows the IAM User Guide — "Create a role to give permissions to an IAM user" (the trust policy
naming the trusted account) and "Switch to an IAM role (AWS API)" (AssumeRole, then act with the
temporary credentials). The other account's administrator creating that role is stood in for by moto's
`x-moto-account-id` header (nothing else can act in an account before a role exists there).
"""

from __future__ import annotations

import json
import re
import sys

import boto3
from botocore.exceptions import ClientError

from . import seed_storefront
from .seed_storefront import SeedError

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
ROLE = "bakeroll-deploy"
SERVICES = ("ec2", "elbv2", "autoscaling", "cloudwatch")


def key(account: str, region: str) -> str:
    return f"{account}/{region}"


def _static(endpoint: str, service: str, region: str, account: str | None = None):
    client = boto3.client(service, endpoint_url=endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if account is not None:  # that account's administrator
        client.meta.events.register("before-sign.*.*",
                                    lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


def role(endpoint: str, account: str, trusted: str = DEFAULT_ACCOUNT) -> str:
    """Create (or find) role bakeroll-deploy in `account`, trusted by `trusted`'s root; its ARN."""
    iam = _static(endpoint, "iam", DEFAULT_REGION, account)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{trusted}:root"}, "Action": "sts:AssumeRole"}]}
    try:
        return iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(policy),
                               Description="bakeroll deploys into this account (local-aws seed)")["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        return iam.get_role(RoleName=ROLE)["Role"]["Arn"]


def clients(endpoint: str, region: str, role_arn: str | None) -> dict:
    """Clients for the region, with the default credentials or credentials from AssumeRole."""
    if role_arn is None:
        return {s: _static(endpoint, s, region) for s in SERVICES}
    sts = _static(endpoint, "sts", region)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="local-aws-seed")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])
    return {s: session.client(s, endpoint_url=endpoint, region_name=region) for s in SERVICES}


def wanted(region: str | None, account: str | None) -> tuple[str, str] | None:
    """(account, region) of the extra stack --region/--account ask for; None when they ask for none (or
    for the default stack itself). SeedError for a region EC2 does not know or a malformed account."""
    if not region and not account:
        return None
    account, region = account or DEFAULT_ACCOUNT, region or DEFAULT_REGION
    if region not in boto3.session.Session().get_available_regions("ec2"):
        raise SeedError(f"--region {region!r} is not a region EC2 knows (e.g. ap-southeast-1)")
    if not re.fullmatch(r"\d{12}", account):
        raise SeedError(f"--account {account!r} must be a 12-digit account id")
    return None if (account, region) == (DEFAULT_ACCOUNT, DEFAULT_REGION) else (account, region)


def create(endpoint: str, account: str, region: str, version_ref: str, note, made: list[str]) -> tuple[dict, dict]:
    """Build the stack in (account, region) and tell what was made (stderr); (its seed.json entry, its
    clients)."""
    role_arn = role(endpoint, account) if account != DEFAULT_ACCOUNT else None
    stack_clients = clients(endpoint, region, role_arn)
    entry = {"account": account}
    if role_arn:
        entry["role_arn"] = role_arn
    entry.update(seed_storefront.build(stack_clients, region, version_ref, note))
    where = f"account {account}, role {role_arn}" if role_arn else f"account {account}"
    print(f"local-aws seed ({region}, {where}):", file=sys.stderr)
    print("\n".join(made), file=sys.stderr)
    return entry, stack_clients


def earlier(seed_json) -> dict:
    """The stacks an earlier run recorded in seed.json (kept across runs until `reset`)."""
    try:
        return dict(json.loads(seed_json.read_text()).get("stacks") or {})
    except (OSError, ValueError):
        return {}

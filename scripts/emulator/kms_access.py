"""KMS keys as EBS encryption uses them: resolving a KmsKeyId (key id, alias, key ARN, alias ARN) to a
key, telling the AWS managed EBS key from customer managed keys, whether a principal may use a key (its
key policy and its grants), whether an account may launch an image whose snapshots a key encrypts, and
another account's key used by its ARN (DescribeKey, CreateGrant, ListGrants).

Follows the EC2 API Reference — "CopyImage" (KmsKeyId: key ID, alias, key ARN or alias ARN; "The
specified KMS key must exist in the destination Region"); the Amazon EC2 Auto Scaling User Guide —
"Required AWS KMS key policy for use with encrypted volumes" (the Auto Scaling service-linked role
needs the key policy, or a grant created from the group's account, to use a customer managed key, also
in its own account; "Amazon EC2 Auto Scaling does not need additional authorization to use the default
AWS managed key"); the AWS KMS Developer Guide — "Key policies" (an Allow names the principal; an
explicit Deny wins; `arn:aws:iam::<account>:root` delegates to the account), "Allowing users in other
accounts to use a KMS key", "Grants in AWS KMS"; AWS managed keys cannot be used by other accounts.

What is emulated of key policies (README): Allow/Deny statements with `Principal` `"*"` or `{"AWS":
…}` (an account id, `arn:aws:iam::<account>:root`, or an exact ARN), `Action` with wildcards
(`kms:*`, `kms:Re*`, `*`); `Condition`, `NotAction` and `NotPrincipal` are not evaluated (a statement
with them is skipped). IAM identity policies are not evaluated: a key policy naming an account's root
is enough for that account's own callers. Grants count for their GranteePrincipal and Operations.
"""

from __future__ import annotations

import fnmatch
import json

from moto.kms.exceptions import AccessDeniedException
from moto.kms.models import KmsBackend, kms_backends
from moto.kms.responses import KmsResponse

AUTOSCALING_ROLE = "arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
EBS_ALIAS = "alias/aws/ebs"
# What EC2 does with a key when it launches from an encrypted snapshot on the launcher's behalf: it
# decrypts the data key and creates a grant for the volume (the user guide's minimum key permissions).
LAUNCH_ACTIONS = ("kms:Decrypt", "kms:CreateGrant")
# The instance's StateReason when it terminates instead of starting: code Client.InternalError, the
# message "Client.InternalError: <one of these>" (kubernetes/kops #11545, hashicorp/packer #12683).
LAUNCH_FAILURE = "Client error on launch"
KEY_STATE_FAILURE = "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"


def _split(key_id: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, key id or alias name) of a KmsKeyId in any of its four forms."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) == 6:
            return parts[4], parts[3], parts[5]
    return account, region, key_id


def resolve(account: str, region: str, key_id: str | None):
    """The key a KmsKeyId names, as `account` in `region` names it (an ARN names its own account and
    region), or None when there is none."""
    if not key_id:
        return None
    owner, where, ident = _split(key_id, account, region)
    if ident.startswith("key/"):
        ident = ident[4:]
    try:
        return kms_backends[owner][where].describe_key(ident)
    except Exception:  # NotFoundException, KeyError: moto resolves unknown aliases to nothing
        return None


def default_ebs_key(ec2_backend):
    """The account's default key for EBS encryption in the region (GetEbsDefaultKmsKeyId): the AWS
    managed alias/aws/ebs key, created on first use, unless ModifyEbsDefaultKmsKeyId changed it."""
    arn = ec2_backend.default_kms_key_id or ec2_backend._create_default_encryption_key()
    return resolve(ec2_backend.account_id, ec2_backend.region_name, arn)


def aws_managed(key) -> bool:
    return key.key_manager == "AWS" or any(a.startswith("alias/aws/") for a in key.aliases)


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _principal_matches(statement: dict, account: str, arn: str | None, via_root: bool) -> bool:
    principal = statement.get("Principal")
    names = ["*"] if principal == "*" else _listed((principal or {}).get("AWS", [])) if isinstance(principal, dict) else []
    for name in names:
        if name == "*" or (arn and name == arn):
            return True
        if via_root and name in (account, f"arn:aws:iam::{account}:root"):
            return True
    return False


def _action_matches(statement: dict, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _listed(statement.get("Action", [])))


def policy_allows(key, account: str, arn: str | None, actions, via_root: bool = True) -> bool:
    """Whether the key policy lets the principal (`arn`, or with `via_root` any principal of `account`
    the account's root stands for) perform every action: an Allow for each, no Deny for any."""
    try:
        statements = _listed(json.loads(key.policy or "{}").get("Statement", []))
    except (TypeError, ValueError):
        return False
    usable = [s for s in statements if isinstance(s, dict)
              and not ({"Condition", "NotAction", "NotPrincipal"} & set(s))
              and _principal_matches(s, account, arn, via_root)]
    for action in actions:
        if any(s.get("Effect") == "Deny" and _action_matches(s, action) for s in usable):
            return False
        if not any(s.get("Effect") == "Allow" and _action_matches(s, action) for s in usable):
            return False
    return True


def grant_allows(key, arn: str, actions) -> bool:
    """Whether one grant on the key lets `arn` perform every action (grant operations have no prefix)."""
    wanted = {a.split(":", 1)[1] for a in actions}
    return any(g.grantee_principal == arn and wanted <= set(g.operations or []) for g in key.grants.values())


def launch_problem(ec2_backend, snapshots, by_autoscaling: bool) -> str | None:
    """Why an instance of `ec2_backend`'s account cannot start from these snapshots because of their
    KMS key (the StateReason of the instance that terminates), or None. Auto Scaling launches with the
    account's service-linked role; anything else with the account's own principals."""
    account, region = ec2_backend.account_id, ec2_backend.region_name
    for snapshot in snapshots:
        if not getattr(snapshot, "encrypted", False):
            continue
        key = resolve(snapshot.owner_id, region, snapshot.kms_key_id)
        if key is None or key.key_state != "Enabled":
            return KEY_STATE_FAILURE
        if aws_managed(key):
            if key.account_id != account:  # AWS managed keys cannot be used by other accounts
                return LAUNCH_FAILURE
            continue
        if by_autoscaling:
            role = AUTOSCALING_ROLE.format(account=account)
            if not (policy_allows(key, account, role, LAUNCH_ACTIONS, via_root=False)
                    or grant_allows(key, role, LAUNCH_ACTIONS)):
                return LAUNCH_FAILURE
        elif not policy_allows(key, account, None, LAUNCH_ACTIONS):
            return LAUNCH_FAILURE
    return None


# --- another account's key used by its ARN --------------------------------------------------------

def _foreign(self: KmsBackend, key_id: str):
    """The owner's backend when `key_id` is an ARN of another account or region, else None."""
    owner, where, _ = _split(key_id or "", self.account_id, self.region_name)
    if (owner, where) == (self.account_id, self.region_name):
        return None
    return kms_backends[owner][where]


def _require(self: KmsBackend, key, action: str) -> None:
    if not policy_allows(key, self.account_id, None, [action]):
        raise AccessDeniedException(
            f"User: arn:aws:iam::{self.account_id}:root is not authorized to perform: {action} on resource: "
            f"{key.arn} because no resource-based policy allows the {action} action")


def _owner_key(owner: KmsBackend, key_id: str):
    return _orig_describe_key(owner, _split(key_id, "", "")[2].removeprefix("key/"))


def _describe_key(self: KmsResponse) -> str:
    """DescribeKey of another account's key by its ARN (moto looked for it in the caller's account)."""
    key_id = self._get_param("KeyId")
    owner = _foreign(self.kms_backend, key_id)
    if owner is None:
        return _orig_describe_key_response(self)
    key = _owner_key(owner, key_id)
    _require(self.kms_backend, key, "kms:DescribeKey")
    return json.dumps(key.to_dict())


def _create_grant(self: KmsBackend, key_id, grantee_principal, operations, name, constraints, retiring_principal):
    owner = _foreign(self, key_id)
    if owner is None:
        return _orig_create_grant(self, key_id, grantee_principal, operations, name, constraints, retiring_principal)
    key = _owner_key(owner, key_id)
    _require(self, key, "kms:CreateGrant")
    grant = key.add_grant(name, grantee_principal, operations, constraints=constraints,
                          retiring_principal=retiring_principal)
    return grant.id, grant.token


def _list_grants(self: KmsBackend, key_id: str, grant_id: str):
    owner = _foreign(self, key_id)
    if owner is None:
        return _orig_list_grants(self, key_id, grant_id)
    key = _owner_key(owner, key_id)
    _require(self, key, "kms:ListGrants")
    return key.list_grants(grant_id)


def _create_alias(self: KmsBackend, target_key_id: str, alias_name: str):
    alias = _orig_create_alias(self, target_key_id, alias_name)
    if alias_name.startswith("alias/aws/"):  # the keys AWS services create for an account are AWS managed
        self.keys[self.get_key_id(target_key_id)].key_manager = "AWS"
    return alias


_orig_describe_key = KmsBackend.describe_key
_orig_describe_key_response = KmsResponse.describe_key
_orig_create_grant = KmsBackend.create_grant
_orig_list_grants = KmsBackend.list_grants
_orig_create_alias = KmsBackend.create_alias


def install() -> None:
    KmsResponse.describe_key = _describe_key
    KmsBackend.create_grant = _create_grant
    KmsBackend.list_grants = _list_grants
    KmsBackend.create_alias = _create_alias

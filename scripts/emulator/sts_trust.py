"""AssumeRole as AWS authorizes it: the role must exist and its trust policy must let the caller assume
it (and name the ExternalId it requires); otherwise `AccessDenied`. moto handed out credentials for any
role ARN, existing or not; those credentials then act in the role's account (moto maps their access key
to it), which stays as it was.

Follows the IAM User Guide — "Roles terms and concepts" (trust policy: "the principals that you trust
to assume the role"), "Access to AWS accounts owned by third parties" (`sts:ExternalId` in a condition
of the trust policy), "Troubleshoot IAM roles" ("User: … is not authorized to perform: sts:AssumeRole on
resource: …", HTTP 403 AccessDenied, also for a role that does not exist) and the STS API Reference —
"AssumeRole" (role chaining: a session of one role assuming another).

What is evaluated of a trust policy (README): Allow and Deny statements whose Action covers
`sts:AssumeRole` (wildcards allowed) and whose Principal is `"*"` or `{"AWS": …}` naming the caller's
account id, `arn:aws:iam::<account>:root`, the caller's ARN, or — for an assumed-role session — the ARN
of the role it belongs to. A `Condition` on `sts:ExternalId` (StringEquals, StringLike) is checked; a
statement with any other condition does not apply. AssumeRoleWithWebIdentity and AssumeRoleWithSAML
are moto's (nothing is checked).
"""

from __future__ import annotations

import fnmatch
import json
import re
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.sts.responses import TokenResponse

from .errors import AwsError

_SESSION = re.compile(r"^arn:aws:sts::(\d{12}):assumed-role/([^/]+)/")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _principals(caller_account: str, caller_arn: str) -> set[str]:
    names = {caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn}
    session = _SESSION.match(caller_arn)
    if session:  # a role session is trusted as its role (role chaining)
        names.add(f"arn:aws:iam::{session.group(1)}:role/{session.group(2)}")
    return names


def _applies(statement: dict, principals: set[str], external_id: str | None) -> bool:
    if not any(fnmatch.fnmatchcase("sts:assumerole", str(a).lower()) for a in _listed(statement.get("Action", []))):
        return False
    principal = statement.get("Principal")
    names = ["*"] if principal == "*" else _listed(principal.get("AWS", [])) if isinstance(principal, dict) else []
    if not any(n == "*" or n in principals for n in names):
        return False
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, values in tests.items():
            if key.lower() != "sts:externalid" or operator not in ("StringEquals", "StringLike"):
                return False  # not evaluated here: the statement does not apply
            if external_id is None or not any(
                    (external_id == v if operator == "StringEquals" else fnmatch.fnmatchcase(external_id, v))
                    for v in _listed(values)):
                return False
    return True


def trusted(role, caller_account: str, caller_arn: str, external_id: str | None) -> bool:
    try:
        document = json.loads(unquote(role.assume_role_policy_document or "{}"))
    except (TypeError, ValueError):
        return False
    principals = _principals(caller_account, caller_arn)
    statements = [s for s in _listed(document.get("Statement", [])) if isinstance(s, dict)
                  and _applies(s, principals, external_id)]
    if any(s.get("Effect") == "Deny" for s in statements):
        return False
    return any(s.get("Effect") == "Allow" for s in statements)


def _role(arn: str):
    match = re.match(r"^arn:aws:iam::(\d{12}):role/", arn or "")
    if not match:
        return None
    try:
        return iam_backends[match.group(1)]["aws"].get_role_by_arn(arn)
    except Exception:  # NotFoundException
        return None


def assume_role(self: TokenResponse):
    role_arn = self._get_param("RoleArn")
    _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
    role = _role(role_arn)
    if role is None or not trusted(role, caller_account, caller_arn, self._get_param("ExternalId")):
        raise AwsError("AccessDenied",
                       f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", 403)
    return _orig_assume_role(self)


_orig_assume_role = TokenResponse.assume_role


def install() -> None:
    TokenResponse.assume_role = assume_role

"""Explicit denies in a role's own policies, for requests signed with that role's session credentials: a
statement of an inline role policy (PutRolePolicy) with `Effect: Deny` that covers the request's action
refuses it — `UnauthorizedOperation` (EC2) or `AccessDenied` (the others), HTTP 403, "… with an explicit
deny in an identity-based policy". moto evaluated no identity policy: every call of every session was
allowed. Permissions are still not emulated otherwise: what no Deny covers is allowed (no Allow needed).

Follows the IAM User Guide — "Policy evaluation logic" (an explicit deny in any applicable policy
overrides any allow), "IAM JSON policy elements: Action / NotAction, Condition", "AWS global condition
context keys" (`aws:RequestedRegion`: the Region the request was made in), "AWS: Denies access to AWS
based on the requested Region" (a Deny with NotAction and `StringNotEquals aws:RequestedRegion`), and
"Troubleshoot access denied error messages" ("User: <arn> is not authorized to perform: <action> with an
explicit deny in an identity-based policy").

What is evaluated (README): `Action` or `NotAction` (strings or lists, `*` and `?` wildcards, service
prefixes as IAM spells them: `elasticloadbalancing:` for ELBv2), `Resource`/`NotResource` only as `"*"` (a
statement naming resources does not apply here), and `Condition` only on `aws:RequestedRegion` with
StringEquals, StringNotEquals, StringLike, StringNotLike (a statement with any other condition does not
apply). Managed policies attached to the role, permissions boundaries, SCPs and the policies of users are
not evaluated.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from .errors import AwsError

_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)$")
_OPERATORS = {"StringEquals": (False, False), "StringNotEquals": (True, False),
              "StringLike": (False, True), "StringNotLike": (True, True)}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _session(access_key: str):
    """The AssumeRole session these credentials belong to, or None (static credentials)."""
    for account in list(sts_backends.keys()):
        for backend in list(sts_backends[account].values()):
            found = backend.get_assumed_role_from_access_key(access_key)
            if found is not None:
                return found
    return None


def _policies(role_arn: str) -> list[dict]:
    match = _ROLE_ARN.match(role_arn or "")
    if not match:
        return []
    try:
        role = iam_backends[match.group(1)]["aws"].get_role(match.group(2))
    except Exception:  # the role was deleted: its sessions' policies are gone with it
        return []
    out = []
    for text in role.policies.values():
        try:
            out.append(json.loads(unquote(text) if isinstance(text, str) else json.dumps(text)))
        except (TypeError, ValueError):
            continue
    return out


def _covers(patterns, action: str) -> bool:
    return any(fnmatchcase(action, str(p).lower()) for p in _listed(patterns))


def _condition_holds(condition: dict, region: str) -> bool | None:
    """Whether the statement's condition holds for this request (None: a condition not evaluated here)."""
    for operator, tests in (condition or {}).items():
        if operator not in _OPERATORS or not isinstance(tests, dict):
            return None
        negated, like = _OPERATORS[operator]
        for key, values in tests.items():
            if key.lower() != "aws:requestedregion":
                return None
            hit = any(fnmatchcase(region, v) if like else region == v for v in _listed(values))
            if hit == negated:
                return False
    return True


def denies(document: dict, action: str, region: str) -> bool:
    """Whether a policy document explicitly denies `action` (`service:Action`, any case) in `region`."""
    action = action.lower()
    for s in _listed(document.get("Statement", [])):
        if not isinstance(s, dict) or s.get("Effect") != "Deny":
            continue
        if "Action" in s and not _covers(s["Action"], action):
            continue
        if "NotAction" in s and _covers(s["NotAction"], action):
            continue
        if "Action" not in s and "NotAction" not in s:
            continue
        if s.get("Resource", "*") not in ("*", ["*"]) or "NotResource" in s:
            continue
        if _condition_holds(s.get("Condition"), region):
            return True
    return False


def refusal(access_key: str, prefix: str, action: str, region: str) -> AwsError | None:
    """The answer to a request an explicit deny of its role session's role refuses, else None."""
    session = _session(access_key) if access_key else None
    if session is None:
        return None
    what = f"{prefix}:{action}"
    if not any(denies(doc, what, region) for doc in _policies(session.role_arn)):
        return None
    message = f"User: {session.arn} is not authorized to perform: {what} with an explicit deny in an identity-based policy"
    if prefix == "ec2":
        return AwsError("UnauthorizedOperation", f"You are not authorized to perform this operation. {message}", 403)
    return AwsError("AccessDenied", message, 403)

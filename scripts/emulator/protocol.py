"""How local-aws answers at the protocol level: AWS-shaped errors instead of moto's HTML 500s, and
the LOCAL_AWS_DENY permission switch.

moto turns an exception it does not expect (NotImplementedError for an action it lacks, a ValueError
deep in a model) into Flask's HTML debug page with HTTP 500, which the AWS SDKs treat as a retryable
transient failure with no error code. Here every request goes through `call_action`, wrapped so that:

* an action moto does not implement answers `InvalidAction` (HTTP 400), the code AWS gives for an
  unknown action, in the service's own XML error format;
* any other unexpected exception answers `InternalFailure` (HTTP 500) in the same format, with the
  traceback in server.log (that is an emulator bug: report it);
* an action listed in LOCAL_AWS_DENY (read when the server starts, e.g.
  `ec2:CreateImage,autoscaling:StartInstanceRefresh`) answers HTTP 403 with `UnauthorizedOperation`
  for EC2 (also for DryRun requests, as AWS does) and `AccessDenied` for the other services.
"""

from __future__ import annotations

import logging
import os
import traceback

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

from . import clock

log = logging.getLogger("local-aws")

ACCOUNT_ARN_USER = "arn:aws:iam::{account}:user/local-aws"

# IAM action prefixes differ from moto's service names for some services.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


class AwsError(ServiceException):
    """An error with an explicit code, serialized by moto in the service's protocol."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code, message)
        self.status = status


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationError", message)


def _parse_deny(raw: str) -> set[str]:
    out = set()
    for item in raw.split(","):
        item = item.strip()
        if not item or ":" not in item:
            continue
        service, action = item.split(":", 1)
        out.add(f"{IAM_PREFIX.get(service.lower(), service.lower())}:{action.lower()}")
    return out


DENY: set[str] = _parse_deny(os.environ.get("LOCAL_AWS_DENY", ""))


def _respond(response: BaseResponse, error: AwsError):
    status, headers, body = response.serialized(ActionResult(error))
    status = error.status
    headers["status"] = str(status)
    return status, headers, body


def _denied(response: BaseResponse) -> AwsError | None:
    if not DENY:
        return None
    service = (response.service_name or "").lower()
    prefix = IAM_PREFIX.get(service, service)
    try:
        action = response._get_action()
    except Exception:
        return None
    if not action or f"{prefix}:{action.lower()}" not in DENY:
        return None
    user = ACCOUNT_ARN_USER.format(account=response.current_account)
    what = f"{prefix}:{action}"
    if prefix == "ec2":
        return AwsError(
            "UnauthorizedOperation",
            f"You are not authorized to perform this operation. User: {user} is not authorized to "
            f"perform: {what} because no identity-based policy allows the {what} action",
            403,
        )
    return AwsError(
        "AccessDenied",
        f"User: {user} is not authorized to perform: {what} because no identity-based policy "
        f"allows the {what} action",
        403,
    )


_original_call_action = BaseResponse.call_action


def call_action(self: BaseResponse):
    denied = _denied(self)
    if denied is not None:
        return _respond(self, denied)
    try:
        with clock.LOCK:
            clock.advance()  # everything due by now happens before moto answers
            result = _original_call_action(self)
    except AwsError as e:  # raised outside moto's own ServiceException handling
        return _respond(self, e)
    except NotImplementedError as e:
        log.warning("not implemented: %s", e)
        return _respond(
            self,
            AwsError(
                "InvalidAction",
                f"The action or operation requested is invalid ({e}). local-aws (moto) does not "
                "emulate it.",
            ),
        )
    except Exception as e:
        log.error("internal failure:\n%s", traceback.format_exc())
        return _respond(self, AwsError("InternalFailure", f"local-aws internal failure: {e!r}", 500))
    return result


def _serialized_with_status(self: BaseResponse, action_result: ActionResult):
    status, headers, body = _original_serialized(self, action_result)
    err = action_result.result
    if isinstance(err, AwsError):
        status = err.status
    return status, headers, body


_original_serialized = BaseResponse.serialized


def install() -> None:
    BaseResponse.call_action = call_action
    BaseResponse.serialized = _serialized_with_status

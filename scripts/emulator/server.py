"""The local-aws server process and how it answers at the protocol level: moto's WSGI app with the
emulator's behaviour installed, bound to 127.0.0.1 on a free port, plus the ticker thread.

Run by `scripts/local-aws up` as `python -m emulator.server --port-file FILE` (cwd scripts/); it
binds port 0 so the kernel picks a free port (no race between several servers started at once),
writes the port to FILE once it can answer, and serves until SIGTERM/SIGINT, on which it exits at
once (moto's own server takes seconds to wind down).

At the protocol level it answers AWS-shaped errors instead of moto's HTML 500s, and honours the
LOCAL_AWS_DENY permission switch. moto turns an exception it does not expect (NotImplementedError
for an action it lacks, a ValueError deep in a model, a KeyError for a region it does not know)
into Flask's HTML debug page with HTTP 500, which the AWS SDKs treat as a retryable transient
failure with no error code. Here every request goes through `call_action`, wrapped so that:

* a request signed for a region moto does not serve answers `SignatureDoesNotMatch` (HTTP 403,
  "Credential should be scoped to a valid region, not 'xx'."), as AWS documents for a credential
  scope whose region is wrong;
* an action moto does not implement answers `InvalidAction` (HTTP 400), the code AWS gives for an
  unknown action, in the service's own XML error format;
* any other unexpected exception answers `InternalFailure` (HTTP 500) in the same format, with the
  traceback in server.log (that is an emulator bug: report it);
* an action listed in LOCAL_AWS_DENY (read when the server starts, e.g.
  `ec2:CreateImage,autoscaling:StartInstanceRefresh`) answers HTTP 403 with `UnauthorizedOperation`
  for EC2 (also for DryRun requests, as AWS does) and `AccessDenied` for the other services;
* a request of a role session that its role's inline policy explicitly denies answers HTTP 403 the
  same way (role_policies.py);
* with LOCAL_AWS_LOG_REQUESTS set, every AWS request is logged as `request <service>:<Action>
  <status> <ms> ms` (IAM's service prefixes, as LOCAL_AWS_DENY uses), to count calls per action.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback

from moto.core.responses import ActionResult, BaseResponse

from . import clock, role_policies, rpcv2_cbor
from .errors import AwsError

log = logging.getLogger("local-aws")

ACCOUNT_ARN_USER = "arn:aws:iam::{account}:user/local-aws"

# IAM action prefixes differ from moto's service names for some services.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


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


def _denied_by_role(response: BaseResponse) -> AwsError | None:
    """A role session's request its role's own policy explicitly denies (role_policies.py)."""
    service = (response.service_name or "").lower()
    try:
        action, access_key = response._get_action(), response.get_access_key()
    except Exception:
        return None
    if not action:
        return None
    return role_policies.refusal(access_key, IAM_PREFIX.get(service, service), action, response.region)


def _unknown_region(response: BaseResponse) -> AwsError | None:
    """A request signed for a region moto does not serve: AWS fails the signature check ("Troubleshoot
    signed requests for AWS APIs", credential scope errors: HTTP 403 SignatureDoesNotMatch, "Credential
    should be scoped to a valid Region"); moto raised a KeyError deep in the backend lookup."""
    from moto.backends import get_backend

    # Judged against EC2's regions, which are every commercial region: a global service (STS, IAM) keeps
    # its backend under "global"/"aws" and would make every real region look unknown.
    try:
        regions = get_backend("ec2")[response.current_account]  # type: ignore[arg-type]
    except Exception:
        return None
    region = response.region
    if region in regions or region in ("aws", "global") or response.service_name in ("sts", "iam"):
        return None
    return AwsError("SignatureDoesNotMatch", f"Credential should be scoped to a valid region, not '{region}'.", 403)


_original_call_action = BaseResponse.call_action

# LOCAL_AWS_LOG_REQUESTS: one line per AWS request, "request <service>:<Action> <HTTP status> <ms> ms",
# the service named as in IAM (elasticloadbalancing for ELBv2), so calls can be counted per action.
LOG_REQUESTS = bool(os.environ.get("LOCAL_AWS_LOG_REQUESTS"))


def _log_request(response: BaseResponse, result, started: float) -> None:
    service = (response.service_name or "unknown").lower()
    try:
        action = response._get_action() or "?"
    except Exception:
        action = "?"
    status = result[0] if isinstance(result, tuple) and result else "?"
    log.info("request %s:%s %s %.1f ms", IAM_PREFIX.get(service, service), action, status,
             (time.monotonic() - started) * 1000)


def call_action(self: BaseResponse):
    if not LOG_REQUESTS:
        return _answer(self)
    started = time.monotonic()
    result = _answer(self)
    _log_request(self, result, started)
    return result


def _answer(self: BaseResponse):
    refused = _unknown_region(self) or _denied(self) or _denied_by_role(self)
    if refused is not None:
        return _respond(self, refused)
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


def install_protocol() -> None:
    BaseResponse.call_action = call_action
    BaseResponse.serialized = _serialized_with_status


def install_all() -> None:
    from . import (alb_metrics, alb_traffic, ami_protection, asg, asg_launch, ec2_lifecycle, elbv2_arns,
                   idempotency, image_copy, image_sharing, kms_access, launch_access, launch_templates, lifecycle_hooks,
                   refresh, refresh_api, speedups, standby, sts_trust, target_health, warm_pool)

    speedups.install()
    install_protocol()
    ec2_lifecycle.install()
    ami_protection.install()
    kms_access.install()
    image_sharing.install()
    launch_access.install()
    sts_trust.install()
    launch_templates.install()
    idempotency.install()  # wraps the handlers launch_templates just installed
    image_copy.install()  # wraps its CopyImage with idempotency's ClientToken handling
    target_health.install()
    elbv2_arns.install()
    asg.install()
    asg_launch.install()
    lifecycle_hooks.install()  # wraps the CreateAutoScalingGroup handler asg just installed
    standby.install()
    warm_pool.install()
    refresh_api.install()
    alb_metrics.install()
    # Each tick advances, in this order: EC2 instance states (pending → running, stopping, the
    # self-powering-off build instance), then launches that fail on their KMS key, then pending
    # images and image copies, then standby transitions (EnteringStandby → Standby once drained),
    # then Auto Scaling groups (which read the instance
    # states just advanced: Pending → InService, health replacement, desired capacity, drawing on
    # the warm pool), then warm pools (entering the pool, stopping, refilling to the size the
    # group's capacity now implies), then instance refreshes (which read the groups and pools just
    # advanced), then the load balancers' traffic (which reads the target health all of that left:
    # who serves now, and the requests of each minute that has ended). Target health has no tick of its
    # own: it is computed from timestamps whenever it is read (target_health.status).
    clock.set_ticks([
        ec2_lifecycle.advance_instances,
        launch_access.advance_failing_launches,
        ec2_lifecycle.advance_images,
        image_copy.advance_copies,
        standby.advance_standby,
        asg.advance_groups,
        warm_pool.advance_warm_pools,
        refresh.advance_refreshes,
        alb_traffic.advance_traffic,
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local-aws: moto plus time-driven AWS behaviour")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = let the kernel pick a free port")
    parser.add_argument("--port-file", help="write the bound port here once serving")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("LOCAL_AWS_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("local-aws")
    if not os.environ.get("LOCAL_AWS_LOG_REQUESTS"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is too much

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    install_all()
    moto_app = rpcv2_cbor.wrap(DomainDispatcherApplication(create_backend_app))

    def app(environ, start_response):
        # Also /moto-api/reset and /moto-api/data.json, which bypass the AWS request path, must not
        # run while the ticker changes moto's models.
        with clock.LOCK:
            return moto_app(environ, start_response)

    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port

    def stop(signum, frame):  # noqa: ARG001
        log.info("signal %s: exiting", signum)
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    clock.start_ticker()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    log.info("local-aws listening on http://%s:%d (time scale %s)", args.host, port, clock.SCALE)
    server.serve_forever()


if __name__ == "__main__":
    main()

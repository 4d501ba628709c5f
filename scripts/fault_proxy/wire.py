"""Which AWS operation an HTTP request is, and the error answer each AWS protocol gives for a fault.

The services behind the local AWS speak three protocols (the botocore models' `metadata.protocol`):
EC2 its own `ec2` query protocol, Auto Scaling and ELBv2 `query`, CloudWatch `smithy-rpc-v2-cbor`
with `json` and `query` as fallbacks (boto3 1.44 sends JSON, newer SDKs CBOR). Services are named by
their IAM prefix, as in LOCAL_AWS_DENY: ec2, autoscaling, elasticloadbalancing, cloudwatch.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

# SigV4 signing names and other spellings -> IAM prefix.
ALIASES = {"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing", "monitoring": "cloudwatch",
           "GraniteServiceVersion20100801": "cloudwatch"}  # CloudWatch's X-Amz-Target / RPC v2 name

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_RPC_V2 = re.compile(r"/service/([^/]+)/operation/([^/?]+)")


def service_name(raw: str) -> str:
    return ALIASES.get(raw, ALIASES.get(raw.lower(), raw.lower()))


@dataclass(frozen=True)
class Call:
    service: str  # IAM prefix, "" when the request is not signed
    operation: str  # "" when no protocol's marker is found
    protocol: str  # ec2 | query | json | cbor | unknown

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


def identify(path: str, headers, body: bytes) -> Call:
    """The operation of one request, from the markers each protocol puts in it."""
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = service_name(scope.group(1)) if scope else ""
    target = headers.get("X-Amz-Target", "")
    if "." in target:  # AWS JSON 1.0/1.1: `X-Amz-Target: Prefix.Operation`
        prefix, operation = target.rsplit(".", 1)
        return Call(service or service_name(prefix), operation, "json")
    rpc = _RPC_V2.fullmatch(urlsplit(path).path)
    if rpc:  # Smithy RPC v2 CBOR: POST /service/<Service>/operation/<Operation>
        return Call(service or service_name(rpc.group(1)), rpc.group(2), "cbor")
    params = parse_qs(urlsplit(path).query)
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    operation = params.get("Action", [""])[0]
    if not operation:
        return Call(service, "", "unknown")
    return Call(service, operation, "ec2" if service == "ec2" else "query")


# fault -> (code, message, HTTP status, query fault type). EC2's codes: EC2 API Reference "Error codes"
# (RequestLimitExceeded comes with HTTP 503 and "Request limit exceeded."); the others: the "Common
# Errors" page of the Auto Scaling / ELB / CloudWatch API references, and "Rate exceeded" (HTTP 400)
# for throttling. Every code here is in the throttling/transient lists of botocore and the Rust SDK.
EC2_ERRORS = {
    "throttle": ("RequestLimitExceeded", "Request limit exceeded.", 503, "Server"),
    "http500": ("InternalError", "An internal error has occurred.", 500, "Server"),
    "http503": ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503,
                "Server"),
}
QUERY_ERRORS = {
    "throttle": ("Throttling", "Rate exceeded", 400, "Sender"),
    "http500": ("InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.", 500,
                "Receiver"),
    "http503": ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503,
                "Receiver"),
}
XMLNS = {
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "cloudwatch": "http://monitoring.amazonaws.com/doc/2010-08-01/",
}


def error_response(call: Call, fault: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of the service's own answer for `fault` in the request's protocol."""
    request_id = str(uuid.uuid4())
    if call.protocol == "ec2" or (call.service == "ec2" and call.protocol == "unknown"):
        code, message, status, _ = EC2_ERRORS[fault]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
                "</Response>")
        return status, [("Content-Type", "text/xml;charset=UTF-8")], body.encode()
    code, message, status, kind = QUERY_ERRORS[fault]
    ids = [("x-amzn-RequestId", request_id)]
    if call.protocol in ("json", "cbor"):
        # awsQueryCompatible services (CloudWatch) also name the query code in x-amzn-query-error,
        # which botocore and the Rust SDK prefer over the body's __type.
        ids.append(("x-amzn-query-error", f"{code};{kind}"))
        fields = {"__type": code, "message": message}
        if call.protocol == "json":
            return status, [("Content-Type", "application/x-amz-json-1.0"), *ids], json.dumps(fields).encode()
        return status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), *ids], \
            _cbor_map(fields)
    xmlns = XMLNS.get(call.service, "")
    body = (f'<ErrorResponse xmlns="{xmlns}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml"), *ids], body.encode()


def _cbor_text(text: str) -> bytes:
    """A CBOR text string (major type 3), for the short strings of an error body."""
    data = text.encode()
    n = len(data)
    head = bytes([0x60 | n]) if n < 24 else bytes([0x78, n]) if n < 256 else b"\x79" + n.to_bytes(2, "big")
    return head + data


def _cbor_map(fields: dict[str, str]) -> bytes:
    return bytes([0xA0 | len(fields)]) + b"".join(_cbor_text(k) + _cbor_text(v) for k, v in fields.items())

"""Smithy RPC v2 CBOR for CloudWatch, which moto 5.2.5 does not speak: each such request is
translated to the AWS JSON 1.0 request moto answers, and moto's answer back to CBOR.

The current AWS SDK for Rust (aws-sdk-cloudwatch) sends CloudWatch calls in the Smithy RPC v2 CBOR
protocol ("smithy-rpc-v2-cbor", the first protocol of the service model): `POST
/service/GraniteServiceVersion20100801/operation/<Operation>` with `smithy-protocol: rpc-v2-cbor`
and a CBOR body. moto routes CloudWatch by the query `Action` or the JSON `X-Amz-Target` header and
has no CBOR at all, so the request would not even find an operation. boto3 sends AWS JSON 1.0
(botocore prefers `json` among the model's protocols), which moto answers itself; the query protocol
works too.

The translation is shape-driven, in both directions, with botocore's own parsers and serializers
and the botocore CloudWatch model: CBOR request → parameters (RpcV2CBORParser on the input shape) →
JSON request (JSONSerializer) → moto → JSON answer → parameters (JSONParser on the output shape) →
CBOR answer. Timestamps are written as tag 1 + a double, which is what the Rust SDK's decoder
reads (`Decoder::timestamp` wants an f64); botocore would write whole seconds as an integer.
Errors become a CBOR map {"__type", "message"} with moto's `x-amzn-query-error` header kept: for
this awsQueryCompatible service the Rust SDK takes the error code from that header (Smithy
"RPC v2 CBOR protocol", errors; "awsQueryCompatible" trait).
"""

from __future__ import annotations

import functools
import io
import json

import botocore.session
from botocore.parsers import JSONParser, RpcV2CBORParser
from botocore.serialize import JSONSerializer, RpcV2CBORSerializer

# Smithy service shape name (the path's service segment) → botocore service name. CloudWatch is the
# only service bakeroll calls whose SDK speaks CBOR; Auto Scaling, EC2 and ELBv2 are query/ec2.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


@functools.lru_cache(maxsize=None)
def _model(service: str):
    return botocore.session.get_session().get_service_model(service)


class _Cbor(RpcV2CBORSerializer):
    def _serialize_type_timestamp(self, serialized, value, shape, key):
        serialized.extend(self._get_initial_byte(self.TAG_MAJOR_TYPE, 1))
        self._serialize_type_double(serialized, float(self._convert_timestamp_to_str(value)), shape, key)

    def encode(self, value: dict, shape) -> bytes:
        out = bytearray()
        if shape is None:  # an operation without output: an empty map
            out.extend(self._get_initial_byte(self.MAP_MAJOR_TYPE, 0))
        else:
            self._serialize_data_item(out, value, shape)
        return bytes(out)

    def encode_map(self, value: dict[str, str]) -> bytes:
        out = bytearray(self._get_initial_byte(self.MAP_MAJOR_TYPE, len(value)))
        for k, v in value.items():
            self._serialize_type_string(out, k, None, None)
            self._serialize_type_string(out, v, None, None)
        return bytes(out)


def _target(path: str) -> tuple[str, str] | None:
    """(botocore service, operation) of an RPC v2 path /service/{Service}/operation/{Operation}."""
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "service" or parts[2] != "operation":
        return None
    service = SERVICES.get(parts[1])
    return (service, parts[3]) if service else None


def _decode_request(body: bytes, op) -> dict:
    if not body or op.input_shape is None:
        return {}
    parsed = RpcV2CBORParser().parse({"body": body, "headers": {}, "status_code": 200}, op.input_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _answer(op, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    lower = {k.lower(): v for k, v in headers}
    if status < 300:
        parsed = JSONParser().parse({"body": body, "headers": lower, "status_code": status}, op.output_shape)
        parsed.pop("ResponseMetadata", None)
        out = _Cbor().encode(parsed, op.output_shape)
    else:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {}
        code = str(doc.get("__type") or doc.get("code") or status)
        message = str(doc.get("message") or doc.get("Message") or "")
        out = _Cbor().encode_map({"__type": code, "message": message})
    keep = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    keep += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(out)))]
    return out, keep


def wrap(app):
    """The WSGI app, answering RPC v2 CBOR requests for the services in SERVICES."""

    def wsgi(environ, start_response):
        target = _target(environ.get("PATH_INFO", ""))
        if target is None or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        service, operation = target
        model = _model(service)
        if operation not in model.operation_names:
            return app(environ, start_response)  # moto's own "not found"
        op = model.operation_model(operation)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        request = JSONSerializer().serialize_to_request(_decode_request(body, op), op)
        payload = request["body"] if isinstance(request["body"], bytes) else request["body"].encode()
        inner = dict(environ)
        inner.update({
            "PATH_INFO": "/", "RAW_URI": "/", "REQUEST_URI": "/", "QUERY_STRING": "",
            "CONTENT_TYPE": request["headers"]["Content-Type"], "CONTENT_LENGTH": str(len(payload)),
            "HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"], "wsgi.input": io.BytesIO(payload),
        })
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        chunks = app(inner, capture)
        try:
            raw = b"".join(captured.get("written", [])) + b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status_line = captured["status"]
        out, headers = _answer(op, int(status_line.split()[0]), captured["headers"], raw)
        start_response(status_line, headers)
        return [out]

    return wsgi

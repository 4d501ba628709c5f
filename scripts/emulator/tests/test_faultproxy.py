"""scripts/faultproxy in front of a real local AWS, driven with boto3: calls pass through unchanged,
each fault hits the selected call only and in the service's own format, botocore classifies the
throttling errors as throttling, reset-after lets the write happen, seeds reproduce percentages, and
the proxy refuses non-loopback addresses, stays within its bounds and exits after its lifetime."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import boto3
import botocore.model
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from fault_proxy.rules import RuleError, RuleSet, _ranges, document, parse_shorthand
from fault_proxy.wire import identify

from .conftest import SCRIPTS, Server, alive, wait_for

TIME_SCALE = 0.01
FAULTPROXY = SCRIPTS / "faultproxy"


class Proxy:
    """One faultproxy in its own temporary state dir, in front of `upstream`."""

    def __init__(self, upstream: Server):
        self.upstream = upstream
        self._tmp = tempfile.TemporaryDirectory(prefix="faultproxy-test-")
        self.dir = Path(self._tmp.name)
        self.env = dict(upstream.env, FAULTPROXY_DIR=str(self.dir))
        self.endpoint = ""

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(FAULTPROXY), *args], env=self.env, capture_output=True, text=True, check=check)

    def up(self, *args: str) -> "Proxy":
        out = self.run("up", "--upstream", self.upstream.endpoint, "--lifetime", "300", *args).stdout
        assert out.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:"), out
        self.endpoint = out.strip().split("=", 1)[1]
        return self

    def down(self) -> None:
        self.run("down", check=False)
        self._tmp.cleanup()

    def client(self, service: str, attempts: int = 1, **config):
        # botocore's `max_attempts` counts retries; `total_max_attempts` counts the first try too.
        cfg = Config(retries={"mode": "standard", "total_max_attempts": attempts}, **config)
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", config=cfg,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def log(self) -> list[dict]:
        return [json.loads(line) for line in (self.dir / "requests.jsonl").read_text().splitlines()]

    def stats(self) -> dict:
        return json.loads(self.run("stats").stdout)

    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])


@pytest.fixture
def proxy(fresh):
    started: list[Proxy] = []

    def start(*args: str) -> Proxy:
        started.append(Proxy(fresh))
        return started[-1].up(*args)

    yield start
    for p in started:
        p.down()


def _vpc(srv: Server) -> str:
    return srv.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]


def _tags(srv: Server, resource: str) -> dict:
    tags = srv.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def _strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


# --- pass-through and identification ---------------------------------------------------------------

def test_calls_pass_through_unchanged_and_each_is_identified(fresh, proxy):
    p = proxy()
    vpc = _vpc(fresh)
    p.client("ec2").create_tags(Resources=[vpc], Tags=[{"Key": "via", "Value": "proxy"}])
    assert _tags(fresh, vpc) == {"via": "proxy"}
    assert _strip(p.client("ec2").describe_vpcs(VpcIds=[vpc])) == _strip(fresh.client("ec2").describe_vpcs(VpcIds=[vpc]))
    assert _strip(p.client("autoscaling").describe_auto_scaling_groups()) == \
        _strip(fresh.client("autoscaling").describe_auto_scaling_groups())
    assert _strip(p.client("elbv2").describe_target_groups()) == _strip(fresh.client("elbv2").describe_target_groups())
    p.client("cloudwatch").put_metric_alarm(AlarmName="a1", MetricName="m", Namespace="n", Statistic="Average",
                                            Period=60, EvaluationPeriods=1, Threshold=1,
                                            ComparisonOperator="GreaterThanThreshold")
    assert [a["AlarmName"] for a in fresh.client("cloudwatch").describe_alarms()["MetricAlarms"]] == ["a1"]
    seen = [(e["service"], e["operation"], e["protocol"], e["fault"], e["upstream_status"], e["status"])
            for e in p.log()]
    assert seen == [
        ("ec2", "CreateTags", "ec2", None, 200, 200),
        ("ec2", "DescribeVpcs", "ec2", None, 200, 200),
        ("autoscaling", "DescribeAutoScalingGroups", "query", None, 200, 200),
        ("elasticloadbalancing", "DescribeTargetGroups", "query", None, 200, 200),
        ("cloudwatch", "PutMetricAlarm", "json", None, 200, 200),
    ]


def test_identifies_every_protocol():
    def auth(service):
        return {"Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
                                 "SignedHeaders=host, Signature=x"}
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    cases = [
        ("/", {**auth("ec2"), **form}, b"Action=RunInstances&Version=2016-11-15", "ec2:RunInstances/ec2"),
        ("/", {**auth("autoscaling"), **form}, b"Action=StartInstanceRefresh&X=1", "autoscaling:StartInstanceRefresh/query"),
        ("/", {**auth("elasticloadbalancing"), **form}, b"Action=DescribeTargetHealth",
         "elasticloadbalancing:DescribeTargetHealth/query"),
        ("/", {**auth("monitoring"), "X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"}, b"{}",
         "cloudwatch:DescribeAlarms/json"),
        ("/service/GraniteServiceVersion20100801/operation/DescribeAlarms", {}, b"\xa0", "cloudwatch:DescribeAlarms/cbor"),
        ("/?Action=DescribeVpcs", auth("ec2"), b"", "ec2:DescribeVpcs/ec2"),
        ("/moto-api/reset", {}, b"", ":/unknown"),
    ]
    for path, headers, body, expected in cases:
        call = identify(path, headers, body)
        assert f"{call.name}/{call.protocol}" == expected


# --- faults -----------------------------------------------------------------------------------------

THROTTLE_CASES = [
    ("ec2", "describe_vpcs", "RequestLimitExceeded", 503),
    ("autoscaling", "describe_auto_scaling_groups", "Throttling", 400),
    ("elbv2", "describe_load_balancers", "Throttling", 400),
    ("cloudwatch", "describe_alarms", "Throttling", 400),
]


@pytest.mark.parametrize("service,method,code,status", THROTTLE_CASES)
def test_throttle_is_the_services_own_error_and_boto3_retries_it(proxy, service, method, code, status):
    p = proxy("--rule", f"{service}:*=throttle@2,4")
    once = getattr(p.client(service), method)
    once()
    with pytest.raises(ClientError) as err:
        once()
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    context = RetryContext(attempt_number=1, parsed_response=err.value.response)
    assert ThrottledRetryableChecker().is_retryable(context)  # botocore's throttling list, not just any error
    once()
    retried = getattr(p.client(service, attempts=3), method)()  # call 4 is throttled, its retry (5) passes
    assert retried["ResponseMetadata"]["RetryAttempts"] == 1
    assert [(e["n"], e["fault"]) for e in p.log()] == [(1, None), (2, "throttle"), (3, None), (4, "throttle"),
                                                        (5, None)]


def test_throttle_in_smithy_rpc_v2_cbor(proxy, monkeypatch):
    # CloudWatch's first protocol; boto3 prefers JSON, so make it pick CBOR as newer SDKs do.
    order = ("smithy-rpc-v2-cbor",) + tuple(x for x in botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
                                            if x != "smithy-rpc-v2-cbor")
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order)
    p = proxy("--rule", "DescribeAlarms=throttle@1")
    with pytest.raises(ClientError) as err:
        p.client("cloudwatch").describe_alarms()
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    [entry] = p.log()
    assert (entry["service"], entry["operation"], entry["protocol"]) == ("cloudwatch", "DescribeAlarms", "cbor")


@pytest.mark.parametrize("service,method,fault,code,status", [
    ("ec2", "describe_vpcs", "http500", "InternalError", 500),
    ("ec2", "describe_vpcs", "http503", "ServiceUnavailable", 503),
    ("autoscaling", "describe_auto_scaling_groups", "http500", "InternalFailure", 500),
    ("autoscaling", "describe_auto_scaling_groups", "http503", "ServiceUnavailable", 503),
])
def test_server_errors_are_service_shaped_and_retried(proxy, service, method, fault, code, status):
    p = proxy("--rule", f"{service}:*={fault}@1-2")
    with pytest.raises(ClientError) as err:
        getattr(p.client(service), method)()
    assert (err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        (code, status)
    assert getattr(p.client(service, attempts=2), method)()["ResponseMetadata"]["RetryAttempts"] == 1
    assert [e["fault"] for e in p.log()] == [fault, fault, None]


def test_reset_before_never_reaches_aws(fresh, proxy):
    vpc = _vpc(fresh)
    p = proxy("--rule", "CreateTags=reset-before@1", "--rule", "DescribeVpcs=reset-before@1")
    with socket.create_connection(("127.0.0.1", p.port()), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request\r\n"
                     b"Content-Length: 19\r\n\r\nAction=DescribeVpcs")
        with pytest.raises(ConnectionResetError):  # a TCP reset (SO_LINGER 0): an orderly close reads b""
            sock.recv(1)
    ec2 = p.client("ec2")
    with pytest.raises(ConnectionClosedError):
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "1"}])
    assert _tags(fresh, vpc) == {}
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "2"}])  # only the selected call
    assert _tags(fresh, vpc) == {"k": "2"}
    first = p.log()[1]
    assert (first["operation"], first["fault"], first.get("upstream_status"), first["status"]) == \
        ("CreateTags", "reset-before", None, None)


def test_reset_after_lets_the_write_happen_and_loses_the_answer(fresh, proxy):
    vpc = _vpc(fresh)
    p = proxy("--rule", "CreateTags=reset-after@1")
    with pytest.raises(ConnectionClosedError):
        p.client("ec2").create_tags(Resources=[vpc], Tags=[{"Key": "applied", "Value": "yes"}])
    assert _tags(fresh, vpc) == {"applied": "yes"}
    [entry] = p.log()
    assert (entry["fault"], entry["upstream_status"], entry["status"]) == ("reset-after", 200, None)
    assert p.stats()["operations"]["ec2:CreateTags"] == {"calls": 1, "forwarded": 1, "faults": {"reset-after": 1}}


def test_delays_go_past_the_client_timeout(fresh, proxy):
    vpc = _vpc(fresh)
    p = proxy("--rule", "DescribeVpcs=delay:1.5@1", "--rule", "DescribeVpcs=delay:0.4@3",
              "--rule", "CreateTags=delay:3:request@1", "--rule", "CreateTags=delay:0.2:drop@2")
    impatient = p.client("ec2", read_timeout=0.5)
    with pytest.raises(ReadTimeoutError):  # answer held past the read timeout
        impatient.describe_vpcs()
    impatient.describe_vpcs()  # call 2: not delayed
    t0 = time.monotonic()
    p.client("ec2", read_timeout=5).describe_vpcs()  # call 3: delayed, then answered
    assert time.monotonic() - t0 >= 0.4
    with pytest.raises(ReadTimeoutError):  # the request itself is held (3 s): the client gives up first...
        p.client("ec2", read_timeout=0.3).create_tags(Resources=[vpc], Tags=[{"Key": "late", "Value": "1"}])
    assert _tags(fresh, vpc) == {}
    wait_for(lambda: _tags(fresh, vpc) == {"late": "1"}, timeout=10, what="the late request")  # ...AWS gets it
    with pytest.raises(ConnectionClosedError):  # forwarded, held, then dropped
        p.client("ec2", read_timeout=5).create_tags(Resources=[vpc], Tags=[{"Key": "dropped", "Value": "1"}])
    assert _tags(fresh, vpc)["dropped"] == "1"
    delayed = sorted((e for e in p.log() if e["fault"] == "delay"), key=lambda e: e["seq"])  # logged when over
    assert [e["ms"] >= s for e, s in zip(delayed, (1500, 400, 3000, 200))] == [True] * 4


def test_inflight_lists_a_held_call_until_it_is_over(proxy):
    p = proxy("--rule", "DescribeVpcs=delay:1.5:request@1")

    def inflight() -> list[dict]:
        conn = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=5)
        conn.request("GET", "/__faultproxy/inflight")
        return json.loads(conn.getresponse().read())

    assert inflight() == []
    held = threading.Thread(target=p.client("ec2", read_timeout=5).describe_vpcs)
    held.start()
    seen = wait_for(inflight, timeout=5, what="the held call in flight")
    assert [(e["operation"], e["n"], e["fault"]) for e in seen] == [("DescribeVpcs", 1, "delay")]
    held.join()
    assert inflight() == []
    assert [e["seq"] for e in p.log()] == [seen[0]["seq"]]


def test_percentages_are_reproducible_with_a_seed(proxy):
    def pattern(seed: int) -> list[bool]:
        p = proxy("--rule", "DescribeVpcs=throttle@30%", "--seed", str(seed))
        ec2, out = p.client("ec2"), []
        for _ in range(30):
            try:
                ec2.describe_vpcs()
                out.append(False)
            except ClientError:
                out.append(True)
        assert p.stats()["faults"].get("throttle", 0) == sum(out)
        return out

    first, again, other = pattern(7), pattern(7), pattern(8)
    assert first == again
    assert 3 <= sum(first) <= 18  # some, not all: 30 % of 30 calls
    assert other != first


# --- run-time rules, control endpoint, bounds, refusals, lifetime -----------------------------------

def test_rules_replaced_at_run_time_and_control_never_forwarded(proxy):
    p = proxy()
    ec2 = p.client("ec2")
    ec2.describe_vpcs()
    rules = p.dir / "rules.json"
    rules.write_text(json.dumps({"rules": [{"op": "ec2:DescribeVpcs", "fault": "http503", "calls": [2]}]}))
    replaced = json.loads(p.run("rules", str(rules)).stdout)
    assert replaced["rules"] == [{"op": "ec2:DescribeVpcs", "fault": "http503", "calls": [2]}]
    ec2.describe_vpcs()  # the new rule's call 1
    with pytest.raises(ClientError) as err:
        ec2.describe_vpcs()
    assert err.value.response["Error"]["Code"] == "ServiceUnavailable"
    bad = p.run("rules", "--rule", "DescribeVpcs=explode@1", check=False)
    assert bad.returncode == 2 and "explode" in bad.stderr
    assert json.loads(p.run("rules").stdout) == replaced  # unchanged
    conn = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=5)
    conn.request("POST", "/__faultproxy/rules", body=b"[{\"op\": \"*\", \"fault\": \"nope\"}]")
    answer = conn.getresponse()
    assert answer.status == 400 and "fault" in json.loads(answer.read())["error"]
    conn = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=5)
    conn.request("GET", "/__faultproxy/anything?Action=DescribeVpcs")
    answer = conn.getresponse()
    assert answer.status == 404 and "control endpoint" in json.loads(answer.read())["error"]
    assert [e["operation"] for e in p.log()] == ["DescribeVpcs"] * 3  # control requests are not AWS calls


def test_bounds_connections_and_body_size(proxy):
    p = proxy("--max-connections", "1", "--max-body", "1000", "--rule", "DescribeVpcs=delay:2@1")
    held = threading.Thread(target=p.client("ec2", read_timeout=10).describe_vpcs)
    held.start()
    time.sleep(0.5)  # the one allowed connection is held by the delay
    conn = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=5)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        conn.request("GET", "/__faultproxy/health")
        conn.getresponse()
    held.join()
    conn = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=5)
    conn.request("POST", "/", body=b"Action=DescribeVpcs&" + b"x" * 2000,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status == 413
    log = p.log()
    assert [e.get("refused", "").split(" ")[0] for e in log] == ["over", "", ""]
    assert (log[1]["fault"], log[1]["upstream_status"], log[1]["status"]) == ("delay", 200, 200)
    assert log[2]["status"] == 413 and "upstream_status" not in log[2]


@pytest.mark.parametrize("args", [
    ["--upstream", "http://192.0.2.1:80"],  # TEST-NET-1: refused before any packet is sent
    ["--upstream", "http://localhost:{port}"],
    ["--upstream", "http://127.0.0.2:{port}"],
    ["--upstream", "https://127.0.0.1:{port}"],
    ["--bind", "0.0.0.0"],
    ["--bind", "::"],
])
def test_refuses_anything_but_loopback(fresh, args):
    p = Proxy(fresh)
    try:
        port = fresh.endpoint.rsplit(":", 1)[1]
        done = p.run("up", *[a.format(port=port) for a in args], check=False)
        assert done.returncode == 2, done
        assert "127.0.0.1" in done.stderr
        assert p.run("status", check=False).returncode == 3
        assert not (p.dir / "proxy.pid").exists()
    finally:
        p.down()


def test_exits_after_its_lifetime(fresh):
    p = Proxy(fresh)
    try:
        p.up("--lifetime", "0.5")
        pid = int((p.dir / "proxy.pid").read_text())
        wait_for(lambda: not alive(pid), timeout=10, what="the proxy to exit")
        assert p.run("status", check=False).returncode == 3
        assert not (p.dir / "proxy.pid").exists() and not (p.dir / "proxy.port").exists()
        assert "lifetime of 0.5 s is over" in (p.dir / "proxy.log").read_text()
    finally:
        p.down()


def test_rule_syntax():
    assert parse_shorthand("autoscaling:StartInstanceRefresh=throttle@1") == \
        {"op": "autoscaling:StartInstanceRefresh", "fault": "throttle", "calls": "1"}
    assert parse_shorthand("*=delay:40:request:drop@25%") == \
        {"op": "*", "fault": "delay", "seconds": 40.0, "hold": "request", "then": "drop", "percent": 25.0}
    assert _ranges([1, "3-4", "6-"]) == [(1, 1), (3, 4), (6, None)] == _ranges("1,3-4,6-")
    assert _ranges("all") is None
    for bad in ([{"op": "X", "fault": "throttle", "call": 1}], [{"op": "X", "fault": "boom"}],
                [{"op": "X", "fault": "throttle", "calls": "0"}], [{"op": "X", "fault": "delay"}],
                [{"op": "X", "fault": "throttle", "percent": 101}]):
        with pytest.raises(RuleError):
            RuleSet.from_document(document([json.dumps(bad)], [], None))
    # Every rule counts its own matches; the first that selects the call applies.
    rules = RuleSet.from_document(document([], ["elbv2:*=http500@2-3,5-", "*=throttle@3"], None))
    call = identify("/", {"Authorization": "Credential=a/20260101/us-east-1/elasticloadbalancing/aws4_request",
                          "Content-Type": "application/x-www-form-urlencoded"}, b"Action=DescribeTargetHealth")
    picked = [(rule.fault if rule else None) for _, _, rule in (rules.pick(call) for _ in range(6))]
    assert picked == [None, "http500", "http500", None, "http500", "http500"]
    globbed = RuleSet.from_document(document([], ["autoscaling:Describe*=throttle"], None))
    assert globbed.pick(call)[2] is None  # another service
    asg = identify("/", {"Authorization": "Credential=a/20260101/us-east-1/autoscaling/aws4_request",
                         "Content-Type": "application/x-www-form-urlencoded"}, b"Action=DescribeScalingActivities")
    assert globbed.pick(asg)[2].fault == "throttle"

"""The `scripts/local-aws` command and the protocol-level behaviour: idempotent `up`, several
servers at once, `down` stopping only its own process, `dump`, AWS-shaped errors, LOCAL_AWS_DENY and
the request log (LOCAL_AWS_LOG_REQUESTS), and servers forked from the forkserver."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .conftest import LOCAL_AWS, Server, alive, wait_for


def test_up_is_idempotent_and_down_stops_only_its_own_server():
    a, b = Server(), Server()
    try:
        a.up()
        env1 = (a.dir / "env").read_text()
        pid = int((a.dir / "server.pid").read_text())
        assert a.run("up").stdout == env1  # reused, same port
        assert int((a.dir / "server.pid").read_text()) == pid
        for key in ("AWS_ENDPOINT_URL=http://127.0.0.1:", "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
                    "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_EC2_METADATA_DISABLED=true"):
            assert f"export {key}" in env1
        b.up()
        assert b.endpoint != a.endpoint
        assert a.run("status").returncode == 0
        a.down()
        assert not alive(pid)
        assert a.run("status", check=False).returncode == 3
        assert b.run("status").returncode == 0  # the other server is untouched
    finally:
        a.down()
        b.down()


def test_dump_prints_moto_state(fresh):
    fresh.client("ec2").create_vpc(CidrBlock="10.1.0.0/16")
    data = json.loads(fresh.run("dump", "--compact").stdout)
    assert any(v["cidr_block"] == "10.1.0.0/16" for v in data["ec2"]["VPC"])


def test_unimplemented_action_is_an_xml_error_not_html(fresh):
    asg = fresh.client("autoscaling")
    with pytest.raises(ClientError) as err:
        asg.describe_traffic_sources(AutoScalingGroupName="x")
    assert err.value.response["Error"]["Code"] == "InvalidAction"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("service,call", [
    ("ec2", lambda c: c.describe_instances()),
    ("autoscaling", lambda c: c.describe_auto_scaling_groups()),
    ("elbv2", lambda c: c.describe_load_balancers()),
    ("cloudwatch", lambda c: c.describe_alarms()),
])
def test_unknown_region_is_a_signature_error(fresh, service, call):
    client = boto3.client(service, endpoint_url=fresh.endpoint, region_name="xx-fake-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        call(client)
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Credential should be scoped to a valid region, not 'xx-fake-1'" in err.value.response["Error"]["Message"]
    assert call(fresh.client(service))["ResponseMetadata"]["HTTPStatusCode"] == 200  # a real region still works


def test_global_services_answer_in_any_region(fresh):
    """STS is global in moto (one backend): a web identity exchange signed for us-east-1 is served."""
    sts = boto3.client("sts", endpoint_url=fresh.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="test-session",
                                              WebIdentityToken="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert creds["Credentials"]["AccessKeyId"]


def test_deny_list():
    srv = Server(LOCAL_AWS_DENY="ec2:CreateImage,autoscaling:StartInstanceRefresh").up()
    try:
        ec2, asg = srv.client("ec2"), srv.client("autoscaling")
        for dry in (True, False):
            with pytest.raises(ClientError) as err:
                ec2.create_image(InstanceId="i-12345678", Name="xyz", DryRun=dry)
            assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as err:
            asg.start_instance_refresh(AutoScalingGroupName="x")
        assert err.value.response["Error"]["Code"] == "AccessDenied"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as err:  # allowed actions still work (DryRun answers DryRunOperation)
            ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, DryRun=True)
        assert err.value.response["Error"]["Code"] == "DryRunOperation"
    finally:
        srv.down()


def test_request_log_names_service_and_action():
    srv = Server(LOCAL_AWS_LOG_REQUESTS="1", LOCAL_AWS_DENY="autoscaling:StartInstanceRefresh").up()
    try:
        asg, ec2, elbv2 = srv.client("autoscaling"), srv.client("ec2"), srv.client("elbv2")
        for _ in range(3):
            asg.describe_auto_scaling_groups()
        ec2.describe_instances()
        elbv2.describe_load_balancers()
        with pytest.raises(ClientError):
            asg.start_instance_refresh(AutoScalingGroupName="x")  # denied: logged with its 403
        with pytest.raises(ClientError):
            asg.describe_instance_refreshes(AutoScalingGroupName="x", MaxRecords=101)  # a 400
        status, _, _, _ = _cloudwatch_rpcv2(srv.endpoint, "DescribeAlarms", {})  # the Rust SDK's protocol
        assert status == 200
        lines = re.findall(r"request (\S+) (\d{3}) [\d.]+ ms", (srv.dir / "server.log").read_text())
        counts = Counter(action for action, _ in lines)
        assert counts == {"autoscaling:DescribeAutoScalingGroups": 3, "ec2:DescribeInstances": 1,
                          "elasticloadbalancing:DescribeLoadBalancers": 1, "autoscaling:StartInstanceRefresh": 1,
                          "autoscaling:DescribeInstanceRefreshes": 1, "cloudwatch:DescribeAlarms": 1}, lines
        statuses = dict((action, code) for action, code in lines)
        assert statuses["autoscaling:StartInstanceRefresh"] == "403"
        assert statuses["autoscaling:DescribeInstanceRefreshes"] == "400"
        assert statuses["ec2:DescribeInstances"] == "200"
    finally:
        srv.down()


def _cloudwatch_rpcv2(endpoint: str, operation: str, params: dict):
    """A CloudWatch call in Smithy RPC v2 CBOR, as the Rust SDK sends it: POST
    /service/GraniteServiceVersion20100801/operation/<op>, smithy-protocol: rpc-v2-cbor, CBOR body."""
    import urllib.error
    import urllib.request

    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import RpcV2CBORParser
    from botocore.serialize import RpcV2CBORSerializer

    op = botocore.session.get_session().get_service_model("cloudwatch").operation_model(operation)
    req = RpcV2CBORSerializer().serialize_to_request(params, op)
    assert req["url_path"] == f"/service/GraniteServiceVersion20100801/operation/{operation}"
    signed = AWSRequest(method="POST", url=endpoint + req["url_path"], data=req["body"], headers=req["headers"])
    SigV4Auth(Credentials("testing", "testing"), "monitoring", "us-east-1").add_auth(signed)
    http = urllib.request.Request(signed.url, data=req["body"], headers=dict(signed.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as resp:
            status, headers, body = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, dict(e.headers), e.read()
    headers = {k.lower(): v for k, v in headers.items()}
    parsed = RpcV2CBORParser().parse({"body": body, "headers": headers, "status_code": status}, op.output_shape)
    return status, headers, body, parsed


def test_cloudwatch_answers_smithy_rpc_v2_cbor(fresh):
    ok = _cloudwatch_rpcv2(fresh.endpoint, "PutMetricAlarm", {
        "AlarmName": "cbor-alarm", "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_ELB_5XX_Count",
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold"})
    assert ok[0] == 200 and ok[1]["content-type"] == "application/cbor" and ok[1]["smithy-protocol"] == "rpc-v2-cbor"
    status, headers, body, parsed = _cloudwatch_rpcv2(fresh.endpoint, "DescribeAlarms", {"AlarmNames": ["cbor-alarm"]})
    assert status == 200 and headers["content-type"] == "application/cbor"
    alarm = parsed["MetricAlarms"][0]
    assert alarm["AlarmName"] == "cbor-alarm" and alarm["StateValue"] == "OK" and alarm["Threshold"] == 10.0
    assert alarm["StateUpdatedTimestamp"].year >= 2024
    assert b"\xc1\xfb" in body  # timestamps are tag 1 + a double: the Rust SDK's decoder reads an f64
    # the same alarm, seen through boto3 (AWS JSON 1.0), after a CBOR SetAlarmState
    assert _cloudwatch_rpcv2(fresh.endpoint, "SetAlarmState", {
        "AlarmName": "cbor-alarm", "StateValue": "ALARM", "StateReason": "cbor"})[0] == 200
    cw = fresh.client("cloudwatch")
    assert cw.meta.service_model.resolved_protocol == "json"
    assert cw.describe_alarms(AlarmNames=["cbor-alarm"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    # errors: a CBOR map with __type, and the query-compatible code header the Rust SDK reads
    status, headers, body, parsed = _cloudwatch_rpcv2(fresh.endpoint, "SetAlarmState", {
        "AlarmName": "no-such-alarm", "StateValue": "ALARM", "StateReason": "x"})
    assert status == 404 and headers["content-type"] == "application/cbor"
    assert headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    assert parsed["Error"]["Code"] == "ResourceNotFound"


def test_cloudwatch_answers_the_query_protocol(fresh):
    import urllib.parse
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fresh.client("cloudwatch").put_metric_alarm(
        AlarmName="q-alarm", Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average", Period=60,
        EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold")
    data = urllib.parse.urlencode({"Action": "DescribeAlarms", "Version": "2010-08-01",
                                   "AlarmNames.member.1": "q-alarm"}).encode()
    req = AWSRequest(method="POST", url=fresh.endpoint + "/", data=data,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("testing", "testing"), "monitoring", "us-east-1").add_auth(req)
    with urllib.request.urlopen(urllib.request.Request(req.url, data=data, headers=dict(req.headers.items()),
                                                       method="POST"), timeout=30) as resp:
        body = resp.read().decode()
    assert "<DescribeAlarmsResponse" in body and "<AlarmName>q-alarm</AlarmName>" in body


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_a_server_forked_from_the_forkserver_is_a_fresh_server_with_its_own_settings():
    """`scripts/local-aws forkserver SOCKET`: every `up` with LOCAL_AWS_FORKSERVER=SOCKET is a fork of it,
    with the settings of that `up`'s environment, its own state and its own random numbers; it exits
    when its socket goes."""
    home = Path(tempfile.mkdtemp(prefix="fs-"))  # short: a Unix socket path has at most 107 bytes
    sock = home / "fs.sock"
    with open(home / "forkserver.log", "wb") as log:
        forkserver = subprocess.Popen([str(LOCAL_AWS), "forkserver", str(sock)], stdout=log, stderr=log)
    a = Server(LOCAL_AWS_FORKSERVER=str(sock), LOCAL_AWS_DENY="ec2:CreateSecurityGroup")
    b = Server(LOCAL_AWS_FORKSERVER=str(sock))
    try:
        wait_for(sock.exists, what="the forkserver's socket")
        a.up()
        b.up()
        for srv in (a, b):
            assert "did not answer" not in srv.up_output.stderr
            assert _parent(int((srv.dir / "server.pid").read_text())) == forkserver.pid
        ec2_a, ec2_b = a.client("ec2"), b.client("ec2")
        with pytest.raises(ClientError) as denied:  # a's deny list is a's alone
            ec2_a.create_security_group(GroupName="web", Description="web")
        assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"
        made = ec2_b.create_security_group(GroupName="web", Description="web")["GroupId"]
        assert made not in {g["GroupId"] for g in ec2_a.describe_security_groups()["SecurityGroups"]}
        # Random numbers seeded afresh in each fork: their default VPCs get different ids.
        vpcs = [c.describe_vpcs()["Vpcs"][0]["VpcId"] for c in (ec2_a, ec2_b)]
        assert vpcs[0] != vpcs[1]
        pid = int((a.dir / "server.pid").read_text())
        a.down()
        assert not alive(pid)
        sock.unlink()
        wait_for(lambda: forkserver.poll() is not None, timeout=10, what="the forkserver to exit")
    finally:
        a.down()
        b.down()
        if forkserver.poll() is None:
            forkserver.kill()
        forkserver.wait()
        shutil.rmtree(home, ignore_errors=True)


def test_up_starts_a_server_itself_when_the_forkserver_does_not_answer():
    srv = Server(LOCAL_AWS_FORKSERVER="/nonexistent/fs.sock")
    try:
        srv.up()
        assert "did not answer; starting a server the usual way" in srv.up_output.stderr
        assert srv.client("ec2").describe_vpcs()["Vpcs"]
    finally:
        srv.down()


PROGRAM = """
import os, sys
import boto3
data = sys.stdin.read()
print("out", sys.argv[1:], os.environ.get("FORK_TEST"), os.getcwd(), data.strip(), flush=True)
print("err", file=sys.stderr)
boto3.client("sts", region_name="us-east-1")  # the warm models: a client is made without reading files
if sys.argv[1] == "sleep":
    import time
    time.sleep(60)
sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else 0)
"""


def test_python_runs_a_program_in_a_fork_with_the_callers_streams_environment_and_exit_code():
    """`scripts/local-aws python SCRIPT ARGS` with LOCAL_AWS_FORKSERVER set: the program runs in a fork of
    the forkserver, as `python SCRIPT ARGS` would (argv, environment, working directory, standard streams,
    exit code); killing the caller stops it; without a forkserver it runs the usual way."""
    home = Path(tempfile.mkdtemp(prefix="fs-"))
    sock = home / "fs.sock"
    script = home / "program.py"
    script.write_text(PROGRAM)
    with open(home / "forkserver.log", "wb") as log:
        forkserver = subprocess.Popen([str(LOCAL_AWS), "forkserver", str(sock)], stdout=log, stderr=log)
    try:
        wait_for(sock.exists, timeout=60, what="the forkserver's socket")
        for fs in (str(sock), None):
            env = {k: v for k, v in os.environ.items() if k != "LOCAL_AWS_FORKSERVER"}
            env["FORK_TEST"] = "yes"
            if fs:
                env["LOCAL_AWS_FORKSERVER"] = fs
            out = subprocess.run([str(LOCAL_AWS), "python", str(script), "7", "a b"], input="hello\n", env=env,
                                 cwd=home, capture_output=True, text=True, timeout=60)
            assert out.returncode == 7, out.stderr
            assert out.stdout == f"out ['7', 'a b'] yes {home} hello\n", out.stdout
            assert out.stderr.strip().endswith("err"), out.stderr
        # boto3 clients in a fork read no model file: the forkserver's loader has them already.
        env["LOCAL_AWS_FORKSERVER"] = str(sock)
        out = subprocess.run([str(LOCAL_AWS), "python", "-c", COUNT_MODEL_READS], env=env, cwd=home,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout == "model files read: 0\n", (out.stdout, out.stderr)
        # The caller killed: the forked program goes too.
        caller = subprocess.Popen([str(LOCAL_AWS), "python", str(script), "sleep"], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, text=True)
        assert caller.stdout.readline().startswith("out ['sleep']")
        program = _children(forkserver.pid)
        assert len(program) == 1, "one fork of the forkserver runs the program"
        caller.kill()
        caller.wait()
        wait_for(lambda: not alive(program[0]), timeout=10, what="the forked program to stop with its caller")
    finally:
        forkserver.kill()
        forkserver.wait()
        shutil.rmtree(home, ignore_errors=True)


COUNT_MODEL_READS = """
import boto3, botocore.loaders
reads = []
load = botocore.loaders.JSONFileLoader._load_file
botocore.loaders.JSONFileLoader._load_file = lambda self, path, *a: reads.append(path) or load(self, path, *a)
kw = dict(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9", aws_access_key_id="a", aws_secret_access_key="b")
boto3.client("ec2", **kw)
boto3.session.Session().client("autoscaling", **kw)
print("model files read:", len(reads))
"""


def _children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and alive(int(p)) and _ppid(int(p)) == pid]


def _ppid(pid: int) -> int:
    try:
        return _parent(pid)
    except OSError:
        return -1

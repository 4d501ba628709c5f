"""speedups.py changes no answer: the same reads of the same state, answered by moto without and then with
the speed-ups, byte for byte (request ids aside), and a reset still empties every backend.

Runs moto in a child process (mock_aws, no server): the speed-ups patch moto and Flask for the life of a
process, and the pytest worker must stay as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2]

PROGRAM = r"""
import json, re, sys
sys.path.insert(0, sys.argv[1])
import boto3
from moto import mock_aws
from moto.core.base_backend import BackendDict

ACCOUNT = "123456789012"
bodies = []

def keep(http_response, **_):
    bodies.append(re.sub(rb"(<RequestId>|<requestId>)[^<]*", rb"\1", http_response.content))

def clients(region="us-east-1"):
    out = {}
    for service in ("ec2", "autoscaling", "elbv2", "cloudwatch"):
        c = boto3.client(service, region_name=region, aws_access_key_id="t", aws_secret_access_key="t")
        c.meta.events.register("after-call", lambda http_response, **kw: keep(http_response))
        out[service] = c
    return out

def world(c):
    ec2, asg, elb, cw = c["ec2"], c["autoscaling"], c["elbv2"], c["cloudwatch"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    lt = ec2.create_launch_template(LaunchTemplateName="shop-web", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"})
    tg = elb.create_target_group(Name="shop-web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-web", MinSize=2, MaxSize=4, DesiredCapacity=2,
                                  LaunchTemplate={"LaunchTemplateName": "shop-web", "Version": "$Latest"},
                                  VPCZoneIdentifier=subnet, TargetGroupARNs=[tg],
                                  Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}])
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "build"}]}])
    image = ec2.create_image(InstanceId=inst["Instances"][0]["InstanceId"], Name="shop-abc1234",
                             TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "bakeroll:release", "Value": "abc1234"}]}])
    cw.put_metric_alarm(AlarmName="shop-web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    return {"tg": tg, "image": image["ImageId"], "lt": lt["LaunchTemplate"]["LaunchTemplateId"]}

def reads(c, ids):
    ec2, asg, elb, cw = c["ec2"], c["autoscaling"], c["elbv2"], c["cloudwatch"]
    bodies.clear()
    ec2.describe_images(ImageIds=[ids["image"]])
    ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:bakeroll:release", "Values": ["abc1234"]}])
    ec2.describe_instances()
    ec2.describe_launch_template_versions(LaunchTemplateId=ids["lt"])
    ec2.describe_tags()
    asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])
    asg.describe_tags()
    elb.describe_target_groups()
    elb.describe_target_health(TargetGroupArn=ids["tg"])
    cw.describe_alarms()
    for call in (lambda: ec2.describe_images(ImageIds=["ami-00000000000000000"]),
                 lambda: asg.describe_instance_refreshes(AutoScalingGroupName="nope"),
                 lambda: elb.describe_target_health(TargetGroupArn=ids["tg"] + "x")):
        try:
            call()
        except Exception:
            pass  # an error answer: its body is kept all the same
    # And the state dump (the health reads' objects left out: the speed-ups do not keep them).
    from moto.elbv2.models import FakeHealthStatus
    from moto.moto_api._internal.responses import MotoAPIResponse
    FakeHealthStatus.instances_tracked.clear()
    bodies.append(MotoAPIResponse().model_data(None, "", {})[2].encode())
    return [b.decode() for b in bodies]

with mock_aws():
    c = clients()
    ids = world(c)
    before = reads(c, ids)
    from emulator import speedups
    speedups.install()
    after = reads(c, ids)
    # A reset empties every backend, also one that another service's re-initialisation made during a
    # reset (moto then leaves it off its list of backends to reset), however often the state is read.
    west = clients("us-west-2")
    BackendDict.reset()
    for round in range(2):
        for cl in (c, west):
            world(cl)
        BackendDict.reset()
    for region, cl in (("us-east-1", c), ("us-west-2", west)):
        left = cl["ec2"].describe_images(Owners=["self"])["Images"]
        groups = cl["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"]
        assert not left and not groups, f"{region} after reset: {left} {groups}"
print(json.dumps({"before": before, "after": after}))
"""


def test_the_speedups_change_no_answer_and_a_reset_still_empties_everything():
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(SCRIPTS)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    answers = json.loads(out.stdout.splitlines()[-1])
    before = answers["before"]
    assert len(before) >= 12, "the reads were answered"
    assert any("shop-abc1234" in b for b in before), "the image is among the answers"
    assert any("<Errors>" in b for b in before) and any("<ErrorResponse" in b for b in before), "and errors, EC2's and Query's"
    assert '"name": "shop-abc1234"' in before[-1] and '"FakeAutoScalingGroup": [{' in before[-1], "and the dump"
    for before, after in zip(answers["before"], answers["after"]):
        assert before == after
    assert len(answers["after"]) == len(answers["before"])

#!/usr/bin/env bash
# aws-cli-status.sh: the baseline for `bakeroll status`: the same reads, made the way a team scripts them
# with the AWS CLI (one `aws` process per call, one after another), printed as they come.
#
#   aws-cli-status.sh GROUP
#
# The reads are the ones `bakeroll status` makes for one group (counted from the local AWS's request log
# by scripts/bench/run): describe-auto-scaling-groups (which also gives the launch template, the target
# groups and the instances), describe-launch-template-versions (every version: where the release marks
# are), describe-instance-refreshes, describe-target-health per target group, describe-instances of the
# members. It only prints them: unlike bakeroll it does not say which release runs or whether the fleet
# is verified.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 GROUP" >&2
  exit 2
fi
group=$1
if [[ "${AWS_ENDPOINT_URL:-}" != http://127.0.0.1:* ]]; then
  echo "aws-cli-status: AWS_ENDPOINT_URL must point at the local AWS (http://127.0.0.1:PORT)" >&2
  exit 2
fi

read -r template target_groups instances < <(aws autoscaling describe-auto-scaling-groups \
  --auto-scaling-group-names "$group" --output text \
  --query 'AutoScalingGroups[0].[LaunchTemplate.LaunchTemplateId, join(`,`, TargetGroupARNs), join(`,`, Instances[].InstanceId)]')
echo "group $group: launch template $template"
aws ec2 describe-launch-template-versions --launch-template-id "$template" --output text \
  --query 'LaunchTemplateVersions[].[VersionNumber, DefaultVersion, LaunchTemplateData.ImageId, VersionDescription]'
aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$group" --max-records 1 --output text \
  --query 'InstanceRefreshes[].[InstanceRefreshId, Status, PercentageComplete]'
IFS=, read -r -a arns <<<"$target_groups"
for arn in "${arns[@]}"; do
  echo "target group ${arn##*:targetgroup/}"
  aws elbv2 describe-target-health --target-group-arn "$arn" --output text \
    --query 'TargetHealthDescriptions[].[Target.Id, TargetHealth.State]'
done
IFS=, read -r -a ids <<<"$instances"
if ((${#ids[@]})); then
  aws ec2 describe-instances --instance-ids "${ids[@]}" --output text \
    --query 'Reservations[].Instances[].[InstanceId, ImageId, State.Name]'
fi

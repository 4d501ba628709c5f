#!/usr/bin/env bash
# aws-cli-deploy.sh: the baseline the benchmark compares bakeroll with, i.e. the case study's AMI deploy
# written the way a team writes it with the AWS CLI in bash: no health gate, no rollback, one `aws`
# process per API call.
#
#   aws-cli-deploy.sh GROUP BUILD_INSTANCE_ID AMI_NAME POLL_INTERVAL_SECONDS
#
# 1. create-image from BUILD_INSTANCE_ID (already provisioned and stopped: see prepare-build-instance.sh)
# 2. poll describe-images until the image is available
# 3. create-launch-template-version from the group's current version (SourceVersion), only ImageId changed
# 4. start-instance-refresh with that version as DesiredConfiguration
# 5. poll describe-instance-refreshes until a terminal status: exit 0 on Successful, 1 otherwise
#
# Refresh preferences are pipeline/local.toml's [environments.local]: MinHealthyPercentage 100,
# MaxHealthyPercentage 200, InstanceWarmup 60, SkipMatching true. Its checkpoints and bake time are left
# out by default: without a health gate nobody looks at the fleet during the pause, so a team would not
# set them. To give AWS the same timeline as bakeroll, set REFRESH_CHECKPOINTS=50,100
# REFRESH_CHECKPOINT_DELAY=30 REFRESH_BAKE_TIME=60 (AWS seconds).
#
# Stdout: image_id=, launch_template_id=, launch_template_version=, instance_refresh_id=, status= lines.
# Progress goes to stderr. `aws` is whatever is first on PATH (the benchmark puts the pinned AWS CLI v1
# from scripts/baseline/install-awscli there); the endpoint and credentials come from the environment.
#
# What bakeroll does and this script does not (the point of the comparison):
# - no health gate: it trusts the refresh's own ELB check; nothing watches target health after an
#   instance is InService, so a release that breaks after warm-up is reported Successful;
# - no rollback: a Failed or Cancelled refresh leaves a mixed fleet and the script just exits 1; there is
#   no RollbackInstanceRefresh, no AutoRollback and no check of what the fleet runs afterwards;
# - no pre-flight: it does not check that the group exists, uses a launch template (a
#   MixedInstancesPolicy group fails at step 3), or has no refresh in progress (start-instance-refresh
#   then fails with InstanceRefreshInProgress after the AMI and the template version were made);
# - no cleanup: on failure the AMI, its snapshot and the template version stay; the build instance is
#   never terminated; old AMIs are never pruned; nothing records which release is deployed;
# - no idempotency: a rerun with the same AMI name fails with InvalidAMIName.Duplicate;
# - retries are only the CLI's own (legacy mode: up to 5 attempts on throttling and 5xx);
# - one deadline for the whole run (DEPLOY_TIMEOUT, real seconds), not one per wait.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 GROUP BUILD_INSTANCE_ID AMI_NAME POLL_INTERVAL_SECONDS" >&2
  exit 2
fi
group=$1 build_instance=$2 ami_name=$3 poll=$4
deadline=$((SECONDS + ${DEPLOY_TIMEOUT:-1800}))

# Benchmark guard, not part of the case study: this repository only ever talks to a local AWS.
if [[ "${AWS_ENDPOINT_URL:-}" != http://127.0.0.1:* ]]; then
  echo "aws-cli-deploy: AWS_ENDPOINT_URL must point at the local AWS (http://127.0.0.1:PORT)" >&2
  exit 2
fi

log() { echo "aws-cli-deploy: $*" >&2; }

# `aws ec2 wait image-available` would poll every 15 s (40 attempts), whatever the time scale: on a
# local AWS at LOCAL_AWS_TIME_SCALE=0.01 the image is ready after 1.2 s and the waiter would add up to
# 15 s of nothing. Instance refresh has no waiter at all. So both waits are loops with the poll interval
# given on the command line.
too_late() {
  if ((SECONDS >= deadline)); then
    log "timed out after ${DEPLOY_TIMEOUT:-1800} s waiting for $1"
    exit 1
  fi
}

# 1. Bake: the image of the stopped build instance (stopped, so no reboot is needed).
image_id=$(aws ec2 create-image --instance-id "$build_instance" --name "$ami_name" --no-reboot \
  --tag-specifications 'ResourceType=image,Tags=[{Key=app,Value=shop}]' \
  --query ImageId --output text)
log "creating image $image_id ($ami_name) from $build_instance"
echo "image_id=$image_id"

# 2. Wait for the image.
while :; do
  state=$(aws ec2 describe-images --image-ids "$image_id" --query 'Images[0].State' --output text)
  case $state in
    available) break ;;
    pending) log "image $image_id is pending" ;;
    *) log "image $image_id is $state"; exit 1 ;;
  esac
  too_late "image $image_id"
  sleep "$poll"
done
log "image $image_id is available"

# 3. A new launch template version: the group's current one with only the image changed.
current=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" \
  --query 'AutoScalingGroups[0].LaunchTemplate.[LaunchTemplateId,Version]' --output text)
read -r template_id template_version <<<"$current"
based_on="version $template_version"
if [[ $template_version == '$Latest' || $template_version == '$Default' ]]; then
  # A group that follows $Latest/$Default: base the new version on the number it resolves to now.
  template_version=$(aws ec2 describe-launch-template-versions --launch-template-id "$template_id" \
    --versions "$template_version" --query 'LaunchTemplateVersions[0].VersionNumber' --output text)
  based_on="version $template_version, the group's $based_on"
fi
new_version=$(aws ec2 create-launch-template-version --launch-template-id "$template_id" \
  --source-version "$template_version" --version-description "$ami_name" \
  --launch-template-data "{\"ImageId\":\"$image_id\"}" \
  --query LaunchTemplateVersion.VersionNumber --output text)
log "launch template $template_id version $new_version (from $based_on) uses $image_id"
echo "launch_template_id=$template_id"
echo "launch_template_version=$new_version"

# 4. Roll the group onto it.
preferences="\"MinHealthyPercentage\":100,\"MaxHealthyPercentage\":200,\"InstanceWarmup\":60,\"SkipMatching\":true"
if [[ -n "${REFRESH_CHECKPOINTS:-}" ]]; then
  preferences+=",\"CheckpointPercentages\":[${REFRESH_CHECKPOINTS}],\"CheckpointDelay\":${REFRESH_CHECKPOINT_DELAY:-3600}"
fi
if [[ -n "${REFRESH_BAKE_TIME:-}" ]]; then
  preferences+=",\"BakeTime\":${REFRESH_BAKE_TIME}"
fi
refresh_id=$(aws autoscaling start-instance-refresh --auto-scaling-group-name "$group" \
  --desired-configuration "{\"LaunchTemplate\":{\"LaunchTemplateId\":\"$template_id\",\"Version\":\"$new_version\"}}" \
  --preferences "{$preferences}" \
  --query InstanceRefreshId --output text)
log "instance refresh $refresh_id started on $group"
echo "instance_refresh_id=$refresh_id"

# 5. Wait for the refresh to end.
while :; do
  progress=$(aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$group" \
    --instance-refresh-ids "$refresh_id" \
    --query 'InstanceRefreshes[0].[Status,PercentageComplete]' --output text)
  read -r status percent <<<"$progress"
  case $status in
    Successful | Failed | Cancelled | RollbackSuccessful | RollbackFailed) break ;;
  esac
  log "refresh $refresh_id: $status, $percent % complete"
  too_late "instance refresh $refresh_id"
  sleep "$poll"
done
echo "status=$status"
if [[ $status != Successful ]]; then
  log "refresh $refresh_id ended $status; the group may run a mix of old and new instances"
  exit 1
fi
log "refresh $refresh_id Successful: $group runs $image_id"

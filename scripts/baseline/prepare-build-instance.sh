#!/usr/bin/env bash
# prepare-build-instance.sh: the benchmark's preparation step for aws-cli-deploy.sh, which starts from an
# already provisioned build instance (the local AWS seed does not make one). Launches one from BASE_AMI
# with the demo provisioning (scripts/provision-demo.sh) as user data, the way bakeroll's bake launches
# its build instance (pipeline/local.toml's [bake]: t3.micro, tag app=shop), and waits until the
# provisioning has powered it off (`stopped`). Prints the instance id on stdout; progress on stderr.
#
#   prepare-build-instance.sh BASE_AMI POLL_INTERVAL_SECONDS
#
# Not part of what the benchmark times. Polls describe-instances itself: `aws ec2 wait instance-stopped`
# polls every 15 s, far too coarse for a time-scaled local AWS (provisioning is 60 AWS s, 0.6 s at 0.01).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BASE_AMI POLL_INTERVAL_SECONDS" >&2
  exit 2
fi
base_ami=$1 poll=$2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
deadline=$((SECONDS + ${PREPARE_TIMEOUT:-900}))

if [[ "${AWS_ENDPOINT_URL:-}" != http://127.0.0.1:* ]]; then
  echo "prepare-build-instance: AWS_ENDPOINT_URL must point at the local AWS (http://127.0.0.1:PORT)" >&2
  exit 2
fi

# AWS CLI v1 base64-encodes --user-data itself (as EC2 expects it on the wire).
instance_id=$(aws ec2 run-instances --image-id "$base_ami" --instance-type t3.micro --count 1 \
  --user-data "file://$repo/scripts/provision-demo.sh" \
  --tag-specifications 'ResourceType=instance,Tags=[{Key=app,Value=shop},{Key=Name,Value=shop-build}]' \
  --query 'Instances[0].InstanceId' --output text)
echo "prepare-build-instance: launched $instance_id from $base_ami; waiting until provisioning stops it" >&2

while :; do
  state=$(aws ec2 describe-instances --instance-ids "$instance_id" \
    --query 'Reservations[0].Instances[0].State.Name' --output text)
  case $state in
    stopped) break ;;
    pending | running | stopping) ;;
    *) echo "prepare-build-instance: $instance_id is $state" >&2; exit 1 ;;
  esac
  if ((SECONDS >= deadline)); then
    echo "prepare-build-instance: $instance_id still $state after ${PREPARE_TIMEOUT:-900} s" >&2
    exit 1
  fi
  sleep "$poll"
done
echo "prepare-build-instance: $instance_id is stopped (provisioned)" >&2
echo "$instance_id"

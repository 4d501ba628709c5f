"""local-aws: moto extended with time-driven AWS behaviour for bakeroll's end-to-end tests.

Modules: errors (the AwsError every module raises; imports nothing of the emulator), clock (time
scale, lock, ticker), server (the process, the tick order, AWS-shaped errors, unknown regions,
LOCAL_AWS_DENY), role_policies (a role session's explicit denies, aws:RequestedRegion), rpcv2_cbor
(CloudWatch in Smithy RPC v2 CBOR), ec2_lifecycle (instance states, self-stopping build instances,
console output, pending AMIs), ami_protection (AMI deregistration
protection), idempotency (ClientToken), launch_templates (SourceVersion, paging), target_health,
group_members (lifecycle states that count, target-group registration), asg_launch (what and where a
group launches: templates, launch configurations), lifecycle_hooks (Pending:Wait), asg (group
lifecycle, draining, health replacement), alarms + refresh + refresh_api (instance refresh),
alb_traffic + alb_metrics (the requests an ALB sends each target group and their CloudWatch metrics),
cli (the `scripts/local-aws` command), seed (the storefront demo stack), seed_shapes and seed_tiers
(the other group shapes).
"""

"""local-aws: moto extended with time-driven AWS behaviour for bakeroll's end-to-end tests.

Modules: errors (the AwsError every module raises; imports nothing of the emulator), clock (time
scale, lock, ticker), server (the process, the tick order, AWS-shaped errors, LOCAL_AWS_DENY),
ec2_lifecycle (instance states, self-stopping build instances, console output, pending AMIs),
launch_templates (SourceVersion, paging), target_health, asg (group lifecycle, draining, health
replacement), refresh + refresh_api (instance refresh), cli (the `scripts/local-aws` command), seed
(the storefront demo stack).
"""

"""Launch lifecycle hooks (autoscaling:EC2_INSTANCE_LAUNCHING): a new instance of a group with such
a hook waits in Pending:Wait until every hook's lifecycle action is completed, its heartbeat timeout
passes (then the hook's DefaultResult applies) or the global timeout passes; CONTINUE lets it go
Pending:Proceed → InService (registered in the target groups only then), ABANDON terminates it.
This module keeps the hooks and the actions and decides; asg.py applies the decision on its tick.

Follows the Amazon EC2 Auto Scaling User Guide — "Amazon EC2 Auto Scaling lifecycle hooks" (How
lifecycle hooks work: Pending:Wait until CompleteLifecycleAction or the timeout, then Pending:Proceed;
the instance is registered with the load balancer when it enters InService, and the health check
grace period starts then; Considerations: a launch hook may abandon the launch, "in which case
Amazon EC2 Auto Scaling automatically terminates and replaces the instance"; "Keeping instances in a
wait state": a heartbeat extends the timeout by the hook's heartbeat timeout, at most 48 hours or
100 times the heartbeat timeout, whichever is smaller) and "Complete a lifecycle action" (by
lifecycle action token or instance ID); API Reference — "PutLifecycleHook" (HeartbeatTimeout 30-7200,
default 3600; DefaultResult CONTINUE | ABANDON, default ABANDON), "LifecycleHook" (GlobalTimeout),
"CompleteLifecycleAction", "RecordLifecycleActionHeartbeat", and CreateAutoScalingGroup's
LifecycleHookSpecificationList (hooks that exist before the group launches its first instance).

Notifications (EventBridge, SNS, SQS) are not sent, so a client cannot learn a LifecycleActionToken
from them: each token is written to server.log ("lifecycle action <token> ...") and completing by
InstanceId works as on AWS. **Test-controlled rule:** the tag `local-aws:lifecycle` on the instance
or on its AMI, `continue-after:<AWS seconds>` or `abandon-after:<AWS seconds>`, completes every
action of the instance that long after it entered Pending:Wait, as if a client had called
CompleteLifecycleAction. Termination hooks are stored and described but never waited for.

Warm pools ("Use lifecycle hooks with a warm pool"): a launch hook pauses an instance twice, in
Warmed:Pending:Wait when it enters the warm pool and in Pending:Wait when it leaves it for InService
(each wait has its own actions and tokens); warm_pool.py calls `begin` with the state to wait in.
"""

from __future__ import annotations

import logging
import re
import uuid

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState, LifecycleHook
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import clock, image_access
from .errors import validation_error
from .group_members import requested_group, warm_states

log = logging.getLogger("local-aws")

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TRANSITIONS = (LAUNCHING, "autoscaling:EC2_INSTANCE_TERMINATING")
RESULTS = ("CONTINUE", "ABANDON")
TAG = "local-aws:lifecycle"
_RULE = re.compile(r"^(continue|abandon)-after:(\d+(?:\.\d+)?)$")
MAX_WAIT_SECONDS = 172800  # 48 hours
WAIT_STATES = ("Pending:Wait", "Warmed:Pending:Wait")


class Action:
    """One hook's lifecycle action for one waiting instance."""

    def __init__(self, hook: LifecycleHook, instance_id: str):
        self.hook_name = hook.name
        self.token = str(uuid.uuid4())
        self.instance_id = instance_id
        self.heartbeat = float(hook.heartbeat_timeout)
        self.default_result = hook.default_result
        self.started = clock.now()
        self.timeout_at = clock.deadline(self.heartbeat)
        self.global_at = clock.deadline(min(MAX_WAIT_SECONDS, 100 * self.heartbeat))
        self.result: str | None = None


def _hooks(backend: AutoScalingBackend, group_name: str, transition: str | None = None) -> list[LifecycleHook]:
    return [h for h in backend.lifecycle_hooks.values()
            if h.auto_scaling_group_name == group_name and (transition is None or h.lifecycle_transition == transition)]


def begin(group: FakeAutoScalingGroup, state: InstanceState, wait_state: str = "Pending:Wait") -> bool:
    """A newly launched instance (or one entering or leaving the warm pool): `wait_state` with one
    action per launch hook, if the group has any. Whether it waits."""
    hooks = _hooks(group.autoscaling_backend, group.name, LAUNCHING)
    if not hooks:
        return False
    state.lifecycle_state = wait_state
    state._la_actions = {h.name: Action(h, state.instance.id) for h in hooks}
    for action in state._la_actions.values():
        log.info("lifecycle action %s: group %s, hook %s, instance %s (%s)", action.token, group.name,
                 action.hook_name, state.instance.id, LAUNCHING)
    return True


def _rule(group: FakeAutoScalingGroup, state: InstanceState) -> tuple[str, float] | None:
    tags = group.ec2_backend.tags  # {resource id: {key: value}}: get_tags() would build regexes per call
    raw = (tags.get(state.instance.id, {}).get(TAG)
           or image_access.rule_tags(group.ec2_backend, state.instance.image_id).get(TAG))
    match = _RULE.match(raw or "")
    return (match.group(1).upper(), float(match.group(2))) if match else None


def decide(group: FakeAutoScalingGroup, state: InstanceState) -> str | None:
    """CONTINUE once every action continued, ABANDON once one is abandoned, None while waiting."""
    now = clock.now()
    rule = _rule(group, state)
    actions = getattr(state, "_la_actions", {}).values()
    for action in actions:
        if action.result is not None:
            continue
        if rule is not None and clock.aws_elapsed(action.started) >= rule[1]:
            action.result = rule[0]
        elif now >= min(action.timeout_at, action.global_at):
            action.result = action.default_result
    results = {a.result for a in actions}
    if "ABANDON" in results:
        return "ABANDON"
    return "CONTINUE" if results == {"CONTINUE"} else None


def forget_group(backend: AutoScalingBackend, group_name: str) -> None:
    """Deleting a group deletes its lifecycle hooks."""
    for key in [k for k, h in backend.lifecycle_hooks.items() if h.auto_scaling_group_name == group_name]:
        del backend.lifecycle_hooks[key]


# --- the API ----------------------------------------------------------------------------------

def _put_hook(backend: AutoScalingBackend, group_name: str, spec: dict) -> LifecycleHook:
    """Create or update (only what is given changes) a hook, with PutLifecycleHook's checks."""
    name = spec.get("LifecycleHookName")
    existing = backend.lifecycle_hooks.get(f"{group_name}_{name}")
    transition = spec.get("LifecycleTransition") or (existing.lifecycle_transition if existing else None)
    if transition not in TRANSITIONS:
        raise validation_error(f"Invalid value for LifecycleTransition: {transition!r}; valid values are "
                               f"{' | '.join(TRANSITIONS)}.")
    timeout = spec.get("HeartbeatTimeout")
    if timeout is not None and not 30 <= int(timeout) <= 7200:
        raise validation_error(f"1 validation error detected: Value '{timeout}' at 'heartbeatTimeout' failed to "
                               "satisfy constraint: Member must be between 30 and 7200")
    result = spec.get("DefaultResult")
    if result is not None and result not in RESULTS:
        raise validation_error(f"Invalid value for DefaultResult: {result!r}; valid values are CONTINUE | ABANDON.")
    hook = existing or LifecycleHook(name, group_name, transition, None, None)
    hook.lifecycle_transition = transition
    if timeout is not None:
        hook.heartbeat_timeout = int(timeout)
    if result is not None:
        hook.default_result = result
    if existing is None:  # moto filled in made-up ARNs; AWS reports only what was given
        hook.role_arn = hook.notification_target_arn = hook.notification_metadata = None
    for key, attr in (("RoleARN", "role_arn"), ("NotificationTargetARN", "notification_target_arn"),
                      ("NotificationMetadata", "notification_metadata")):
        if spec.get(key) is not None:
            setattr(hook, attr, spec[key])
    hook.global_timeout = min(MAX_WAIT_SECONDS, 100 * hook.heartbeat_timeout)
    backend.lifecycle_hooks[f"{group_name}_{name}"] = hook
    return hook


def put_lifecycle_hook(self: AutoScalingResponse) -> EmptyResult:
    group = requested_group(self)
    spec = {k: self._get_param(k) for k in ("LifecycleHookName", "LifecycleTransition", "HeartbeatTimeout",
                                            "DefaultResult", "RoleARN", "NotificationTargetARN",
                                            "NotificationMetadata")}
    _put_hook(self.autoscaling_backend, group.name, spec)
    return EmptyResult()


def _action(self: AutoScalingResponse) -> tuple[InstanceState, Action]:
    group = requested_group(self)
    hook = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    if not token and not instance_id:
        raise validation_error("Either LifecycleActionToken or InstanceId must be specified.")
    for state in group.instance_states + warm_states(group):
        action = getattr(state, "_la_actions", {}).get(hook)
        if action is None or action.result is not None or state.lifecycle_state not in WAIT_STATES:
            continue
        if (token and action.token == token) or (not token and state.instance.id == instance_id):
            return state, action
    what = f"token {token}" if token else f"instance ID {instance_id}"
    raise validation_error(f"No active Lifecycle Action found with {what}")


def complete_lifecycle_action(self: AutoScalingResponse) -> EmptyResult:
    result = self._get_param("LifecycleActionResult")
    if result not in RESULTS:
        raise validation_error(f"Invalid value for LifecycleActionResult: {result!r}; valid values are "
                               "CONTINUE | ABANDON.")
    _, action = _action(self)
    action.result = result  # asg.py applies it on the next tick, before any answer shows it
    return EmptyResult()


def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> EmptyResult:
    _, action = _action(self)
    action.timeout_at = clock.deadline(action.heartbeat)
    return EmptyResult()


def _with_hook_specifications(original):
    """CreateAutoScalingGroup's LifecycleHookSpecificationList: the hooks exist before the first launch."""

    def handler(self: AutoScalingResponse) -> ActionResult:
        name = self._get_param("AutoScalingGroupName")
        specs = self._get_param("LifecycleHookSpecificationList") or []
        if not specs or name in self.autoscaling_backend.autoscaling_groups:
            return original(self)  # an existing name: moto's AlreadyExists, its hooks untouched
        try:
            for spec in specs:
                _put_hook(self.autoscaling_backend, name, dict(spec))
            return original(self)
        except Exception:
            forget_group(self.autoscaling_backend, name)
            raise

    handler.__name__ = original.__name__
    return handler


def install() -> None:
    """After asg.install(): wraps the CreateAutoScalingGroup handler asg installed."""
    AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    AutoScalingResponse.create_auto_scaling_group = _with_hook_specifications(
        AutoScalingResponse.create_auto_scaling_group)

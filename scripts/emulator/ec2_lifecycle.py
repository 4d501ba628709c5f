"""EC2 that takes (scaled) time: instance states, the "build instance stops itself" flow, the console
log, AMIs that are pending before available, AMI name uniqueness, and the record of when the
test-controlled health tag changed on an instance.

Follows the Amazon EC2 User Guide — "Amazon EC2 instance state changes" (pending → running,
stopping → stopped, shutting-down → terminated) and "Change the instance initiated shutdown
behavior" (an OS-level shutdown stops the instance, or terminates it when
InstanceInitiatedShutdownBehavior is `terminate`), and "Run commands on your Linux instance at
launch" (user data runs once, on the first boot, through cloud-init).

moto makes every instance `running` at once and stops/terminates in zero time. Here:
* a new or started instance is `pending` for LOCAL_AWS_BOOT_SECONDS (AWS seconds, default 15);
* StopInstances leaves it `stopping` for LOCAL_AWS_STOP_SECONDS (default 10), TerminateInstances
  `shutting-down` for LOCAL_AWS_SHUTDOWN_SECONDS (default 10);
* user data whose last command powers the machine off (`poweroff`, `shutdown -h now`, `halt -p`,
  ...) makes the instance shut itself down LOCAL_AWS_PROVISION_SECONDS (default 60) after it
  reached `running`; user data containing `local-aws:fail-provisioning` never finishes;
* GetConsoleOutput returns a cloud-init style log that matches where provisioning is;
* CreateImage leaves the image and its snapshot `pending` for LOCAL_AWS_IMAGE_SECONDS (default 120),
  then `available`/`completed` ("Create an Amazon EBS-backed AMI"); TagSpecifications may tag the
  snapshot (moto answered HTTP 500); a name already used by the account's images is refused with
  `InvalidAMIName.Duplicate` (EC2 API Reference — "CreateImage").
"""

from __future__ import annotations

import base64
import re

from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.exceptions import InvalidTaggableResourceType
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.models.instances import Instance, StateReason
from moto.ec2.models.tags import TagBackend
from moto.ec2.responses._base_response import EC2BaseResponse
from moto.ec2.responses.general import General

from . import clock
from .errors import AwsError

BOOT_SECONDS = clock.env_seconds("LOCAL_AWS_BOOT_SECONDS", 15)
STOP_SECONDS = clock.env_seconds("LOCAL_AWS_STOP_SECONDS", 10)
SHUTDOWN_SECONDS = clock.env_seconds("LOCAL_AWS_SHUTDOWN_SECONDS", 10)
PROVISION_SECONDS = clock.env_seconds("LOCAL_AWS_PROVISION_SECONDS", 60)
IMAGE_SECONDS = clock.env_seconds("LOCAL_AWS_IMAGE_SECONDS", 120)

HEALTH_TAG = "local-aws:health"
FAIL_MARKER = "local-aws:fail-provisioning"
CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
_POWEROFF = re.compile(
    r"^(sudo\s+)?(/s?bin/|/usr/s?bin/)?(poweroff|halt\s+-p|shutdown\s+(-h|-P|--poweroff|--halt)(\s+now|\s+\+?0)?|"
    r"systemctl\s+poweroff|init\s+0)\b"
)


def user_data_text(instance: Instance) -> str:
    ud = instance.user_data
    if ud is None:
        return ""
    if isinstance(ud, list):  # older moto code paths keep a list of raw strings
        ud = ud[0] if ud else ""
    try:
        if isinstance(ud, Base64EncodedString):
            return ud.decode()
        if isinstance(ud, bytes):
            ud = ud.decode("utf-8", "replace")
        return base64.b64decode(ud, validate=True).decode("utf-8", "replace")
    except Exception:
        return str(ud)


def last_command(script: str) -> str:
    lines = [ln.strip() for ln in script.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    return lines[-1] if lines else ""


def provisioning_kind(instance: Instance) -> str | None:
    """'poweroff' when the user data ends by powering off, 'fail' when it is marked to fail."""
    script = user_data_text(instance)
    if not script:
        return None
    if FAIL_MARKER in script:
        return "fail"
    if _POWEROFF.match(last_command(script)):
        return "poweroff"
    return None


def _set_state(instance: Instance, name: str) -> None:
    instance._state.name = name
    instance._state.code = CODES[name]


def _schedule(instance: Instance, name: str, after_aws_seconds: float) -> None:
    instance._la_next = (clock.deadline(after_aws_seconds), name)


_orig_init = Instance.__init__
_orig_start = Instance.start
_orig_stop = Instance.stop
_orig_terminate = Instance.terminate


def _init(self: Instance, *args, **kwargs) -> None:
    _orig_init(self, *args, **kwargs)
    self._la_launched_at = clock.now()
    self._la_running_since = None
    self._la_provision = provisioning_kind(self)
    self._la_poweroff_at = None
    self._la_provision_done = False
    _set_state(self, "pending")
    _schedule(self, "running", BOOT_SECONDS)


def _start(self: Instance):
    previous = _orig_start(self)
    _set_state(self, "pending")
    _schedule(self, "running", BOOT_SECONDS)
    return previous


def _stop(self: Instance):
    previous = _orig_stop(self)
    self._la_running_since = None
    _set_state(self, "stopping")
    _schedule(self, "stopped", STOP_SECONDS)
    return previous


def _terminate(self: Instance):
    previous = _orig_terminate(self)
    self._la_running_since = None
    _set_state(self, "shutting-down")
    _schedule(self, "terminated", SHUTDOWN_SECONDS)
    return previous


def _os_shutdown(instance: Instance) -> None:
    """The operating system powered itself off: the instance-initiated shutdown behaviour decides."""
    instance._la_provision_done = True
    if (instance.instance_initiated_shutdown_behavior or "stop") == "terminate":
        instance.terminate()
    else:
        instance.stop()
    instance._reason = f"User initiated ({utcnow().strftime('%Y-%m-%d %H:%M:%S GMT')})"
    instance.state_reason = StateReason(
        "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
        "Client.InstanceInitiatedShutdown",
    )


def advance_instances() -> None:
    now = clock.now()
    for backend in clock.backends(ec2_backends):
        for instance in backend.all_instances():
            nxt = getattr(instance, "_la_next", None)
            if nxt and nxt[0] <= now:
                instance._la_next = None
                if instance.state in ("terminated",):
                    continue
                _set_state(instance, nxt[1])
                if nxt[1] == "running":
                    instance._la_running_since = nxt[0]
                    if getattr(instance, "_la_provision", None) == "poweroff" and not instance._la_provision_done:
                        instance._la_poweroff_at = nxt[0] + clock.real_seconds(PROVISION_SECONDS)
            poweroff_at = getattr(instance, "_la_poweroff_at", None)
            if poweroff_at and poweroff_at <= now and instance.state == "running":
                instance._la_poweroff_at = None
                _os_shutdown(instance)


# --- the test-controlled health tag: remember when it changed, so target health can follow it ---

_orig_create_tags = TagBackend.create_tags
_orig_delete_tags = TagBackend.delete_tags


def _record_health_events(backend, resource_ids, broken_for) -> None:
    events = backend.__dict__.setdefault("_la_health_events", {})
    for rid in resource_ids:
        if rid.startswith("i-"):
            events.setdefault(rid, []).append((clock.now(), broken_for))


def _create_tags(self, resource_ids, tags):
    result = _orig_create_tags(self, resource_ids, tags)
    if HEALTH_TAG in tags:
        _record_health_events(self, resource_ids, tags[HEALTH_TAG] == "unhealthy")
    return result


def _delete_tags(self, resource_ids, tags):
    result = _orig_delete_tags(self, resource_ids, tags)
    if HEALTH_TAG in tags:
        _record_health_events(self, resource_ids, False)
    return result


def instance_broken_at(backend, instance: Instance, at: float) -> bool:
    """Whether the instance's own health tag said `unhealthy` at real time `at`. Tags given at launch
    go through create_tags too, so they are recorded at launch time."""
    state = False
    for when, broken in getattr(backend, "_la_health_events", {}).get(instance.id, []):
        if when <= at:
            state = broken
    return state


# --- console output ---------------------------------------------------------------------------

def console_log(instance: Instance) -> str:
    ts = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        "[    0.000000] Linux version 6.1.0-local-aws (builder@local-aws) #1 SMP x86_64",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=/dev/nvme0n1p1 ro console=ttyS0",
        f"[    2.100000] cloud-init[1000]: Cloud-init v. 23.4 running 'init' at {ts}. Up 2.10 seconds.",
        f"[    4.300000] cloud-init[1100]: Cloud-init v. 23.4 running 'modules:final' at {ts}. Up 4.30 seconds.",
    ]
    script = user_data_text(instance)
    if script:
        for cmd in [ln.strip() for ln in script.splitlines() if ln.strip() and not ln.strip().startswith("#")][:20]:
            lines.append(f"[    5.000000] cloud-init[1200]: + {cmd}")
    kind = getattr(instance, "_la_provision", None)
    if kind == "fail":
        lines.append("[   30.000000] cloud-init[1200]: ERROR: provisioning failed (local-aws:fail-provisioning)")
        lines.append("[   30.100000] cloud-init[1200]: util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/part-001 [1]")
    elif kind == "poweroff" and instance._la_provision_done:
        lines.append(f"[   60.000000] cloud-init[1200]: Cloud-init v. 23.4 finished at {ts}. Datasource DataSourceEc2Local.")
        lines.append("[   60.500000] systemd[1]: Reached target System Power Off.")
        lines.append("[   60.600000] reboot: Power down")
    elif instance._la_running_since is not None:
        lines.append(f"[   10.000000] cloud-init[1200]: Cloud-init v. 23.4 finished at {ts}. Datasource DataSourceEc2Local.")
    return "\n".join(lines) + "\n"


def get_console_output(self: General):
    from moto.core.responses import ActionResult

    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    return ActionResult(
        {
            "InstanceId": instance.id,
            "Timestamp": utcnow(),
            "Output": base64.b64encode(console_log(instance).encode()).decode(),
        }
    )


# --- AMIs ---------------------------------------------------------------------------------------

_orig_create_image = AmiBackend.create_image


def _create_image(self, instance_id: str, name: str, description: str, tag_specifications):
    for ami in self.amis.values():
        if ami.name == name and ami.owner_id == self.account_id:
            raise AwsError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")
    image_tags, snapshot_tags = [], []
    for spec in tag_specifications or []:
        kind = spec.get("ResourceType")
        if kind == "image":
            image_tags.append(spec)
        elif kind == "snapshot":
            snapshot_tags.extend(spec.get("Tags", []))
        else:
            raise InvalidTaggableResourceType(kind)
    ami = _orig_create_image(self, instance_id, name, description, image_tags)
    snapshot = ami.ebs_snapshot
    for tag in snapshot_tags:
        snapshot.add_tag(tag["Key"], tag["Value"])
    ami.state = "pending"
    snapshot.status = "pending"
    snapshot._la_progress = "0%"
    ami._la_available_at = clock.deadline(IMAGE_SECONDS)
    self.__dict__.setdefault("_la_pending_images", []).append(ami.id)
    return ami


def advance_images() -> None:
    now = clock.now()
    for backend in clock.backends(ec2_backends):
        pending = backend.__dict__.get("_la_pending_images")
        if not pending:
            continue
        for ami_id in list(pending):
            ami = backend.amis.get(ami_id)
            if ami is None:  # deregistered while pending
                pending.remove(ami_id)
                continue
            if ami._la_available_at <= now:
                pending.remove(ami_id)
                ami.state = "available"
                ami.ebs_snapshot.status = "completed"
                ami.ebs_snapshot._la_progress = "100%"


def install() -> None:
    # moto writes "pending" into every RunInstances answer; here new instances really are pending,
    # and a replayed RunInstances (same ClientToken, idempotency.py) must show the current state.
    EC2BaseResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER.pop("RunInstances.Reservation.Instances.Instance.State", None)
    Instance.__init__ = _init
    Instance.start = _start
    Instance.stop = _stop
    Instance.terminate = _terminate
    TagBackend.create_tags = _create_tags
    TagBackend.delete_tags = _delete_tags
    General.get_console_output = get_console_output
    AmiBackend.create_image = _create_image
    Snapshot.progress = property(lambda self: getattr(self, "_la_progress", "100%"))

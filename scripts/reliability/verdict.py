"""The matrix's judgement of an end state, from what scripts/harness/read_state.py read: which release the
fleet is on, what was leaked, whether the exit code says so, and whether the case meets the goal. Pure functions
(no I/O), so test_verdict.py checks them on hand-made states (every run does, first).

The definitions (RELIABILITY.md quotes `DEFINITIONS`):
"""

from __future__ import annotations

ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
RELEASE_MARK = "bakeroll:release"
LOCK_TAG = "bakeroll:lock"
ALIVE = {"pending", "running", "stopping", "stopped"}

DEFINITIONS = """\
* **healthy on the new release** (`new`): right when the last command exits, the group's launch-template
  version launches the image baked for the case's commit, no instance refresh is active, and every member
  (instances not `Terminating`) is `InService` on that image and `healthy` in every target group, at the
  group's desired capacity.
* **healthy on the previous release** (`previous`): the same, with the seeded image (launch-template
  version 1) in place of the new one.
* **needs a human** (`human: …`): anything else; the cell names what is off.
* **leak** (read once the fault proxy holds no call and the local AWS has had 3 s to settle, so that a
  request that reached AWS late has taken effect), any of:
  * a *build instance*: an instance tagged `bakeroll:role=build-instance` and `bakeroll:pipeline=local`
    that is `pending`, `running`, `stopping` or `stopped` (`shutting-down` and `terminated` are gone);
  * an *AMI*: an image tagged `bakeroll:pipeline=local` that is not `available`, or whose commit is not
    the case's, or a second image of the same commit;
  * a *snapshot*: a snapshot tagged `bakeroll:pipeline=local` that no image lists;
  * an *LT version without a release*: a launch-template version carrying bakeroll's release mark
    (`bakeroll:release …` description) that no instance refresh ever had as its desired configuration
    and that the group is not on — a version nothing rolled out; also a second version marked for the
    same AMI;
  * a *lock*: the group still carries the deploy lock tag `bakeroll:lock` after the last command exited.
* **exit code matches**: `0` ⇔ `new`; `3` ⇔ `previous`, after a rollback; `130` ⇔ `previous` after a
  SIGTERM (a deploy already verified when the signal came ends `0`, on `new`); `4` ⇔ `human`. Any other
  code (2, 5, 6, 7) in a case whose fault the tool is built to ride out does not match.
* **regions** (the region cases: one environment in us-east-1 and ap-southeast-1 of the deploy account
  222222222222, baked in us-east-1 by 123456789012 and copied to ap-southeast-1): `new` when the group of
  *each* region is healthy on the new release (in us-east-1 the baked image, in ap-southeast-1 its copy,
  both named for the case's commit), `previous` when each is healthy on its region's seeded image, else
  `human`, naming the region. Leaks are judged in each region as above, with the bake account's images,
  snapshots and build instances of that region and the deploy account's group: a second copy of the
  commit in a region, a copy left `pending` or `failed`, a lock on either group.
* **unchanged** (a region case refused before any work: the role cannot be assumed, a region's
  preflight fails): the local AWS's whole state in every account and region — Auto Scaling, images,
  instances, snapshots, volumes, launch templates and their versions, load balancers, target groups,
  sharing — is what it was before the command (`GET /moto-api/data.json`, compared model by model;
  AssumeRole sessions, health reads and the default VPC moto makes the first time an account reads a
  region are not changes). Nothing is baked either: ship refuses before its bake, so an image of the
  commit would be a change. (Had the refusal come after the bake, the baked image would be the release
  and no leak, by the AMI rule above.) Its exit code matches when it is the case's own: `5` for a denied
  AssumeRole or a region's calls denied, `2` for a missing group.
* **meets the goal**: the end state is the one expected (`new` for a good release under a fault the tool
  must ride out, `previous` for a broken release or a SIGTERM), the exit code matches, nothing leaked, and
  the fault really hit the step (the proxy's log shows the faulted call; a signal was sent while the
  step's call was in flight, or in the step's phase).
"""


def members(obs: dict) -> list[dict]:
    return [i for i in obs["instances"] if not i["lifecycle"].startswith("Terminating")
            and not i["lifecycle"].startswith("Detach")]


def group_version(obs: dict) -> dict | None:
    """The launch-template version the group's `Version` names."""
    want = str(obs["launch_template"].get("Version", ""))
    versions = obs["lt_versions"]
    if want == "$Latest":
        return max(versions, key=lambda v: v["number"], default=None)
    if want == "$Default":
        return next((v for v in versions if v["default"]), None)
    return next((v for v in versions if str(v["number"]) == want), None)


def fleet_problems(obs: dict, ami: str | None) -> list[str]:
    """What keeps the group from being verified healthy on `ami` (empty: verified)."""
    if not ami:
        return ["no image"]
    problems = []
    version = group_version(obs)
    if not version or version["image"] != ami:
        problems.append(f"group on version {obs['launch_template'].get('Version')} "
                        f"({version['image'] if version else '?'}), not {ami}")
    active = [f"{r['id'][:8]} {r['status']}" for r in obs["refreshes"] if r["status"] in ACTIVE]
    if active:
        problems.append("refresh active: " + ", ".join(active))
    live = members(obs)
    if len(live) != obs["desired"]:
        problems.append(f"{len(live)} members, desired {obs['desired']}")
    for i in live:
        if i["lifecycle"] != "InService":
            problems.append(f"{i['id']} {i['lifecycle']}")
        if i["image"] != ami:
            problems.append(f"{i['id']} on {i['image']}")
        for tg, targets in obs["target_health"].items():
            if targets.get(i["id"]) != "healthy":
                problems.append(f"{i['id']} {targets.get(i['id'], 'unregistered')} in {tg}")
    return problems


def new_image(obs: dict, ami_name: str) -> str | None:
    return next((im["id"] for im in obs["images"] if im["name"] == ami_name), None)


def end_state(obs: dict, ami_name: str, old_ami: str) -> tuple[str, str]:
    """('new' | 'previous' | 'human', detail)."""
    new = new_image(obs, ami_name)
    if new and not fleet_problems(obs, new):
        return "new", f"all {obs['desired']} on {new}"
    old = fleet_problems(obs, old_ami)
    if not old:
        return "previous", f"all {obs['desired']} on {old_ami}"
    return "human", "; ".join(old[:4]) + (" …" if len(old) > 4 else "")


def leaks(obs: dict, pipeline: str, commit: str) -> list[str]:
    out = []
    for b in obs["build_instances"]:
        if b["state"] in ALIVE:
            out.append(f"build instance {b['id']} {b['state']}")
    ours = [im for im in obs["images"] if im["tags"].get("bakeroll:pipeline") == pipeline]
    by_commit: dict[str, list[dict]] = {}
    for im in ours:
        by_commit.setdefault(im["tags"].get("bakeroll:commit", "?"), []).append(im)
        if im["state"] != "available":
            out.append(f"AMI {im['id']} {im['state']}")
    for c, images in sorted(by_commit.items()):
        if c != commit:
            out.append(f"AMI {', '.join(i['id'] for i in images)} of another commit {c}")
        elif len(images) > 1:
            out.append(f"{len(images)} AMIs of commit {c}: {', '.join(i['id'] for i in images)}")
    listed = {s for im in obs["images"] for s in im["snapshots"]}
    for s in obs["snapshots"]:
        if s["tags"].get("bakeroll:pipeline") == pipeline and s["id"] not in listed:
            out.append(f"snapshot {s['id']} of no image")
    rolled = {str(r["desired_version"]) for r in obs["refreshes"] if r.get("desired_version")}
    current = group_version(obs)
    marked: dict[str, list[int]] = {}
    for v in obs["lt_versions"]:
        if not v["description"].startswith(RELEASE_MARK):
            continue
        marked.setdefault(v["image"], []).append(v["number"])
        if str(v["number"]) not in rolled and not (current and current["number"] == v["number"]):
            out.append(f"LT version {v['number']} never rolled out")
    for image, numbers in sorted(marked.items()):
        if len(numbers) > 1:
            out.append(f"LT versions {sorted(numbers)} all for {image}")
    if LOCK_TAG in obs["group_tags"]:
        out.append("deploy lock left on the group")
    return out


def regions_end_state(by_region: dict[str, dict], ami_name: str, old_amis: dict[str, str | None]) -> tuple[str, str]:
    """Both (every) regions `new`, or all `previous`; otherwise `human`, naming each region's state."""
    states = {r: end_state(obs, ami_name, old_amis.get(r) or "?") for r, obs in by_region.items()}
    kinds = {k for k, _ in states.values()}
    detail = "; ".join(f"{r}: {d}" for r, (_, d) in states.items())
    if len(kinds) == 1 and kinds <= {"new", "previous"}:
        return kinds.pop(), detail
    return "human", "; ".join(f"{r}: {k} ({d})" for r, (k, d) in states.items())


def regions_leaks(by_region: dict[str, dict], pipeline: str, commit: str) -> list[str]:
    return [f"{r}: {leak}" for r, obs in by_region.items() for leak in leaks(obs, pipeline, commit)]


def changed(before: dict, after: dict) -> list[str]:
    """The `service.Model`s of a state dump whose contents differ (or appeared, or went)."""
    out = []
    for service in sorted(set(before) | set(after)):
        b, a = before.get(service, {}), after.get(service, {})
        out += [f"{service}.{m}" for m in sorted(set(b) | set(a)) if b.get(m) != a.get(m)]
    return out


def code_matches(state: str, code: int | None, sigterm: bool, refused: int | None = None) -> bool:
    if state == "unchanged":
        return refused is not None and code == refused
    if state == "new":
        return code == 0
    if state == "previous":
        return code == 3 or (sigterm and code == 130)
    return code == 4

"""The `scripts/local-aws` command: up, down, status, env, reset, seed, dump, test, forkserver, python.

State lives in ${LOCAL_AWS_DIR:-<repo>/.local-aws} (env, server.pid, server.port, server.log,
seed.json); the virtualenv in ${LOCAL_AWS_VENV:-<repo>/.local-aws/venv} is shared by every state
dir, so several servers (one per LOCAL_AWS_DIR) can run at once. Shell lines go to stdout (so
`eval "$(scripts/local-aws up)"` works), everything meant for people goes to stderr.
This file uses only the standard library except in `seed` (boto3, from the virtualenv); `seed` and
`python` run in a fork of the forkserver when LOCAL_AWS_FORKSERVER names one (emulator/forkserver.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

SCRIPTS = Path(__file__).resolve().parent.parent
REPO = Path(os.environ.get("LOCAL_AWS_REPO") or SCRIPTS.parent)
STATE = Path(os.environ.get("LOCAL_AWS_DIR") or REPO / ".local-aws")
VENV = Path(os.environ.get("LOCAL_AWS_VENV") or REPO / ".local-aws" / "venv")
REGION = "us-east-1"
START_TIMEOUT = 30.0


def say(msg: str) -> None:
    print(f"local-aws: {msg}", file=sys.stderr)


def env_lines(port: int) -> str:
    return "\n".join(
        [
            f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}",
            f"export AWS_REGION={REGION}",
            f"export AWS_DEFAULT_REGION={REGION}",
            "export AWS_ACCESS_KEY_ID=testing",
            "export AWS_SECRET_ACCESS_KEY=testing",
            "export AWS_EC2_METADATA_DISABLED=true",
        ]
    ) + "\n"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def is_server(pid: int) -> bool:
    """The pid is alive and is a local-aws server (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    # A server forked from the forkserver keeps the forkserver's command line (emulator/forkserver.py).
    return "emulator.server" in cmdline or "emulator.forkserver" in cmdline


def _answers(port: int, timeout: float = 2.0) -> bool:
    import urllib.error  # here, not at the top: most commands never ask (http.client and email cost 40 ms)
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/config", timeout=timeout) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def running() -> tuple[int, int] | None:
    pid = _read_int(STATE / "server.pid")
    port = _read_int(STATE / "server.port")
    if pid and port and is_server(pid) and _answers(port):
        return pid, port
    return None


def cmd_up(args: list[str]) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    current = running()
    if current:
        pid, port = current
        say(f"already running (pid {pid}) on port {port}; reusing it")
    else:
        _stop_recorded()
        for name in ("server.port", "env"):
            (STATE / name).unlink(missing_ok=True)
        t0 = time.monotonic()
        pid, exited = _start_server()
        (STATE / "server.pid").write_text(f"{pid}\n")
        port = None
        while time.monotonic() - t0 < START_TIMEOUT:
            if exited():
                tail = (STATE / "server.log").read_text(errors="replace").strip().splitlines()[-5:]
                say(f"server exited; see {STATE / 'server.log'}, which ends:\n  " + "\n  ".join(tail))
                return 1
            port = _read_int(STATE / "server.port")
            if port and _answers(port, 1.0):
                break
            time.sleep(0.05)
        else:
            say(f"server did not answer within {START_TIMEOUT:.0f} s; see {STATE / 'server.log'}")
            _stop_recorded()
            return 1
        scale = os.environ.get("LOCAL_AWS_TIME_SCALE", "1")
        say(f"started pid {pid} on port {port} in {time.monotonic() - t0:.2f} s (time scale {scale})")
    (STATE / "env").write_text(env_lines(port))
    sys.stdout.write(env_lines(port))
    return 0


def _start_server() -> tuple[int, Callable[[], bool]]:
    """A server process, not waited for: forked from the warm forkserver LOCAL_AWS_FORKSERVER names
    (scripts/test starts one: see emulator/forkserver.py), or started afresh when there is none; its
    pid, and how to tell that it has exited (not from /proc/PID/cmdline for a process just started:
    right after the exec that can still read empty)."""
    args = ["--port-file", str(STATE / "server.port")]
    log = STATE / "server.log"
    forkserver = os.environ.get("LOCAL_AWS_FORKSERVER")
    if forkserver:
        sys.path.insert(0, str(SCRIPTS))
        from emulator.forkserver import spawn

        pid = spawn(forkserver, args, str(log), str(SCRIPTS))
        if pid:
            return pid, lambda: not is_server(pid)  # forked: the forkserver's command line from the start
        say(f"the forkserver {forkserver} did not answer; starting a server the usual way")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "python"), "-m", "emulator.server", *args],
            cwd=str(SCRIPTS),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # survives the shell that ran `up`
        )
    return proc.pid, lambda: proc.poll() is not None


def _stop_recorded() -> bool:
    pid = _read_int(STATE / "server.pid")
    stopped = False
    if pid and is_server(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not is_server(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        stopped = True
    (STATE / "server.pid").unlink(missing_ok=True)
    return stopped


def cmd_down(args: list[str]) -> int:
    if _stop_recorded():
        say("stopped")
    else:
        say("not running")
    for name in ("server.port", "env"):
        (STATE / name).unlink(missing_ok=True)
    return 0


def cmd_status(args: list[str]) -> int:
    current = running()
    if not current:
        print(f"local-aws: stopped (state dir {STATE})")
        return 3
    pid, port = current
    print(f"local-aws: running pid {pid} at http://127.0.0.1:{port} (state dir {STATE})")
    return 0


def cmd_env(args: list[str]) -> int:
    current = running()
    if not current:
        say("not running (run `scripts/local-aws up`)")
        return 3
    sys.stdout.write(env_lines(current[1]))
    return 0


def _need_port() -> int:
    current = running()
    if not current:
        say("not running (run `scripts/local-aws up`)")
        sys.exit(3)
    return current[1]


def cmd_reset(args: list[str]) -> int:
    import urllib.request

    port = _need_port()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=30).read()
    (STATE / "seed.json").unlink(missing_ok=True)
    say("all state cleared")
    return 0


def cmd_dump(args: list[str]) -> int:
    import urllib.request

    port = _need_port()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=60) as r:
        data = json.loads(r.read())
    json.dump(data, sys.stdout, indent=None if "--compact" in args else 1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


def _forked(argv: list[str], env: dict[str, str] | None = None) -> int | None:
    """`python ARGV` forked from the forkserver LOCAL_AWS_FORKSERVER names (boto3 loaded already: about
    half a CPU second less per program); None when there is none or it does not answer."""
    forkserver = os.environ.get("LOCAL_AWS_FORKSERVER")
    if not forkserver:
        return None
    sys.path.insert(0, str(SCRIPTS))
    from emulator.forkserver import run

    code = run(forkserver, argv, env)
    if code is None:
        say(f"the forkserver {forkserver} did not answer; running python the usual way")
    return code


def cmd_python(args: list[str]) -> int:
    if not args:
        say("usage: scripts/local-aws python SCRIPT|-m MODULE|-c CODE [ARGS...]")
        return 2
    code = _forked(args)
    if code is not None:
        return code
    py = str(VENV / "bin" / "python")
    os.execv(py, [py, *args])


def cmd_seed(args: list[str]) -> int:
    port = _need_port()
    # In a fork when there is a forkserver: the fork's own `seed` then runs here, without it.
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_AWS_FORKSERVER"}
    code = _forked([str(Path(__file__).resolve()), "seed", *args], env)
    if code is not None:
        return code
    sys.path.insert(0, str(SCRIPTS))
    from emulator import seed

    return seed.main(args, f"http://127.0.0.1:{port}", STATE)


def cmd_test(args: list[str]) -> int:
    os.chdir(REPO)
    # No cache dir: the tests must not leave files in the work tree. Nor in TMPDIR: pytest keeps its
    # last three runs' tmp_path directories in TMPDIR/pytest-of-USER unless told where (scripts/test
    # gives --basetemp under its own work dir); here they go to a directory removed afterwards.
    import tempfile

    cmd = [str(VENV / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", str(SCRIPTS / "emulator" / "tests")]
    if any(a == "--basetemp" or a.startswith("--basetemp=") for a in args):
        return subprocess.call([*cmd, *args])
    with tempfile.TemporaryDirectory(prefix="local-aws-test.") as base:
        return subprocess.call([*cmd, "--basetemp", os.path.join(base, "pytest"), *args])


def cmd_forkserver(args: list[str]) -> int:
    if len(args) != 1:
        say("usage: scripts/local-aws forkserver SOCKET")
        return 2
    os.chdir(SCRIPTS)
    py = str(VENV / "bin" / "python")
    os.execv(py, [py, "-m", "emulator.forkserver", os.path.abspath(args[0])])


USAGE = """usage: scripts/local-aws COMMAND
  up                 start (or reuse) the server; prints `export ...` lines for the shell
  down               stop the server this state dir started
  status             running or not (exit 3 when stopped)
  env                print the `export ...` lines of the running server
  reset              clear all emulated state (POST /moto-api/reset)
  seed [--version-ref REF] [--no-wait] [--shape launch-configuration|mixed-instances|warm-pool|tiers]...
       [--region REGION] [--account ACCOUNT]
                     create the storefront demo stack, and other group shapes next to it; with
                     --region/--account the stack once more in that region/account (through its
                     role bakeroll-deploy) (see scripts/emulator/README.md)
  dump [--compact]   print moto's state as JSON (GET /moto-api/data.json)
  test [PYTEST ARGS] run the emulator's own tests
  python SCRIPT|-m MODULE|-c CODE [ARGS]
                     run a Python program in the virtualenv (boto3 and the emulator's requirements):
                     forked from the forkserver when LOCAL_AWS_FORKSERVER names one
  forkserver SOCKET  (for test suites) load moto once and serve forks of it on SOCKET: every `up` run
                     with LOCAL_AWS_FORKSERVER=SOCKET is forked from it, 10x faster to start
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stderr.write(USAGE)
        return 0 if argv else 2
    commands = {
        "up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env, "reset": cmd_reset,
        "seed": cmd_seed, "dump": cmd_dump, "test": cmd_test, "forkserver": cmd_forkserver, "python": cmd_python,
    }
    fn = commands.get(argv[0])
    if fn is None:
        sys.stderr.write(USAGE)
        return 2
    return fn(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A warm parent for local AWS servers: moto loaded once, each `scripts/local-aws up` a fork of it.

Starting a server costs about 1.4 s of CPU before it answers (importing moto, reading botocore's
service models) and as much again on its first requests; a test suite that starts a hundred servers
spends minutes of CPU on that alone. `python -m emulator.forkserver SOCKET` loads all of it once and
waits on a Unix socket; `up` (cli.py), when LOCAL_AWS_FORKSERVER names that socket, sends its
environment, arguments and log path, and gets back the pid of a fresh server forked from it.

What the child is, is what `python -m emulator.server` would be: nothing of the emulator itself is
loaded here (its modules read their settings from the environment when imported, and patch moto only
when the server installs them), moto's state is empty (no backend exists before the fork), and the
child re-imports the emulator under the caller's environment, seeds its random numbers afresh and runs
in its own session. The forkserver exits on SIGTERM, when its socket file goes, or when its parent does.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import runpy
import signal
import socket
import sys

# Every moto service the emulator serves: imported and their botocore models read before any fork.
SERVICES = ("ec2", "autoscaling", "elbv2", "sts", "iam", "cloudwatch", "kms", "ssm")


def warm() -> None:
    """Loads what every server loads, then forgets the emulator's own modules (the child imports them
    again under its own environment)."""
    import emulator.server  # noqa: F401  (moto, werkzeug, flask, and every module the emulator imports)
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.utils import get_service_model
    from moto.moto_server import werkzeug_app  # noqa: F401

    session = AccountSpecificBackend.get_session()
    for service in SERVICES:
        for part in ("models", "responses", "urls"):
            try:
                importlib.import_module(f"moto.{service}.{part}")
            except ImportError:
                pass
        try:
            get_service_model(service)
            for partition in session.get_available_partitions():
                session.get_available_regions(service, partition_name=partition)
        except Exception:  # noqa: BLE001  a model this botocore lacks is loaded (or not) by the child
            pass
    for name in [m for m in sys.modules if m == "emulator" or m.startswith("emulator.")]:
        del sys.modules[name]


def child(request: dict) -> None:
    """In the forked process: becomes `python -m emulator.server ARGS` under the caller's environment."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        random.seed()
        from moto.moto_api._internal import mock_random

        mock_random.seed()
        sys.argv = ["emulator.server", *request["args"]]
        runpy.run_module("emulator.server", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001  the log says why; the parent sees the pid go
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def serve(path: str) -> None:
    parent = os.getppid()
    warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # servers are reaped as they exit
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    listener.bind(tmp)
    listener.listen(16)
    os.replace(tmp, path)  # the socket appears only once it accepts
    listener.settimeout(1.0)
    while os.path.exists(path) and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(10)
            try:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                request = json.loads(data)
            except (OSError, ValueError):
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                child(request)
            try:
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except OSError:
                pass
    listener.close()


def spawn(path: str, args: list[str], log: str, cwd: str) -> int | None:
    """Asks the forkserver at `path` for a server; its pid, or None when none answers (the caller then
    starts one the usual way)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(json.dumps({"env": dict(os.environ), "args": args, "log": log, "cwd": cwd}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
            return int(json.loads(data)["pid"])
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m emulator.forkserver SOCKET")
    serve(sys.argv[1])

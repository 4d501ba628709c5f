"""A warm parent for local AWS servers and the Python tools around them: moto and boto3 loaded once,
each `scripts/local-aws up` (and `local-aws python`, `local-aws seed`) a fork of it.

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

A Python program (`scripts/local-aws python SCRIPT ARGS`: the tests' boto3 helpers, the state reader,
`seed`) costs about half a CPU second to start for importing boto3 and reading the service models of its
first clients. `run` asks for a fork that runs it instead: the caller's standard input, output and error
are passed over the socket, the child runs the program as `python SCRIPT ARGS` would (its own
`__main__`, argv, environment, working directory, sys.path[0]) with botocore's data loader already
holding the models, and sends back its exit code; the caller exits with it. The child ends when its
caller does (the connection closes), so killing the caller stops the program.
"""

from __future__ import annotations

import gc
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


# The boto3 clients the tools create: their models are read once, here.
CLIENTS = ("ec2", "autoscaling", "elbv2", "sts", "iam", "cloudwatch")


class _SearchPaths(list):
    """The shared loader's search paths: boto3 appends its data directory to the loader of every
    boto3 Session it makes; with one loader for all of them, once is enough."""

    def append(self, path) -> None:
        if path not in self:
            super().append(path)


def _warm_loader() -> None:
    """One botocore data loader, its caches filled by creating each client once through boto3 (which
    adds its own data directory), used by every session created afterwards (in this process and its
    forks) that asks for the default data path. botocore.session imported create_loader by name: it is
    replaced there too, or no session would see the shared loader."""
    import boto3.session
    import botocore.loaders
    import botocore.session

    create = botocore.loaders.create_loader
    loader = create()
    loader._search_paths = _SearchPaths(loader.search_paths)

    def create_loader(search_path_string=None):
        return loader if search_path_string is None else create(search_path_string)

    botocore.loaders.create_loader = botocore.session.create_loader = create_loader
    session = boto3.session.Session()
    for service in CLIENTS:
        session.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                       aws_access_key_id="warm", aws_secret_access_key="warm")


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
            _resolve_shapes(get_service_model(service))
            for partition in session.get_available_partitions():
                session.get_available_regions(service, partition_name=partition)
        except Exception:  # noqa: BLE001  a model this botocore lacks is loaded (or not) by the child
            pass
    _warm_loader()
    for name in [m for m in sys.modules if m == "emulator" or m.startswith("emulator.")]:
        del sys.modules[name]


def _resolve_shapes(model) -> None:
    """Every operation's input and output shapes, resolved down to their leaves: botocore resolves a
    shape's members when first asked and keeps them, so a server forked after this never resolves them
    again (without it each server paid for that on every first call of an operation)."""

    def walk(shape, path: frozenset) -> None:
        if shape is None or shape.name in path:  # a recursive shape: resolved once on this path
            return
        path = path | {shape.name}
        for name in ("members", "member", "key", "value"):
            part = getattr(shape, name, None)
            if isinstance(part, dict):
                for member in part.values():
                    walk(member, path)
            elif part is not None:
                walk(part, path)

    for name in model.operation_names:
        op = model.operation_model(name)
        walk(op.input_shape, frozenset())
        walk(op.output_shape, frozenset())
    model.error_shapes  # noqa: B018  (a cached property)


def child(request: dict) -> None:
    """In the forked process: becomes `python -m emulator.server ARGS` under the caller's environment."""
    code = 1
    try:
        os.setsid()
        _reset_signals()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        _become(request)
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


def _reset_signals() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _become(request: dict) -> None:
    """The caller's environment and working directory, and random numbers of its own."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    random.seed()
    from moto.moto_api._internal import mock_random

    mock_random.seed()


def run_child(request: dict, conn: socket.socket, fds: list[int]) -> None:
    """In the forked process: runs `python ARGV` on the caller's standard streams, then sends its exit
    code over `conn`. A thread watches `conn`: when the caller goes, so does this process."""
    code = 1
    try:
        os.setsid()
        _reset_signals()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin, sys.stdout, sys.stderr = (_text(0, "r", sys.stdin), _text(1, "w", sys.stdout),
                                             _text(2, "w", sys.stderr))
        _become(request)
        import threading

        def watch() -> None:
            try:
                conn.recv(1)
            except OSError:
                pass
            os._exit(143)  # the caller is gone (it never writes after its request)

        threading.Thread(target=watch, daemon=True).start()
        code = _run_main(request["argv"])
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        finally:
            os._exit(code)


def _text(fd: int, mode: str, like):
    """A standard stream on `fd` as the interpreter makes one: the encoding and error handler this
    process's own stream has, line-buffered on a terminal."""
    return open(fd, mode, encoding=like.encoding, errors=like.errors, closefd=False,
                buffering=1 if os.isatty(fd) else -1)


def _run_main(argv: list[str]) -> int:
    """`python ARGV` (SCRIPT ARGS, -m MODULE ARGS or -c CODE ARGS) in this process: its exit code."""
    import atexit
    import traceback

    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        elif argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001  as the interpreter does: the traceback on stderr, exit 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    return code


def _read_request(conn: socket.socket) -> tuple[dict, list[int]] | None:
    """One JSON line, and the file descriptors that came with its first bytes."""
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    while data and not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    try:
        return json.loads(data), fds
    except ValueError:
        for fd in fds:
            os.close(fd)
        return None


def serve(path: str) -> None:
    parent = os.getppid()
    warm()
    # What is loaded now lives as long as every fork: out of the garbage collector's sight, a fork's
    # collections neither walk it (moto and botocore's models are hundreds of thousands of objects) nor
    # copy the pages it sits on by touching it.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they exit
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
        conn.settimeout(10)
        try:
            got = _read_request(conn)
        except OSError:
            got = None
        if got is None:
            conn.close()
            continue
        request, fds = got
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.settimeout(None)
            if request.get("kind") == "run":
                run_child(request, conn, fds)
            conn.close()
            child(request)
        for fd in fds:
            os.close(fd)
        if request.get("kind") != "run":
            try:
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except OSError:
                pass
        conn.close()
    listener.close()


def _ask(path: str, request: dict, fds: list[int]) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(10)
        s.connect(path)
        socket.send_fds(s, [json.dumps(request).encode() + b"\n"], fds)
        return s
    except OSError:
        s.close()
        return None


def _answer(s: socket.socket) -> dict | None:
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None


def spawn(path: str, args: list[str], log: str, cwd: str) -> int | None:
    """Asks the forkserver at `path` for a server; its pid, or None when none answers (the caller then
    starts one the usual way)."""
    s = _ask(path, {"env": dict(os.environ), "args": args, "log": log, "cwd": cwd}, [])
    if s is None:
        return None
    with s:
        answer = _answer(s)
    try:
        return int(answer["pid"]) if answer else None
    except (KeyError, TypeError, ValueError):
        return None


def run(path: str, argv: list[str], env: dict[str, str] | None = None) -> int | None:
    """`python ARGV` forked from the forkserver at `path`, on this process's standard streams and in
    `env` (default: this process's environment): its exit code, or None when no forkserver answers
    (nothing was run: the caller runs it the usual way)."""
    env = dict(os.environ) if env is None else env
    s = _ask(path, {"kind": "run", "env": env, "argv": argv, "cwd": os.getcwd()}, [0, 1, 2])
    if s is None:
        return None
    with s:
        s.settimeout(None)
        answer = _answer(s)
    if answer is None:
        print(f"local-aws: the forked `python {' '.join(argv)}` ended without an exit code", file=sys.stderr)
        return 1
    return int(answer.get("exit", 1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m emulator.forkserver SOCKET")
    serve(sys.argv[1])

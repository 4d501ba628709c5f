"""The `scripts/faultproxy` command: up, down, status, env, rules, stats, serve.

State lives in ${FAULTPROXY_DIR:-${LOCAL_AWS_DIR:-<repo>/.local-aws}/faultproxy} (proxy.pid, proxy.port,
env, proxy.log, requests.jsonl), so a proxy sits beside the local AWS it fronts and is git-ignored
with it. Shell lines go to stdout (`eval "$(scripts/faultproxy up ...)"`), messages to stderr.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))  # run as a script by the wrapper

from fault_proxy import server  # noqa: E402
from fault_proxy.rules import RuleError, document  # noqa: E402

REPO = SCRIPTS.parent
STATE = Path(os.environ.get("FAULTPROXY_DIR")
             or Path(os.environ.get("LOCAL_AWS_DIR") or REPO / ".local-aws") / "faultproxy")
START_TIMEOUT = 10.0


def say(msg: str) -> None:
    print(f"faultproxy: {msg}", file=sys.stderr)


def env_line(port: int) -> str:
    return f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}\n"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _ours(pid: int) -> bool:
    """The pid is alive and is a faultproxy server (guards against a recycled pid)."""
    try:
        return b"fault_proxy.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _control(port: int, name: str, body: bytes | None = None, timeout: float = 2.0) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{server.CONTROL}{name}", data=body,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def running() -> tuple[int, int] | None:
    pid, port = _read_int(STATE / "proxy.pid"), _read_int(STATE / "proxy.port")
    if not (pid and port and _ours(pid)):
        return None
    try:
        return (pid, port) if _control(port, "health", timeout=1.0)[1].get("pid") == pid else None
    except (OSError, ValueError):
        return None


def _check(args: list[str]) -> int | None:
    """Refuse bad options before a process exists (a refused upstream or bind never sees traffic)."""
    try:
        server.settings([*args, "--state", str(STATE)])
    except (ValueError, RuleError, OSError) as e:
        say(str(e))
        return 2
    except SystemExit as e:  # argparse already printed why
        return int(e.code or 0)
    return None


def _server_command(args: list[str]) -> list[str]:
    # The module name in the command line is how _ours() recognises the process.
    return [sys.executable, "-m", "fault_proxy.server", *args, "--state", str(STATE)]


def _server_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")])))


def cmd_up(args: list[str]) -> int:
    current = running()
    if current:
        say(f"already running (pid {current[0]}, port {current[1]}) in {STATE}: `down` first, or `rules` "
            "to change its rules")
        return 1
    refused = _check(args)
    if refused is not None:
        return refused
    STATE.mkdir(parents=True, exist_ok=True)
    for name in ("proxy.pid", "proxy.port", "env"):
        (STATE / name).unlink(missing_ok=True)
    with open(STATE / "proxy.log", "ab") as log:
        proc = subprocess.Popen(_server_command(args), env=_server_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)  # outlives the shell that ran `up`
    t0 = time.monotonic()
    while time.monotonic() - t0 < START_TIMEOUT:
        if proc.poll() is not None:
            say(f"proxy exited with code {proc.returncode}; see {STATE / 'proxy.log'}")
            return 1
        current = running()
        if current and current[0] == proc.pid:
            break
        time.sleep(0.02)
    else:
        say(f"proxy did not answer within {START_TIMEOUT:.0f} s; see {STATE / 'proxy.log'}")
        proc.kill()
        return 1
    port = current[1]
    say(f"started pid {proc.pid} on port {port} in {time.monotonic() - t0:.2f} s; log {STATE / 'requests.jsonl'}")
    (STATE / "env").write_text(env_line(port))
    sys.stdout.write(env_line(port))
    return 0


def cmd_down(args: list[str]) -> int:
    pid = _read_int(STATE / "proxy.pid")
    if pid and _ours(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _ours(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        say("stopped")
    else:
        say("not running")
    for name in ("proxy.pid", "proxy.port", "env"):  # requests.jsonl stays for `stats`
        (STATE / name).unlink(missing_ok=True)
    return 0


def cmd_status(args: list[str]) -> int:
    current = running()
    if not current:
        print(f"faultproxy: stopped (state dir {STATE})")
        return 3
    print(f"faultproxy: running pid {current[0]} at http://127.0.0.1:{current[1]} (state dir {STATE})")
    return 0


def cmd_env(args: list[str]) -> int:
    current = running()
    if not current:
        say("not running (run `scripts/faultproxy up`)")
        return 3
    sys.stdout.write(env_line(current[1]))
    return 0


def cmd_rules(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scripts/faultproxy rules")
    p.add_argument("file", nargs="?", help="a JSON rules document, - for stdin")
    p.add_argument("--rule", action="append", default=[])
    p.add_argument("--seed", type=int)
    a = p.parse_args(args)
    current = running()
    if not current:
        say("not running (run `scripts/faultproxy up`)")
        return 3
    body = None
    if a.file or a.rule or a.seed is not None:
        texts = [sys.stdin.read() if a.file == "-" else Path(a.file).read_text()] if a.file else []
        try:
            body = json.dumps(document(texts, a.rule, a.seed)).encode()
        except RuleError as e:
            say(str(e))
            return 2
    status, payload = _control(current[1], "rules", body)
    if status != 200:
        say(payload.get("error", f"HTTP {status}"))
        return 2
    print(json.dumps(payload, indent=1))
    return 0


def cmd_stats(args: list[str]) -> int:
    path = Path(args[0]) if args else STATE / "requests.jsonl"
    if not path.exists():
        say(f"no request log at {path}")
        return 3
    print(json.dumps(server.stats(path), indent=1, sort_keys=True))
    return 0


def cmd_serve(args: list[str]) -> int:
    if running():
        say(f"already running in {STATE}")
        return 1
    refused = _check(args)
    if refused is not None:
        return refused
    os.execve(sys.executable, _server_command(args), _server_env())


USAGE = """usage: scripts/faultproxy COMMAND   (scripts/fault_proxy/README.md)
  up [OPTIONS]       start the proxy in the background; prints `export AWS_ENDPOINT_URL=...`
  serve [OPTIONS]    the same in the foreground (Ctrl-C / SIGTERM stops it)
  down               stop the proxy this state dir started
  status             running or not (exit 3 when stopped)
  env                print the `export AWS_ENDPOINT_URL=...` line of the running proxy
  rules [FILE|-] [--rule SPEC]... [--seed N]   replace the rules at run time (no argument: print them)
  stats [LOG]        calls, forwards and faults per operation, from requests.jsonl
OPTIONS: --upstream http://127.0.0.1:PORT --rules FILE --rule SPEC --seed N --lifetime S
         --max-connections N --max-body BYTES --upstream-timeout S --bind 127.0.0.1   (up --help)
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stderr.write(USAGE)
        return 0 if argv else 2
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env, "rules": cmd_rules,
                "stats": cmd_stats, "serve": cmd_serve}
    fn = commands.get(argv[0])
    if fn is None:
        sys.stderr.write(USAGE)
        return 2
    return fn(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

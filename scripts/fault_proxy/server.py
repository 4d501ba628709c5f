"""The proxy process: every request goes to the local AWS unchanged unless a rule picks it for a fault,
and every request is logged as one JSON line; plus the control endpoint under /__faultproxy/.

Run by `scripts/faultproxy up` as `python3 -m fault_proxy.server --state DIR ...` (cwd scripts/) or in
the foreground by `scripts/faultproxy serve`. It binds 127.0.0.1 port 0 (the kernel picks a free
port), writes proxy.pid and proxy.port into the state dir, prints the `export AWS_ENDPOINT_URL=...`
line, and serves until SIGTERM/SIGINT or the end of its lifetime; on exit it removes those files.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .rules import RuleError, RuleSet, document
from .wire import Call, error_response, identify

LOOPBACK = "127.0.0.1"
CONTROL = "/__faultproxy/"
# Never copied between the two connections: they describe one hop (RFC 9110 section 7.6.1), or we set them.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect", "content-length"}
DRAIN_LIMIT = 16 << 20  # bytes of an over-large body read and dropped so the client can read the 413


def loopback_port(url: str, what: str) -> int:
    """The port of an http://127.0.0.1:PORT URL; anything else is refused before any traffic."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname != LOOPBACK or not port or parts.path not in ("", "/"):
        raise ValueError(f"{what} must be http://127.0.0.1:PORT, got {url!r}: faultproxy only talks to "
                         "this machine's loopback")
    return port


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/faultproxy up|serve", description="Options of the proxy.")
    p.add_argument("--upstream", help="the local AWS, http://127.0.0.1:PORT (default: the one whose "
                   "state dir is ${LOCAL_AWS_DIR:-<repo>/.local-aws})")
    p.add_argument("--bind", default=LOOPBACK, help="only 127.0.0.1 is accepted")
    p.add_argument("--rules", action="append", default=[], metavar="FILE", help="a JSON rules document")
    p.add_argument("--rule", action="append", default=[], metavar="SPEC",
                   help="OP=FAULT[:ARG...][@SELECT] or one rule as JSON (repeatable)")
    p.add_argument("--seed", type=int, help="seed of the percentage rules (default: the document's, else 0)")
    p.add_argument("--lifetime", type=float, default=float(os.environ.get("FAULTPROXY_LIFETIME", 3600)),
                   help="seconds after which the proxy exits by itself; 0: never (default 3600)")
    p.add_argument("--max-connections", type=int, default=64, help="open client connections (default 64)")
    p.add_argument("--max-body", type=int, default=8 << 20, help="request body bytes (default 8 MiB)")
    p.add_argument("--upstream-timeout", type=float, default=120, help="seconds (default 120)")
    p.add_argument("--state", required=True, help=argparse.SUPPRESS)
    return p


@dataclass
class Settings:
    upstream_port: int
    rules: RuleSet
    lifetime: float
    max_connections: int
    max_body: int
    upstream_timeout: float
    state: Path


def settings(argv: list[str]) -> Settings:
    """Parsed and checked options; ValueError/RuleError/OSError say what is wrong."""
    a = parser().parse_args(argv)
    if a.bind != LOOPBACK:
        raise ValueError(f"--bind must be {LOOPBACK}, got {a.bind!r}: faultproxy never listens beyond loopback")
    upstream = a.upstream
    if not upstream:
        local_aws = Path(os.environ.get("LOCAL_AWS_DIR") or Path(__file__).resolve().parents[2] / ".local-aws")
        try:
            upstream = f"http://{LOOPBACK}:{int((local_aws / 'server.port').read_text())}"
        except (OSError, ValueError):
            raise ValueError(f"no --upstream and no local AWS running in {local_aws}") from None
    port = loopback_port(upstream, "--upstream")
    texts = [Path(f).read_text() for f in a.rules]
    rules = RuleSet.from_document(document(texts, a.rule, a.seed))
    if a.max_connections < 1 or a.max_body < 0 or a.lifetime < 0:
        raise ValueError("--max-connections must be >= 1, --max-body and --lifetime >= 0")
    return Settings(port, rules, a.lifetime, a.max_connections, a.max_body, a.upstream_timeout, Path(a.state))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a FIN: the client sees ECONNRESET."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class RequestLog:
    """requests.jsonl: one JSON object per request, written when the request is over."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "w", buffering=1)  # each start begins a new log
        self.lock = threading.Lock()

    def write(self, entry: dict) -> None:
        with self.lock:
            self.file.write(json.dumps(entry) + "\n")


def stats(path: Path) -> dict:
    """Calls, forwards and faults per service:Operation, from a requests.jsonl."""
    ops: dict = defaultdict(lambda: {"calls": 0, "forwarded": 0, "faults": Counter()})
    faults: Counter = Counter()
    total = refused = 0
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "refused" in entry:
            refused += 1
            continue
        total += 1
        op = ops[f"{entry.get('service', '')}:{entry.get('operation', '')}"]
        op["calls"] += 1
        op["forwarded"] += entry.get("upstream_status") is not None
        if entry.get("fault"):
            op["faults"][entry["fault"]] += 1
            faults[entry["fault"]] += 1
    return {"requests": total, "refused": refused, "faults": dict(faults),
            "operations": {k: {**v, "faults": dict(v["faults"])} for k, v in sorted(ops.items())}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a client may take to send its request
    server: "Proxy"
    _entry: dict | None = None  # the AWS call's log line until it is written

    def log_message(self, format, *args):  # noqa: A002 - requests.jsonl is the log
        pass

    def do_POST(self):
        # One request per connection, as the local AWS (Werkzeug) answers: an SDK never reuses a
        # connection the proxy has closed, so a fault never spills into the next call.
        self.close_connection = True
        if self.path.startswith(CONTROL):
            return self._control()
        t0 = time.monotonic()
        entry: dict = {"seq": next(self.server.seq), "time": _now(), "method": self.command}
        self._entry, self._t0 = entry, t0
        try:
            body = self._body()
            call = identify(self.path, self.headers, body)
            n, index, rule = self.server.rules.pick(call)
            entry.update(service=call.service, operation=call.operation, protocol=call.protocol, n=n,
                         fault=rule.fault if rule else None, rule=index)
            with self.server.slots:
                self.server.inflight[entry["seq"]] = dict(entry)
            entry.update(self._handle(call, rule, body))
        except _Refused as e:
            entry.update(status=e.status, error=e.message)
            self._send(e.status, [("Content-Type", "text/plain")], f"faultproxy: {e.message}\n".encode(), {})
        except OSError as e:  # the client went away (its timeout during a delay, a reset)
            entry["error"] = f"client connection: {e!r}"
        self._record()

    def _record(self) -> None:
        """Writes this request's log line once. _send calls it before the answer goes out, so a client
        holding its answer finds its line in requests.jsonl (tests and the matrix read it at once)."""
        entry, self._entry = self._entry, None
        if entry is not None:
            entry["ms"] = round((time.monotonic() - self._t0) * 1000, 1)
            self.server.log.write(entry)
            with self.server.slots:
                self.server.inflight.pop(entry["seq"], None)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    def _handle(self, call: Call, rule, body: bytes) -> dict:
        fault = rule.fault if rule else None
        if fault in ("throttle", "http500", "http503"):
            status, headers, data = error_response(call, fault)
            return self._send(status, headers, data, {"status": status})
        if fault == "delay" and rule.hold == "request":
            self.server.stopping.wait(rule.seconds)
            fault = "reset-before" if rule.then == "drop" else None
        if fault == "reset-before":
            return self._reset({"status": None})
        status, headers, data = self._forward(body)
        if fault == "delay":  # hold the answer
            self.server.stopping.wait(rule.seconds)
            fault = "reset-after" if rule.then == "drop" else None
        if fault == "reset-after":  # the request took effect upstream; its answer is lost
            return self._reset({"upstream_status": status, "status": None})
        return self._send(status, headers, data, {"upstream_status": status, "status": status})

    def _reset(self, fields: dict) -> dict:
        self._entry.update(fields)
        self._record()  # before the reset, as _send does before an answer
        _abort_handler(self)
        self.server.release(self.connection)
        return fields

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _Refused(411, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _Refused(400, "bad Content-Length") from None
        if length > self.server.settings.max_body:
            left = length if length <= DRAIN_LIMIT else 0
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
            raise _Refused(413, f"request body of {length} bytes is over --max-body "
                                f"{self.server.settings.max_body}; not forwarded")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("client closed the connection in the middle of the body")
        return body

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = HTTPConnection(LOOPBACK, self.server.settings.upstream_port,
                              timeout=self.server.settings.upstream_timeout)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():  # Host included: it is part of the signature
                if key.lower() not in HOP_BY_HOP:
                    conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        except (OSError, HTTPException) as e:
            raise _Refused(502, f"upstream 127.0.0.1:{self.server.settings.upstream_port}: {e!r}") from None
        finally:
            conn.close()

    def _send(self, status: int, headers: list[tuple[str, str]], data: bytes,
              fields: dict | None = None) -> dict:
        """Sends an answer; with `fields` (an AWS call's, not a control request's) its log line
        is completed with them and written first."""
        if fields is not None and self._entry is not None:
            self._entry.update(fields)
            self._record()
        self.send_response_only(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()
        # The connection's slot is free once its answer is out: a client that read it and connects
        # again is admitted, whatever the thread still has to do to close the socket.
        self.server.release(self.connection)
        return fields or {}

    def _control(self) -> None:
        """GET health|rules|stats|inflight, POST rules (replace them, with fresh counters). Never forwarded."""
        route = (self.command, urlsplit(self.path).path[len(CONTROL):])
        status = 200
        try:
            if route == ("GET", "health"):
                payload = {"pid": os.getpid(), "port": self.server.server_address[1],
                           "upstream": f"http://{LOOPBACK}:{self.server.settings.upstream_port}"}
            elif route == ("GET", "rules"):
                payload = self.server.rules.spec()
            elif route == ("POST", "rules"):
                text = self._body().decode("utf-8", "replace")
                self.server.rules.replace(RuleSet.from_document(document([text], [], None)))
                payload = self.server.rules.spec()
                print(f"faultproxy: {_now()} rules replaced: {json.dumps(payload)}", file=sys.stderr, flush=True)
            elif route == ("GET", "stats"):
                payload = stats(self.server.log.path)
            elif route == ("GET", "inflight"):  # identified calls not yet over, oldest first
                with self.server.slots:
                    payload = [e for _, e in sorted(self.server.inflight.items())]
            else:
                raise _Refused(404, f"no control endpoint {self.command} {self.path} (GET health, rules, stats, inflight;"
                                    " POST rules)")
        except RuleError as e:
            status, payload = 400, {"error": str(e)}
        except _Refused as e:
            status, payload = e.status, {"error": e.message}
        self._send(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def _abort_handler(handler: Handler) -> None:
    handler.close_connection = True
    handler.rfile.close()  # the socket's fd closes only once its file objects are closed
    _abort(handler.connection)


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, s: Settings):
        super().__init__((LOOPBACK, 0), Handler)
        self.settings, self.rules = s, s.rules
        self.log = RequestLog(s.state / "requests.jsonl")
        self.stopping = threading.Event()  # ends every delay at once on shutdown
        self.seq = itertools.count(1)
        self.admitted: set = set()  # sockets holding one of --max-connections
        self.slots = threading.Lock()  # guards `admitted` and `inflight`
        self.inflight: dict[int, dict] = {}  # seq -> the log entry so far, while the call is not over

    def process_request(self, request, client_address):
        with self.slots:
            admitted = len(self.admitted) < self.settings.max_connections
            if admitted:
                self.admitted.add(request)
        if not admitted:
            self.log.write({"seq": next(self.seq), "time": _now(),
                            "refused": f"over --max-connections {self.settings.max_connections}"})
            _abort(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.release(request)

    def release(self, request) -> None:
        with self.slots:
            self.admitted.discard(request)


def main(argv: list[str]) -> int:
    try:
        s = settings(argv)
    except (ValueError, RuleError, OSError) as e:
        print(f"faultproxy: {e}", file=sys.stderr)
        return 2
    s.state.mkdir(parents=True, exist_ok=True)
    proxy = Proxy(s)
    port = proxy.server_address[1]
    pid_file, port_file = s.state / "proxy.pid", s.state / "proxy.port"
    pid_file.write_text(f"{os.getpid()}\n")
    port_file.write_text(f"{port}\n")

    def stop(reason: str) -> None:
        print(f"faultproxy: {_now()} stopping: {reason}", file=sys.stderr, flush=True)
        proxy.stopping.set()
        threading.Thread(target=proxy.shutdown, daemon=True).start()  # not from serve_forever's thread

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    if s.lifetime:
        timer = threading.Timer(s.lifetime, stop, [f"lifetime of {s.lifetime:g} s is over"])
        timer.daemon = True
        timer.start()
    print(f"faultproxy: {_now()} pid {os.getpid()} on port {port} -> 127.0.0.1:{s.upstream_port}, "
          f"{len(s.rules.rules)} rules, " + (f"lifetime {s.lifetime:g} s" if s.lifetime else "no lifetime"),
          file=sys.stderr, flush=True)
    print(f"export AWS_ENDPOINT_URL=http://{LOOPBACK}:{port}", flush=True)
    try:
        proxy.serve_forever(poll_interval=0.2)
    finally:
        proxy.server_close()
        try:
            ours = int(pid_file.read_text()) == os.getpid()
        except (OSError, ValueError):
            ours = False
        if ours:
            for path in (pid_file, port_file, s.state / "env"):
                path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

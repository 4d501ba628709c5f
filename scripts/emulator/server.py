"""The local-aws server process: moto's WSGI app with the emulator's behaviour installed, bound to
127.0.0.1 on a free port, plus the ticker thread.

Run by `scripts/local-aws up` as `python -m emulator.server --port-file FILE` (cwd scripts/); it
binds port 0 so the kernel picks a free port (no race between several servers started at once),
writes the port to FILE once it can answer, and serves until SIGTERM/SIGINT, on which it exits at
once (moto's own server takes seconds to wind down).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def install_all() -> None:
    # Order matters for the tick order: instances, then images, then groups, then refreshes.
    from . import asg, ec2_lifecycle, images, launch_templates, protocol, refresh, refresh_api, target_health

    protocol.install()
    ec2_lifecycle.install()
    images.install()
    launch_templates.install()
    target_health.install()
    asg.install()
    refresh_api.install()
    assert refresh  # imported for its tick


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local-aws: moto plus time-driven AWS behaviour")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = let the kernel pick a free port")
    parser.add_argument("--port-file", help="write the bound port here once serving")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("LOCAL_AWS_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("local-aws")
    if not os.environ.get("LOCAL_AWS_LOG_REQUESTS"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is too much

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    from . import clock

    install_all()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port

    def stop(signum, frame):  # noqa: ARG001
        log.info("signal %s: exiting", signum)
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    clock.start_ticker()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    log.info("local-aws listening on http://%s:%d (time scale %s)", args.host, port, clock.SCALE)
    server.serve_forever()


if __name__ == "__main__":
    main()

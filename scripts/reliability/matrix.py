"""scripts/reliability/run: the reliability matrix (each step of `bakeroll ship` x each fault, two ships
of one environment at once, and a release to two regions of a second account under faults) against local
AWS servers, and the bad-input corpus (tests/e2e_bad_input.rs); writes RELIABILITY.md. Standard library
only.

    scripts/reliability/run              # everything (tens of minutes), writes RELIABILITY.md
    scripts/reliability/run --quick      # one case per fault kind, the concurrency cases, copy-reset (minutes)
    scripts/reliability/run --only poll-SIGTERM --only image-5xx --only south-denied
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import verdict  # noqa: E402
from cases import all_cases  # noqa: E402
from runner import reference, run_case  # noqa: E402
from world import REPO  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/reliability/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one case per fault kind, the concurrency cases and one region case")
    p.add_argument("--only", action="append", default=[], metavar="CASE", help="run only this case (e.g. poll-SIGTERM)")
    p.add_argument("--bin", type=Path, help="the bakeroll binary [default: $CARGO_TARGET_DIR/debug/bakeroll]")
    p.add_argument("--jobs", type=int, default=2, help="cases at once (default 2: one per core of a 2-core machine)")
    p.add_argument("--out", type=Path, help="the report [default: RELIABILITY.md for a full run, none for --quick/--only]")
    p.add_argument("--no-corpus", action="store_true", help="skip the bad-input corpus (cargo test --test e2e_bad_input)")
    p.add_argument("--list", action="store_true", help="print the case ids and exit")
    p.add_argument("--self-test", action="store_true", help="only check the judge (test_verdict.py) and exit")
    return p.parse_args(argv)


def binary(args) -> Path:
    if args.bin:
        return args.bin.resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "bakeroll"


def corpus() -> tuple[list[dict], str]:
    """Runs the bad-input corpus (a cargo test) and reads the outcomes it writes."""
    with tempfile.TemporaryDirectory(prefix="bakeroll-corpus-") as tmp:
        out = Path(tmp) / "corpus.jsonl"
        env = dict(os.environ, BAKEROLL_CORPUS_OUT=str(out), BAKEROLL_CORPUS_PER_CASE="1")
        proc = subprocess.run(["cargo", "test", "--test", "e2e_bad_input", "--", "--test-threads", "2"],
                              cwd=REPO, env=env, capture_output=True, text=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        summary = next((line for line in proc.stdout.splitlines() if line.startswith("test result:")), "")
        if proc.returncode != 0:
            summary = f"FAILED (exit {proc.returncode}): {summary}\n{proc.stdout[-3000:]}"
        return rows, summary


def self_test() -> bool:
    """The judge's own tests (test_verdict.py): a run whose verdicts could be wrong is not worth starting."""
    suite = unittest.defaultTestLoader.discover(str(Path(__file__).resolve().parent), pattern="test_*.py")
    return unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(suite).wasSuccessful()


def main(argv: list[str]) -> int:
    args = parse(argv)
    if not self_test():
        return 1
    if args.self_test:
        return 0
    cases = all_cases(args.quick)
    if args.only:
        cases = [c for c in all_cases(False) if c.id in args.only] or sys.exit(f"no case named {args.only}")
    if args.list:
        print("\n".join(c.id for c in cases))
        return 0
    bin_path = binary(args)
    if not bin_path.exists():
        sys.exit(f"no bakeroll binary at {bin_path}: run `cargo build` (or pass --bin)")
    started = time.monotonic()
    steps_n, ship_seconds = {}, 0.0
    if any(not c.region for c in cases):  # the region cases need no call numbers
        print(f"reliability: reference run ({bin_path})", file=sys.stderr, flush=True)
        steps_n, ship_seconds = reference(bin_path)
        print(f"reliability: a clean ship takes {ship_seconds:.1f}s; step calls {steps_n}", file=sys.stderr, flush=True)

    results = []

    def one(case):
        r = run_case(case, bin_path, steps_n)
        mark = "ok  " if r.ok else "FAIL"
        print(f"reliability: {mark} {case.id:22} exit {r.codes_text():10} {r.state:8} {r.seconds:5.0f}s"
              f"{'  leaks: ' + '; '.join(r.leaks) if r.leaks else ''}{'  ' + r.error if r.error else ''}",
              file=sys.stderr, flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, cases))
    rows, corpus_summary = ([], "not run (--no-corpus)") if args.no_corpus or args.only or args.quick else corpus()
    took = time.monotonic() - started
    ok = sum(r.ok for r in results)
    print(f"reliability: {ok} of {len(results)} cases meet the goal; {took / 60:.1f} min", file=sys.stderr)
    out = args.out or (None if (args.quick or args.only) else REPO / "RELIABILITY.md")
    if out:
        meta = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
            "commit": _git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if _git("status", "--porcelain") else ""),
            "command": "scripts/reliability/run " + " ".join(argv),
            "minutes": took / 60,
            "ship_seconds": ship_seconds,
            "jobs": args.jobs,
        }
        out.write_text(report.render(meta, results, steps_n, rows, corpus_summary, verdict.DEFINITIONS))
        print(f"reliability: wrote {out}", file=sys.stderr)
    corpus_ok = args.no_corpus or args.only or args.quick or corpus_summary.startswith("test result: ok")
    return 0 if ok == len(results) and corpus_ok else 1


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

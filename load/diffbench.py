"""A policy diff's cost on a log (pure, no broker): ``python -m load.diffbench LOG``.

Runs ``streams.policylab.diff`` over an NDJSON log (``creditstream policy history``
writes one) and prints one JSON line: events, wall and CPU seconds (this process and
the deciding processes it started), events per second of each, and a hash of the
report, so that two runs (two versions of the diff, two ``--jobs``) can be compared on
the same log: equal hashes, equal figures. ``--lab FILE`` times another copy of
policylab.py (say, a former commit's: ``git show COMMIT:streams/policylab.py > old.py``)
over the engine code of this tree. CPU time is the figure that scales: on a shared
machine wall time depends on who else runs (docs/policy-lab.md section 5).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import resource
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import orjson

from streams.domain.policy import POLICY_VERSION


def _lab(path: str | None) -> ModuleType:
    if path is None:
        from streams import policylab

        return policylab
    spec = importlib.util.spec_from_file_location("policylab_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.diffbench", description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    ap.add_argument("--from", dest="from_", default=POLICY_VERSION)
    ap.add_argument("--to", default="2027.01-1")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--lab", help="another policylab.py to time (default: this tree's)")
    args = ap.parse_args(argv)
    lab = _lab(args.lab)

    def lines() -> Iterator[bytes]:
        with open(args.log, "rb") as f:
            yield from f

    t0, c0 = time.monotonic(), time.process_time()
    dual = lab.diff(lines, args.from_, args.to, jobs=args.jobs)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += children.ru_utime + children.ru_stime
    report = lab.report(dual, top=10**9)
    sys.stdout.buffer.write(orjson.dumps({
        "log": args.log, "lab": args.lab or "streams/policylab.py", "jobs": args.jobs, "events": dual.events,
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "events_per_s_wall": round(dual.events / wall),
        "events_per_s_cpu": round(dual.events / cpu), "borrowers_changed": report["borrowers_changed"],
        "report_sha256": hashlib.sha256(orjson.dumps(report, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16],
        "load_average": round(os.getloadavg()[0], 1)}) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

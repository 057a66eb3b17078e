"""Stage 2 on a real partition store, by the size of its cache of decoded states (pure, no
broker): ``python -m load.stage2cache``.

A world of contractors with 50 machines each (the realistic world of docs/performance.md
has 6,000 of them) reports every 4 hours of event time for two days, with its business
events (load/history.py): its pledges, the first readings and the readings that open a
UTC day all signal, the herds stage 2 meets when a fleet is onboarded or a day begins.
Stage 1 runs in process (untimed, the replay's processors); stage 2 (``FacilityProcessor``) then takes every stage-2
input in order on a ``PartitionStore`` in a temporary folder, its writes committed every
500 inputs as a lane commits a batch, once per cache size. A contractor's state is
~35 KB of JSON, so a cache smaller than the fleet's states decodes a state again for
most signals, and values its fleet from scratch (the fleet's cache is kept per state
object, streams/domain/fleet.py). Prints JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from load.history import history
from load.world import WorldConfig
from schemas.topics import LIMITS_TOPIC
from streams.domain.signals import Output
from streams.fastlane import PartitionStore
from streams.heap import tune_collector
from streams.processors import FacilityProcessor
from streams.replay import Replay

MACHINES_PER_CONTRACTOR = 50
CADENCE_S = 4 * 3600
COMMIT_EVERY = 500


class _Stage1(Replay):
    """The replay's stage 1 (the processors the worker runs), keeping stage 2's inputs in
    order instead of deciding them."""

    def __init__(self) -> None:
        super().__init__()
        self.stage2: list[tuple[str, bytes | None, bytes]] = []

    def _run(self, topic: str, key: bytes, raw: bytes) -> Iterator[Output]:
        if topic in FacilityProcessor.topics:
            self.stage2.append((topic, key, raw))
            return iter(())
        return super()._run(topic, key, raw)


def stage2_inputs(contractors: int, days: int) -> list[tuple[str, bytes | None, bytes]]:
    """Stage 2's input records (topic, key, value), in order, for the world's history
    (load/history.py: set-up, ``days`` of readings and its business events)."""
    cfg = WorldConfig(seed=3, tag="Ls2c", cores=1, contractors=contractors,
                      machines=contractors * MACHINES_PER_CONTRACTOR, cadence_s=CADENCE_S,
                      dealer_share=0, truck_share=0)
    stage1 = _Stage1()
    for raw in history(cfg, days):
        for _out in stage1.feed(raw):  # alerts and dead letters: not stage 2's
            pass
    return stage1.stage2


def run_stage2(inputs: list[tuple[str, bytes | None, bytes]], cache_bytes: int) -> dict[str, Any]:
    """Seconds of stage 2 over ``inputs`` on a fresh store with ``cache_bytes`` of cache,
    the limit updates it published and a digest of all its outputs (the cache must not
    change them)."""
    digest, updates = hashlib.sha256(), 0
    with tempfile.TemporaryDirectory() as folder:
        store = PartitionStore(Path(folder) / "db", cache_bytes=cache_bytes)
        proc = FacilityProcessor()
        t0 = time.perf_counter()
        try:
            for offset, (topic, key, value) in enumerate(inputs):
                for out in proc.process(store, topic, key, value, 0, offset):
                    digest.update(orjson.dumps(out.value, option=orjson.OPT_SORT_KEYS))
                    updates += out.topic == LIMITS_TOPIC
                if (offset + 1) % COMMIT_EVERY == 0 or offset + 1 == len(inputs):
                    store.commit([(k.encode(), orjson.dumps(v)) for k, v in store.dirty.items()], offset + 1)
            seconds = time.perf_counter() - t0
            cached = store.cached_bytes
        finally:
            store.close()
    return {"seconds": round(seconds, 2), "us_per_input": round(seconds / max(1, len(inputs)) * 1e6, 1),
            "cached_mb": round(cached / 2**20, 1), "limit_updates": updates, "outputs_sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.stage2cache", description=__doc__.split("\n\n")[0])
    ap.add_argument("--contractors", type=int, default=600, help="contractors of 50 machines each")
    ap.add_argument("--days", type=int, default=2, help="days of readings, every 4 hours")
    ap.add_argument("--cache-mb", default="8,128", help="cache sizes to compare, MiB of JSON (0: none)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    inputs = stage2_inputs(args.contractors, args.days)
    print(f"stage 1: {len(inputs):,} stage-2 inputs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    tune_collector()  # as the worker does
    result: dict[str, Any] = {"contractors": args.contractors, "machines": args.contractors * MACHINES_PER_CONTRACTOR,
                              "days": args.days, "inputs": len(inputs), "by_cache_mb": {}}
    for mb in (int(x) for x in args.cache_mb.split(",")):
        result["by_cache_mb"][mb] = run_stage2(inputs, mb * 2**20)
        print(f"cache {mb} MiB: {result['by_cache_mb'][mb]}", file=sys.stderr)
    print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

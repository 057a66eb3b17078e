"""A `creditstream worker` that can say where its memory is, for `creditstream load state`.

``python -m load.heapworker REQUEST worker ARGS...`` runs the worker with ARGS, unchanged
but for one idle thread. When the file REQUEST appears, that thread writes
``REQUEST.json``:

- how many decoded states each lane's cache holds (exact: the caches' lengths; the lanes
  are the running app's, ``EngineApp.lanes``), and the native memory of its RocksDB
  databases (memtables, block cache, table readers: RocksDB's own properties);
- the allocators: pymalloc (small Python objects: bytes in allocated and in free blocks,
  arenas) and glibc malloc (``mallinfo2``: in use, free but kept), both as the process
  holds them;
- VmRSS before and after ``gc.collect()`` + ``malloc_trim(0)``: what RSS the allocators
  give back once asked, i.e. memory that was freed but still counted.

No tracemalloc: tracing every allocation slowed the worker so much that its consumer
sessions expired, the lanes rebalanced and their caches were emptied, so a traced worker
does not hold the heap an untraced one does. The bytes a decoded state takes come
from ``load.state.heap_breakdown`` instead (tracemalloc on a sample, outside the worker).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import runpy
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _lanes() -> list[Any]:
    """The lanes of the engine app this process runs (the worker command creates it; the
    app is found among the live objects rather than by wrapping the worker's code)."""
    from streams.app import EngineApp

    return [lane for app in gc.get_objects() if isinstance(app, EngineApp) for lane in app.lanes]


# RocksDB's accounting of its native memory, per database.
ROCKSDB_MEMORY = {"memtables": "rocksdb.cur-size-all-mem-tables", "block_cache": "rocksdb.block-cache-usage",
                  "table_readers": "rocksdb.estimate-table-readers-mem"}


def _db_property(db: Any, prop: str) -> int:
    try:
        return int(db.property_int_value(prop) or 0)
    except Exception:  # noqa: BLE001 - a closed database or an unknown property: not counted
        return 0


def cache_bound(store: Any) -> str:
    """A lane cache's bound as the code states it, in bytes of JSON."""
    return f"{store.cache_bytes / 2**20:g} MiB of JSON a partition"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6  # KiB -> MB
    return 0.0


def pymalloc_stats() -> dict[str, float]:
    """pymalloc's own accounting (``sys._debugmallocstats``, written to fd 2), in MB."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    out = {}
    for label, pattern in (("allocated_blocks_mb", r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
                           ("free_blocks_mb", r"# bytes in available blocks\s*=\s*([\d,]+)"),
                           ("arenas_mb", r"\d+ arenas \* \d+ bytes/arena\s*=\s*([\d,]+)")):
        m = re.search(pattern, text)
        if m:
            out[label] = round(int(m.group(1).replace(",", "")) / 1e6, 1)
    return out


def malloc_stats(libc: ctypes.CDLL) -> dict[str, float]:
    """glibc malloc (everything over 512 bytes, and C libraries), in MB."""
    libc.mallinfo2.restype = _MallInfo2
    mi = libc.mallinfo2()
    return {"in_use_mb": round((mi.uordblks + mi.hblkhd) / 1e6, 1), "free_kept_mb": round(mi.fordblks / 1e6, 1),
            "mmapped_mb": round(mi.hblkhd / 1e6, 1)}


def report() -> dict[str, Any]:
    """The breakdown (see the module docstring)."""
    libc = ctypes.CDLL("libc.so.6")
    lanes = {}
    for lane in _lanes():
        stores = list(lane.stores.values())
        lanes[lane.name] = {"cached_states": sum(len(s.cache) for s in stores), "partitions": len(stores),
                            "bound": cache_bound(stores[0]) if stores else None,
                            **{f"rocksdb_{label}_mb": round(sum(_db_property(s.db, prop) for s in stores) / 1e6, 1)
                               for label, prop in ROCKSDB_MEMORY.items()}}
        if stores:
            lanes[lane.name]["cached_json_mb"] = round(sum(s.cached_bytes for s in stores) / 1e6, 1)
    out: dict[str, Any] = {"rss_mb": round(_rss_mb(), 1), "lanes": lanes, "pymalloc": pymalloc_stats(),
                           "malloc": malloc_stats(libc)}
    t0 = time.monotonic()
    gc.collect()
    libc.malloc_trim(0)
    out["rss_after_trim_mb"] = round(_rss_mb(), 1)
    out["trim_s"] = round(time.monotonic() - t0, 1)
    return out


def _serve(request: Path) -> None:
    while not request.exists():
        time.sleep(0.5)
    out = request.with_suffix(".json")
    tmp = out.with_suffix(".tmp")
    try:
        answer = report()
    except Exception as exc:  # noqa: BLE001 - the reader waits for an answer: give it the error
        answer = {"error": repr(exc)}
    tmp.write_bytes(orjson.dumps(answer))
    tmp.rename(out)  # whole or not at all: the reader polls for it


def main(argv: list[str]) -> int:
    """REQUEST, then the arguments of `creditstream` (``worker ...``)."""
    request, rest = Path(argv[0]), argv[1:]
    threading.Thread(target=_serve, args=(request,), daemon=True, name="heap-report").start()
    # The command line as `python -m creditstream.cli` runs it: the CLI is a program to
    # load/, as in the load tools' other worker processes, never a module it imports.
    sys.argv = ["creditstream", *rest]
    runpy.run_module("creditstream.cli", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

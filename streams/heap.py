"""The worker's garbage collector, set for a heap that is mostly cached state.

A worker keeps decoded states (machines, facilities with their kept fleets) in bounded
caches: millions of small objects that live for minutes and are replaced continuously.
With CPython's default thresholds (700, 10, 10) the full collections that this churn
causes walk the whole heap: py-spy over a worker of a 300,000-machine world at 5,000
events/s found 27% of its samples in ``gc_collect_main``, and stage 1 over a partition
of 75,000 cached machine states spent 2.0 s in collections against 0.23 s with the
thresholds below (80-100 against 33-44 us per reading: docs/performance.md). The states
are acyclic JSON, freed by reference counting when a cache drops them; the collector
is only needed for the rare cycles (tracebacks, futures), so it runs far less often.
"""

from __future__ import annotations

import gc

# Young objects between two collections of the youngest generation (default 700), and
# collections of a generation between two of the next (defaults 10 and 10).
THRESHOLDS = (50_000, 20, 20)


def tune_collector() -> None:
    """Set :data:`THRESHOLDS` and move everything alive now (the imported modules and
    what they built) out of the collector's view: it is never garbage. Frozen objects are
    not listed by ``gc.get_objects()`` either: the worker calls this before it creates
    its app, which `load state` finds among the live objects (load/heapworker.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)

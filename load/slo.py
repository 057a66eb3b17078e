"""Service-level objectives of a load run: ``p99<=500ms``, checked against its results.

Grammar: clauses separated by commas, each ``[series.]stat<=value``:
  * ``stat`` is ``p50``, ``p90``, ``p99``, ``p99.9`` (any percentile the results hold),
    ``max`` or ``mean``, with a value in ``ms`` or ``s``; ``series`` is one of the latency
    series (``all`` by default, ``limit``, ``signal``, ``telemetry_signal``, ``alert``);
  * ``deadletters<=N``: dead letters caused by the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_CLAUSE = re.compile(r"^(?:(?P<series>[a-z_]+)\.)?(?P<stat>p\d+(?:\.\d+)?|max|mean|deadletters)"
                     r"\s*<=\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)?$")


@dataclass(frozen=True)
class Clause:
    series: str
    stat: str
    limit: float  # milliseconds, or a count for deadletters
    text: str


def parse(spec: str) -> list[Clause]:
    """Parse an SLO spec; raise ValueError naming the clause that does not parse."""
    out = []
    for raw in spec.split(","):
        text = raw.strip()
        m = _CLAUSE.match(text)
        if not m:
            raise ValueError(f"SLO clause {text!r} not understood: write e.g. 'p99<=500ms' or 'limit.max<=2s'")
        stat, unit = m["stat"], m["unit"]
        value = float(m["value"])
        if stat == "deadletters":
            if unit:
                raise ValueError(f"SLO clause {text!r}: deadletters is a count, without a unit")
        elif unit is None:
            raise ValueError(f"SLO clause {text!r}: give the unit, ms or s")
        elif unit == "s":
            value *= 1000
        out.append(Clause(m["series"] or "all", stat, value, text))
    return out


def check(clauses: list[Clause], results: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per clause; a series with no measurement fails (nothing proved)."""
    verdicts = []
    for c in clauses:
        if c.stat == "deadletters":
            actual: float | None = results.get("deadletters", {}).get("count", 0)
        else:
            actual = results.get("latency_ms", {}).get(c.series, {}).get(c.stat)
        ok = actual is not None and actual <= c.limit
        verdicts.append({"clause": c.text, "actual": actual, "limit": c.limit, "ok": ok})
    return verdicts

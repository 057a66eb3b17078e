"""The latency-throughput curve: end-to-end p50 and p99 of `load run` at rising rates.

``python -m load.curve --rates 500,1000,2000,3000,5000 --seconds 30 --out docs/latency-curve``
runs one open-loop `load run` per rate (steady scenario, one worker it starts, a fresh
engine id each, the run's default world), and writes ``<out>.json`` (every step's figures)
and ``<out>.svg`` (p50 and p99 against the rate, with the 250 ms objective), drawn by the
same chart code as the run report (load/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from load import report
from load.run import RunOptions
from load.run import run as load_run

OBJECTIVE_MS = 250.0


async def steps(rates: list[float], duration_s: float, machines: int) -> list[dict[str, Any]]:
    out = []
    for rate in rates:
        try:
            code, res = await load_run(RunOptions(rate=rate, duration_s=duration_s, machines=machines,
                                                  slo=f"p99<={OBJECTIVE_MS:g}ms", start_workers=1, progress=False))
        except RuntimeError as exc:  # a step that could not run (a worker gone) is said, not fatal
            print(f"  rate {rate:>7,.0f} ev/s: not measured ({exc})", file=sys.stderr, flush=True)
            continue
        lat = res["latency_ms"]["all"]
        step = {"rate": rate, "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "max_ms": lat.get("max"),
                "outputs": lat.get("count"), "sent": res["generator"]["sent"],
                "generator_p99_late_ms": res["generator"]["lateness_ms"].get("p99"),
                "drained": res["drained"], "peak_lag": res["peak_lag"], "met": code == 0,
                "worker_cpu_pct": res["workers"].get("cpu_pct_mean_under_load"), "run": res["run"]}
        print(f"  rate {rate:>7,.0f} ev/s: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, "
              f"{'met' if step['met'] else 'missed'}", file=sys.stderr, flush=True)
        out.append(step)
    return out


def svg(points: list[dict[str, Any]], title: str) -> str:
    ok = [p for p in points if p["p99_ms"] is not None]
    series = {"p50": [(p["rate"], p["p50_ms"]) for p in ok], "p99": [(p["rate"], p["p99_ms"]) for p in ok],
              f"objective p99 <= {OBJECTIVE_MS:g} ms": [(ok[0]["rate"], OBJECTIVE_MS), (ok[-1]["rate"], OBJECTIVE_MS)]
              if ok else []}
    return report.line_chart(title, series, "telemetry events/s (open loop)", "end-to-end latency (ms)",
                             width=800, height=360)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.curve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="500,1000,2000,3000,5000", help="events/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=30.0, help="run length per rate")
    ap.add_argument("--machines", type=int, default=RunOptions.machines)
    ap.add_argument("--out", type=Path, default=Path("docs/latency-curve"), help="writes <out>.json and <out>.svg")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    duration_s = args.seconds
    points = asyncio.run(steps(rates, duration_s, args.machines))
    when = datetime.now(UTC).isoformat(timespec="minutes")
    args.out.with_suffix(".json").write_bytes(orjson.dumps(
        {"date": when, "duration_s": duration_s, "machines": args.machines, "steps": points},
        option=orjson.OPT_INDENT_2))
    args.out.with_suffix(".svg").write_text(svg(points, f"load run, one worker, {duration_s:g} s per rate ({when})"))
    print(orjson.dumps(points).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

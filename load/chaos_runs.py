"""`creditstream chaos run --fault F|all`: run one fault, or every fault in turn, and print
each figure line (and with ``all`` a summary); the exit code is 1 when any fails."""

from __future__ import annotations

import argparse
import asyncio
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from load import chaos, chaos_pg, chaos_webhook
from load.chaos_sinks import DEFAULT_OUTAGE_S, SINK_FAULTS

FAULTS = (*chaos.FAULTS, *SINK_FAULTS)


class Result(Protocol):
    fault: str

    @property
    def ok(self) -> bool: ...

    def line(self) -> str: ...


@dataclass
class Crashed:
    """A fault run that could not be completed: it counts as a failure."""

    fault: str
    error: str
    ok: bool = False

    def line(self) -> str:
        return f"chaos {self.fault}: did not complete: {self.error} -> FAIL"


async def run_fault(fault: str, args: argparse.Namespace) -> Result:
    if fault in chaos.FAULTS + chaos.SCALE_OUT_FAULTS:
        return await chaos.run(fault, args.events, args.machines, args.rate, args.seed,
                               args.business_every, getattr(args, "workers", 1))
    outage = args.outage if args.outage is not None else DEFAULT_OUTAGE_S[fault]
    module: Any = chaos_pg if fault == "pg" else chaos_webhook
    return await module.run(args.events, args.machines, args.rate, args.seed, outage)


def main(args: argparse.Namespace) -> int:
    faults = FAULTS if args.fault == "all" else (args.fault,)
    runs = max(1, getattr(args, "runs", 1))
    results: list[tuple[Result, float]] = []
    first_seed = getattr(args, "seed", 7)
    for fault in faults:
        for n in range(runs):
            # Run n of a fault uses seed + n: another world, and for churn another order of steps.
            args.seed = first_seed + n
            t0 = time.monotonic()
            try:
                res: Result = asyncio.run(run_fault(fault, args))
            except Exception as exc:  # noqa: BLE001 - with `all` or --runs, the other runs still run
                if len(faults) == 1 and runs == 1:
                    raise
                traceback.print_exc()
                res = Crashed(fault, f"{type(exc).__name__}: {exc}")
            results.append((res, time.monotonic() - t0))
            print(orjson.dumps(asdict(res) | {"ok": res.ok, "seed": args.seed}, default=str).decode())  # type: ignore[call-overload]
            prefix = f"[{fault} run {n + 1}/{runs}, seed {args.seed}] " if runs > 1 else ""
            print(f"{prefix}{res.line()}", flush=True)
    args.seed = first_seed
    if runs > 1:
        print("runs per fault:")
        for fault in faults:
            mine = [res for res, _ in results if res.fault == fault]
            print(f"  {fault:<10} {sum(r.ok for r in mine)} of {len(mine)} passed")
    if len(faults) > 1:
        print("summary:")
        for res, took in results:  # the figure lines are printed above
            print(f"  {res.fault:<10} {'PASS' if res.ok else 'FAIL'}  {took:4.0f} s")
        failed = [res.fault for res, _ in results if not res.ok]
        print(f"chaos all: {len(results) - len(failed)} of {len(results)} faults passed"
              + (f"; failed: {', '.join(failed)}" if failed else "") + f" -> {'FAIL' if failed else 'PASS'}")
    return 0 if all(res.ok for res, _ in results) else 1

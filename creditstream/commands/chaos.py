"""`creditstream chaos run --fault F`: inject a fault into a real engine under load."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from load import chaos

    return chaos.main(args)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("chaos", help="fault injection under load: kill, rebalance, broker restart")
    actions = p.add_subparsers(dest="action", required=True)
    r = actions.add_parser("run", help="run one fault and print the figure line")
    r.add_argument("--fault", choices=["kill", "rebalance", "broker"], required=True)
    r.add_argument("--events", type=int, default=20000, help="telemetry readings to send")
    r.add_argument("--machines", type=int, default=400)
    r.add_argument("--rate", type=float, default=2000.0, help="telemetry events per second (open loop)")
    r.add_argument("--seed", type=int, default=7)
    r.set_defaults(func=_run)

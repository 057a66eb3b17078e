"""`creditstream chaos run --fault F`: inject a fault into a real engine under load."""

from __future__ import annotations

import argparse

from creditstream.commands import Subparsers


def _run(args: argparse.Namespace) -> int:
    from load import chaos_runs

    return chaos_runs.main(args)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("chaos", help="fault injection under load: engine, broker, PostgreSQL, webhook endpoint")
    actions = p.add_subparsers(dest="action", required=True)
    r = actions.add_parser("run", help="run one fault (or all in turn) and print the figure line")
    # Literal names (not imported from load/) so `creditstream --help` stays fast.
    r.add_argument("--fault", choices=["kill", "rebalance", "broker", "pause", "churn", "late", "kill-each",
                                       "add", "roll", "pg", "webhook", "all"], required=True,
                   help="kill/rebalance/broker/pause/churn/late/kill-each/add/roll: the engine, with business "
                        "events flowing (kill-each: every worker SIGKILLed in turn; add: two workers join; "
                        "roll: a rolling restart); "
                        "pg: PostgreSQL under the ledger; webhook: a lender's endpoint; all: each in turn, "
                        "with a summary")
    r.add_argument("--events", type=int, default=20000, help="telemetry readings to send")
    r.add_argument("--machines", type=int, default=400)
    r.add_argument("--rate", type=float, default=2000.0, help="telemetry events per second (open loop)")
    r.add_argument("--seed", type=int, default=7, help="world (and churn order) seed of the first run")
    r.add_argument("--runs", type=int, default=1, metavar="N",
                   help="runs per fault, with seeds seed, seed+1, ...; prints passes per fault (default 1)")
    r.add_argument("--business-every", type=int, default=20, metavar="N",
                   help="engine faults: a business event after every N readings; 0 for telemetry only "
                        "(default 20)")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="engine faults: workers the engine runs from the start (default 1)")
    r.add_argument("--outage", type=float, default=None, metavar="S",
                   help="seconds the sink stays down for pg (default 30) and webhook (default 120)")
    r.set_defaults(func=_run)

"""`creditstream fuzz run`: the bad-input campaign over every decoder (docs/security.md)."""

from __future__ import annotations

import argparse
import sys

from creditstream.commands import Subparsers


def _run(args: argparse.Namespace) -> int:
    import orjson

    from load.fuzz import campaign
    from schemas import config

    only = [n.strip() for n in args.only.split(",")] if args.only else None

    def progress(t: campaign.Tally) -> None:
        print(f"fuzz: {t.name}: {t.tried} inputs in {t.seconds:.1f} s, {t.failed} failures",
              file=sys.stderr, flush=True)

    tallies = [] if args.broker_only else campaign.run(args.examples, args.seed, only, progress)
    notes: list[str] = []
    if args.broker or args.broker_only:
        from load.fuzz import broker

        settings = config.load()
        engine = broker.engine_campaign(settings.kafka_bootstrap, args.broker_sample, args.seed,
                                        settings.state_dir / "fuzz-workers")
        progress(engine.tally)
        notes += engine.notes + [f"engine: {engine.not_sent} records over 900 KiB not sent (Kafka's "
                                 f"request limit); worker alive: {engine.worker_alive}, /healthz: {engine.healthz}"]
        gateway = broker.gateway_campaign(settings.pg_url, settings.kafka_bootstrap, args.gateway_sample, args.seed)
        progress(gateway)
        tallies += [engine.tally, gateway]
        from load.fuzz import attacks  # issue 11: the lender API fuzzed, and the abuse attacks

        lender_api = attacks.lender_api_campaign(settings.pg_url, args.gateway_sample, args.seed)
        progress(lender_api)
        abuse = attacks.attacks_campaign(settings.pg_url, settings.kafka_bootstrap)
        progress(abuse)
        tallies += [lender_api, abuse]
    print(campaign.table(tallies))
    for note in notes:
        print(f"note: {note}")
    report = campaign.failures_report(tallies)
    if report:
        print(report)
    if args.json:
        with open(args.json, "wb") as f:
            f.write(orjson.dumps({"examples": args.examples, "seed": args.seed, "notes": notes,
                                  "decoders": [t.to_json() for t in tallies]}, option=orjson.OPT_INDENT_2))
    failed = sum(t.failed for t in tallies)
    print(f"fuzz: {sum(t.tried for t in tallies)} inputs tried, {failed} failures", file=sys.stderr)
    return 1 if failed else 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("fuzz", help="bad-input campaign: hypothesis inputs against every decoder")
    actions = p.add_subparsers(dest="action", required=True)
    r = actions.add_parser("run", help="run the campaign, print the table, exit 1 on any failure")
    r.add_argument("--examples", type=int, default=200, help="hypothesis examples per decoder")
    r.add_argument("--seed", type=int, default=None, help="hypothesis seed, to repeat a run")
    r.add_argument("--only", help="comma-separated decoders (names as in the table)")
    r.add_argument("--broker", action="store_true",
                   help="also send a sample through Kafka to a worker, and to the HTTP gateway")
    r.add_argument("--broker-only", action="store_true", help="only the Kafka and gateway part")
    r.add_argument("--broker-sample", type=int, default=300, help="records sent to the worker")
    r.add_argument("--gateway-sample", type=int, default=200, help="bodies posted to the gateway")
    r.add_argument("--json", help="also write the results to this file")
    r.set_defaults(func=_run)

"""`creditstream epcis import FILE --tenant T`: EPCIS 2.0 documents to shipment events."""

from __future__ import annotations

import argparse

from creditstream.commands import Subparsers, said, send_outcome


def _run(args: argparse.Namespace) -> int:
    return said("epcis import", lambda: _import(args))


def _import(args: argparse.Namespace) -> int:
    from connectors.sources import epcis
    from connectors.sources.common import Outcome, RejectedItem, SourceError
    from connectors.sources.emit import load_map
    from schemas import config

    party_map = load_map(args.party_map)
    location_map = load_map(args.location_map)
    outcome = Outcome()
    for path in args.files:
        with open(path, "rb") as f:
            body = f.read()
        try:
            outcome.extend(epcis.parse_document(body, tenant=args.tenant, origin=f"file:{path}",
                                                party_map=party_map, location_map=location_map))
        except SourceError as exc:
            outcome.rejected.append(RejectedItem(f"file:{path}", exc.reason, exc.message, body))
    return send_outcome(args.bootstrap or config.load().kafka_bootstrap, outcome, tenant=args.tenant,
                        stage="epcis")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("epcis", help="import GS1 EPCIS 2.0 JSON-LD documents as shipment events")
    a = p.add_subparsers(dest="action", required=True)
    i = a.add_parser("import", help="read EPCISDocument files and produce shipment.observed events")
    i.add_argument("files", nargs="+", metavar="FILE", help="EPCIS 2.0 JSON-LD document(s)")
    i.add_argument("--tenant", required=True, help="the publishing core enterprise")
    i.add_argument("--party-map", help="JSON file: EPCIS party id (pgln URN) -> supplier party id")
    i.add_argument("--location-map", help="JSON file: location (sgln URN of a read point, business "
                   "location, ship-from location or its site) -> supplier party id, for events "
                   "without party lists")
    i.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    i.set_defaults(func=_run)

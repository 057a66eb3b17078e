"""`creditstream invoices import FILE --format ubl|vat --tenant T`: invoices to events."""

from __future__ import annotations

import argparse
import os

from creditstream.commands import Subparsers, said, send_outcome


def _run(args: argparse.Namespace) -> int:
    return said("invoices import", lambda: _import(args))


def _import(args: argparse.Namespace) -> int:
    from connectors.sources import invoices
    from connectors.sources.common import Outcome
    from connectors.sources.emit import load_map
    from schemas import config

    party_map = load_map(args.party_map)
    index = _load_index(args.invoice_index)
    outcome = Outcome()
    bodies = []
    for path in args.files:
        with open(path, "rb") as f:
            bodies.append((path, f.read()))
    if args.format == "ubl":
        # Invoices first: a credit note in the same run then finds the invoice it credits.
        bodies.sort(key=lambda pb: invoices.document_kind(pb[1]) == "CreditNote")
    for path, body in bodies:
        if args.format == "ubl":
            outcome.extend(invoices.parse_ubl(body, tenant=args.tenant, origin=f"file:{path}",
                                              party_map=party_map, terms_days=args.terms_days, index=index))
        else:
            outcome.extend(invoices.parse_vat(body, tenant=args.tenant, origin=f"file:{path}",
                                              party_map=party_map, terms_days=args.terms_days))
    rc = send_outcome(args.bootstrap or config.load().kafka_bootstrap, outcome, tenant=args.tenant,
                      stage="invoices")
    if rc == 2:  # Kafka did not answer: nothing to record
        return rc
    if args.invoice_index:  # only once Kafka acknowledged the invoices it records
        import orjson

        with open(args.invoice_index, "wb") as f:
            f.write(orjson.dumps(index.entries, option=orjson.OPT_INDENT_2))
    return rc


def _load_index(path: str | None):  # -> InvoiceIndex
    import orjson

    from connectors.sources.credit_notes import InvoiceIndex

    if not path or not os.path.exists(path):
        return InvoiceIndex()
    with open(path, "rb") as f:
        entries = orjson.loads(f.read())
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: an invoice index is a JSON object")
    return InvoiceIndex(entries)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("invoices", help="import UBL 2.1 / Peppol or Chinese VAT invoices")
    a = p.add_subparsers(dest="action", required=True)
    i = a.add_parser("import", help="read invoice files and produce invoice.issued events")
    i.add_argument("files", nargs="+", metavar="FILE",
                   help="UBL XML (one Invoice per file) or VAT JSON (an invoice, a list, or {invoices: [...]})")
    i.add_argument("--format", required=True, choices=["ubl", "vat"])
    i.add_argument("--tenant", required=True, help="the publishing core enterprise")
    i.add_argument("--party-map", help="JSON file: tax id -> party id (default: the tax id)")
    i.add_argument("--terms-days", type=int, default=30,
                   help="payment terms when an invoice has no due date (default 30)")
    i.add_argument("--invoice-index", help="JSON file recording every invoice imported (kept between runs), "
                   "so a later UBL credit note finds the invoice it credits")
    i.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    i.set_defaults(func=_run)

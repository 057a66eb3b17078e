"""The duplicate-financing guard's refusal, shared by every document that can be
financed only once (an invoice, a warehouse receipt, a waybill).

The guard itself is where the document is keyed: its stage-1 state is keyed by the
document's identity (an invoice's fingerprint, a receipt's warehouse and number), so
every presentation of it, by any borrower, meets in one partition; the first holder
owns it for the document's whole life. A later presentation is not counted and raises
DUPLICATE_FINANCING with the words of this one function.
"""

from __future__ import annotations

from streams.domain.signals import Output, alert


def duplicate_financing(document: str, role: str, holder: str, claimant: str, status: str, live: bool,
                        at: float, triggers: list[str], asset_id: str, tenant: str | None) -> Output:
    """DUPLICATE_FINANCING for ``claimant`` presenting ``document`` (e.g. "Invoice 123")
    that ``holder`` (a ``role``: seller, borrower, carrier) already financed; ``status``
    is the document's, ``live`` whether it is still financed."""
    who = f"the same {role}" if holder == claimant else f"another {role}"
    when = "while it is already financed" if live else f"after it was {status}"
    return alert("DUPLICATE_FINANCING", "critical",
                 f"{document} was submitted again by {who} {when}; it is not counted again.",
                 at, triggers, claimant, asset_id, tenant)

"""Who a UBL party is: its VAT number when it has one, else its Peppol identifiers.

Peppol BIS 3.0 lets a party go without a VAT number: sellers of VAT categories E (exempt),
O (outside the scope of VAT: BR-O-02 even forbids the seller's VAT number) and Z, buyers
that are not VAT registered, and sellers represented by a tax representative. Such
parties are identified by their ``EndpointID`` (electronic address, with a scheme) or a
``PartyIdentification/ID``. The contract's ``seller_tax_id`` takes 8-20 letters and
digits, so those become ``<scheme><id>`` with separators dropped (``0088:7300010000001``
-> ``00887300010000001``): the scheme keeps two registries' equal numbers apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from connectors.sources import safexml
from connectors.sources.common import SourceError

_TAX_ID = re.compile(r"[A-Z0-9]{8,20}")


@dataclass(frozen=True)
class PartyId:
    tax_id: str                  # what the contract carries (seller_tax_id; fingerprint)
    keys: tuple[str, ...]        # what a --party-map may be keyed by, best first
    source: str                  # which element it came from, for notes and docs


def compact(value: str) -> str:
    """A tax id as the contract wants it: upper case, spaces, dots and dashes removed."""
    return re.sub(r"[\s.\-]", "", value).upper()


def _scheme_forms(el: Element) -> tuple[str | None, tuple[str, ...]]:
    """An identifier with its schemeID: the contract form and the map keys it answers to."""
    value = (el.text or "").strip()
    scheme = (el.attrib.get("schemeID") or "").strip()
    if not value:
        return None, ()
    bare = re.sub(r"[^A-Za-z0-9]", "", value).upper()
    with_scheme = re.sub(r"[^A-Za-z0-9]", "", scheme).upper() + bare
    keys = tuple(k for k in (f"{scheme}:{value}" if scheme else "", value, with_scheme, bare) if k)
    for form in (with_scheme, bare):  # the scheme-prefixed form, unless it is too long
        if _TAX_ID.fullmatch(form):
            return form, keys
    return None, keys


def identify(party: Element | None, what: str) -> PartyId:
    """The party's id: VAT (PartyTaxScheme), legal registration, EndpointID, PartyIdentification.

    A VAT or registration number that is present but malformed is refused (``bad_tax_id``)
    rather than passed over: it is a mistake to fix, not an absent field.
    """
    if party is None:
        raise SourceError("missing_field", f"{what}/Party is required")
    for scheme in safexml.children(party, "PartyTaxScheme"):
        if (v := safexml.text(scheme, "CompanyID")) is not None:
            return PartyId(_checked(v, what), (v, compact(v)), "PartyTaxScheme/CompanyID")
    if (v := safexml.text(party, "PartyLegalEntity", "CompanyID")) is not None:
        return PartyId(_checked(v, what), (v, compact(v)), "PartyLegalEntity/CompanyID")
    tried: list[str] = []
    candidates = [e for e in [safexml.child(party, "EndpointID")] if e is not None]
    candidates += [i for p in safexml.children(party, "PartyIdentification") if (i := safexml.child(p, "ID")) is not None]
    for el in candidates:
        form, keys = _scheme_forms(el)
        if form is not None:
            return PartyId(form, keys, safexml.local(el.tag))
        tried += keys[:1]
    if tried:
        raise SourceError("bad_tax_id", f"{what}: identifier {tried[0]!r} is not 8-20 letters and digits")
    raise SourceError("missing_field", f"{what}: no VAT number, company id, EndpointID or PartyIdentification")


def _checked(value: str, what: str) -> str:
    tid = compact(value)
    if not _TAX_ID.fullmatch(tid):
        raise SourceError("bad_tax_id", f"{what} tax id {value!r} is not 8-20 letters and digits")
    return tid


def party_id(party: PartyId, party_map: dict[str, str]) -> str:
    """The creditstream party id: the first ``--party-map`` key that matches, else the tax id."""
    for key in (party.tax_id, *party.keys):
        if key in party_map:
            return party_map[key]
    return party.tax_id

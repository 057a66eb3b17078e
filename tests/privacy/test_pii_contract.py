"""The contract keeps identifiers opaque: a party's tax id may not be its id."""

from __future__ import annotations

import orjson
import pytest

from schemas import codec
from schemas.examples import SELLER_TAX_ID, example_events

REGISTRATION = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "registry.borrower")))


@pytest.mark.parametrize("party_id", [SELLER_TAX_ID, SELLER_TAX_ID.lower()])
def test_a_borrower_whose_id_is_its_tax_id_is_refused(party_id: str) -> None:
    event = dict(REGISTRATION, payload={**REGISTRATION["payload"], "party_id": party_id})
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(orjson.dumps(event))
    assert "party_id must not be the tax id" in str(exc.value)


def test_registrations_carry_nothing_personal_beyond_name_and_tax_id() -> None:
    # Unknown fields are refused, so a phone number or an address cannot ride along.
    event = dict(REGISTRATION, payload={**REGISTRATION["payload"], "phone": "+86 138 0013 8000"})
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(orjson.dumps(event))
    assert exc.value.errors[0]["field"] == "payload.phone"

"""Building blocks shared by every event: identifiers, money, time, geography.

Rules here are the contract with producers in any language, so each constraint has a
message that names the rule a producer broke.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.currencies import MINOR_UNITS


class Model(BaseModel):
    """Base of every contract model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


# Identifiers: bounded length and a charset that is safe in Kafka keys, URLs and logs.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=64)]
EventId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$", max_length=128)
]
# Tax ids: China's unified social credit code is 18 characters; EU VAT numbers up to ~15.
TaxId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{8,20}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CODE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]


def is_code(value: str) -> bool:
    """Whether ``value`` is a valid :data:`Code` (a reason or stage echoed back as one)."""
    return bool(re.match(CODE_PATTERN, value))


# 9999-12-31T23:59:59-12:00 is a valid aware datetime whose UTC time (year 10000) is not:
# arithmetic and conversions on it raise OverflowError far from the decoder. Bounds, not
# an AfterValidator: pydantic-core compares them without a Python call (2 timestamps per
# event, ~1.7 us of the hot path's decode).
UTC_MIN = datetime.min.replace(tzinfo=UTC)
UTC_MAX = datetime.max.replace(tzinfo=UTC)
TIMESTAMP_RANGE_RULE = "timestamp is outside years 1-9999 once converted to UTC"
Timestamp = Annotated[AwareDatetime, Field(ge=UTC_MIN, le=UTC_MAX)]


def _reject_float(value: Any) -> Any:
    # JSON floats lose cents (0.1 + 0.2); money travels as a decimal string or an integer.
    if isinstance(value, bool):
        raise ValueError("money amount must be a decimal string or an integer, not a boolean")
    if isinstance(value, float):
        raise ValueError("money amount must be a decimal string like \"1250.00\", not a float")
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"money amount {value!r} is not a decimal number") from None
        if not parsed.is_finite():
            raise ValueError("money amount must be finite")
        return parsed
    return value


# Every amount the engine publishes carries cents in at most 18 digits, so an input amount
# (and a sum the engine keeps, like a borrower's outstanding loans) stays below 10^16.
MAX_AMOUNT = Decimal(10) ** 16

Amount = Annotated[
    Decimal,
    BeforeValidator(_reject_float),
    Field(ge=0, lt=MAX_AMOUNT, max_digits=18, description="Decimal string or integer; never a float"),
]


def _check_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise ValueError(f"unknown currency {code!r}: must be an active ISO 4217 code")
    return code


Currency = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_check_currency)
]


class Money(Model):
    """An amount in an ISO 4217 currency, with no more decimals than its minor unit."""

    amount: Amount
    currency: Currency

    @model_validator(mode="after")
    def _minor_units(self) -> Money:
        exponent = self.amount.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if places > MINOR_UNITS[self.currency]:
            raise ValueError(
                f"{self.currency} has {MINOR_UNITS[self.currency]} decimal places; "
                f"amount {self.amount} has {places}"
            )
        return self


def cny(amount: str | int | Decimal) -> Money:
    """Shorthand for a renminbi amount, used by the simulator and tests."""
    return Money(amount=Decimal(str(amount)), currency="CNY")


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class GeoPoint(Model):
    lat: Latitude
    lon: Longitude


class Geofence(Model):
    """A circle around a site; machines pledged to a site must stay inside it."""

    center: GeoPoint
    radius_km: Annotated[float, Field(gt=0, le=2000)]

"""Policy versions as data: one TOML file per version, validated before it is used.

Every parameter of docs/credit-policy.md section 5 lives in
``streams/domain/policies/<version>.toml`` (shipped as package data); the file's
``version`` is the ``policy_version`` of every limit update decided under it. A file
is checked against ``PolicyFile`` (pydantic, extra keys refused) and a file that
fails is refused with every error listed, never half-applied. The JSON Schema of the
file format is generated from the same model (``schema_bytes``) and kept in
schemas/json/policy/ so a tool that edits policy files can check them too.

Adding a parameter (docs/credit-policy.md section 5, "Adding a parameter"): a field
in ``PolicyParameters`` with its bounds, a line in every shipped policy file, the
field in ``policy.PolicyParams`` with ``= BASE["name"]`` as its default, and
``creditstream policy schema --write``.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.common import Id
from streams.errors import StreamsError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "json" / "policy" / "policy-file.json"
SHIPPED_DIR = resources.files("streams.domain.policies")
VERSION_PATTERN = r"^[0-9]{4}\.[0-9]{1,2}-[0-9A-Za-z.]{1,16}$"

Rate = Annotated[Decimal, Field(ge=0, le=1)]
Days = Annotated[int, Field(ge=1, le=3650)]


class PolicyParameters(BaseModel):
    """Every parameter of section 5, each required: a version is complete on its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    advance_rate: Rate = Field(description="receivables: share of the outstanding amount that counts")
    order_advance_rate: Rate = Field(description="orders: share of the order amount that counts")
    loan_to_value: Rate = Field(description="equipment: share of the collateral value that counts")
    max_tenor_days: Days = Field(description="receivables: longest tenor (due - issue) that counts")
    fulfilment_prior: Rate = Field(description="orders: score while fewer than the minimum deliveries")
    fulfilment_min_deliveries: Annotated[int, Field(ge=1, le=1000)]
    fulfilment_window_days: Days
    order_grace_days: Annotated[int, Field(ge=0, le=365)] = Field(
        description="ORDER_NOT_DELIVERED: days after delivery_due an undelivered order still counts")
    util_floor: Annotated[float, Field(ge=0, le=1)]
    util_cap: Annotated[float, Field(ge=1, le=5)]
    util_step: Annotated[float, Field(gt=0, le=5)] = Field(description="bounded increase per window")
    util_step_window_days: Days
    silent_after_hours: Annotated[float, Field(gt=0, le=24 * 365)]
    silent_factor: Rate
    soh_full: Annotated[float, Field(gt=0, le=100)]
    soh_low: Annotated[float, Field(ge=0, lt=100)]
    soh_low_factor: Annotated[float, Field(ge=0, le=1)]
    soh_poor_factor: Annotated[float, Field(ge=0, le=1)]
    critical_fault_factor: Rate
    inclusive_cap_cny: Annotated[Decimal, Field(gt=0, le=Decimal("1e15"))]
    rounding_unit: Annotated[Decimal, Field(gt=0, le=Decimal("1e9"))] = Field(
        description="the limit's rounding unit and materiality threshold")
    seasonal_profile: Annotated[list[Annotated[float, Field(ge=0.05, le=2)]],
                                Field(max_length=12)] = Field(
        description="12 monthly shares of the baseline, January first; empty = 1.0 every month")
    dealer_sales_multiple: Annotated[Decimal, Field(ge=0, le=12)]
    dealer_repay_days: Annotated[int, Field(ge=1, le=90)]
    curtail_after_days: Annotated[int, Field(ge=1, le=720)]
    curtail_every_days: Annotated[int, Field(ge=1, le=365)]
    curtail_step: Rate
    # Warehouse receipts and freight receivables (sections 1.5, 1.6), early warning
    # (12.3), pricing (13): in the files since 2026.12-3, code defaults before.
    commodity_haircuts: Annotated[dict[Id, Rate], Field(max_length=200)] = Field(
        description="warehouse receipts: the share of the market value not lent, per commodity code; "
                    "a commodity not listed is not financed (empty: none)")
    price_max_age_days: Annotated[int, Field(ge=1, le=90)] = Field(
        description="warehouse receipts: PRICE_STALE after this many days since the commodity's last quote")
    freight_advance_rate: Rate = Field(description="freight: share of a corroborated waybill's amount that counts")
    ew_max_cut: Annotated[Decimal, Field(ge=0, le=Decimal("0.30"))] = Field(
        description="early warning: the largest cut of an active warning (0 = warn only)")
    pricing_table: Annotated[dict[Literal["A", "B", "C", "D", "E"], Annotated[Decimal, Field(ge=0, le=100)]],
                             Field(min_length=5)] = Field(
        description="pricing: indicative APR in percent per risk grade, all five of A-E")
    interest_subsidy_share: Rate = Field(description="pricing: share of the interest a public subsidy pays")
    lpr_1y_default: Annotated[Decimal, Field(gt=0, le=100)] = Field(
        description="pricing: the one-year LPR in percent until a registry.reference_rate is published")


class PolicyFile(BaseModel):
    """One policy version: what the credit committee approves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(pattern=VERSION_PATTERN,
                                  description="the policy_version of every decision made under it")]
    based_on: Annotated[str | None, Field(pattern=VERSION_PATTERN)] = Field(
        default=None, description="the version this one was derived from")
    approved: Annotated[str, Field(max_length=200)] = Field(
        default="", description="who approved it and when (free text, for the record)")
    description: Annotated[str, Field(max_length=2000)] = ""
    parameters: PolicyParameters


class PolicyFileError(StreamsError, ValueError):
    """A policy file that cannot be used; ``errors`` lists every problem, one line each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source, self.errors = source, errors
        super().__init__(f"policy file {source} refused, {len(errors)} error(s):\n"
                         + "\n".join(f"  - {e}" for e in errors))


def parse(text: str, source: str = "<text>") -> PolicyFile:
    """A policy file's text, validated; decimals keep the digits written in the file
    (0.80 stays Decimal("0.80"): a factor's digits show in a component's detail)."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(source, [f"not TOML: {exc}"]) from None
    try:
        policy = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(source, [f"{'.'.join(str(x) for x in e['loc']) or '(file)'}: {e['msg']}"
                                       for e in exc.errors()]) from None
    p = policy.parameters
    errors = []
    if p.soh_low >= p.soh_full:
        errors.append("parameters.soh_low: must be below soh_full")
    if p.util_floor > p.util_cap:
        errors.append("parameters.util_floor: must not exceed util_cap")
    if p.seasonal_profile and len(p.seasonal_profile) != 12:
        errors.append("parameters.seasonal_profile: 12 monthly shares or none")
    if errors:
        raise PolicyFileError(source, errors)
    return policy


def load_file(path: str | Path) -> PolicyFile:
    """A policy file from disk (a candidate under review)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyFileError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse(text, str(path))


def shipped_versions() -> list[str]:
    """The versions shipped with the engine (the files of streams/domain/policies/)."""
    return sorted(p.name[:-5] for p in SHIPPED_DIR.iterdir()
                  if p.name.endswith(".toml"))


@cache
def shipped(version: str) -> PolicyFile:
    """A shipped version; an engine can decide under any shipped version (shadow, diff,
    promotion), so every one is validated the first time it is asked for."""
    if version not in shipped_versions():
        raise PolicyFileError(version, [f"no policy file {version}.toml in streams/domain/policies "
                                        f"(shipped: {', '.join(shipped_versions())})"])
    text = SHIPPED_DIR.joinpath(f"{version}.toml").read_text()
    policy = parse(text, f"{version}.toml")
    if policy.version != version:
        raise PolicyFileError(f"{version}.toml", [f"version: the file says {policy.version}, its name {version}"])
    return policy


# Candidate versions read from a file in this process (a diff's --to, a shadow's
# candidate); a version number names one set of parameters, so a second, different
# file under a known version is refused.
_LOADED: dict[str, PolicyFile] = {}


def use(policy: PolicyFile) -> str:
    """Make a validated policy decidable by its version in this process."""
    known = _LOADED.get(policy.version) or (shipped(policy.version) if policy.version in shipped_versions()
                                             else None)
    if known is not None and known.parameters != policy.parameters:
        raise PolicyFileError(policy.version, [f"version: {policy.version} already names other parameters; "
                                               "a changed policy needs a new version"])
    _LOADED[policy.version] = policy
    return policy.version


def resolve(ref: str) -> str:
    """A version given on a command line: a shipped version, or a policy file's path."""
    if ref in _LOADED or ref in shipped_versions():
        return ref
    if ref.endswith(".toml") or "/" in ref:
        return use(load_file(ref))
    raise PolicyFileError(ref, [f"neither a shipped version ({', '.join(shipped_versions())}) "
                                "nor a .toml policy file"])


def get(version: str) -> PolicyFile:
    """A version loaded in this process, or a shipped one."""
    return _LOADED.get(version) or shipped(version)


def values(policy: PolicyFile) -> dict[str, Any]:
    """The parameters as PolicyParams takes them (a profile as a tuple, a table as
    sorted (key, value) pairs)."""
    out = dict(policy.parameters)
    out["seasonal_profile"] = tuple(out["seasonal_profile"])
    for table in ("commodity_haircuts", "pricing_table"):
        out[table] = tuple(sorted(out[table].items()))
    return out


def schema_bytes() -> bytes:
    schema = PolicyFile.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://creditstream.example/schemas/policy/policy-file.json"
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

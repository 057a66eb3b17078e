"""Policy versions as data (issue 18, part 1): every section-5 parameter comes from a
versioned TOML file, validated, and a program still overrides what the document allows."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import codec
from schemas import events as ev
from streams.domain import policyfile as pf
from streams.domain.policy import POLICY_VERSION, PolicyParams, for_version
from streams.replay import Replay
from tests.engine import scenarios as sc

CURRENT = pf.shipped(POLICY_VERSION)


def candidate(version: str, **changes: object) -> pf.PolicyFile:
    """The current file with some parameters changed, under a new version."""
    params = CURRENT.parameters.model_copy(update=changes)
    return pf.PolicyFile(version=version, based_on=POLICY_VERSION, parameters=params)


def test_every_parameter_of_the_current_version_comes_from_its_file() -> None:
    fields = {f.name for f in dataclasses.fields(PolicyParams)}
    in_file = set(pf.PolicyParameters.model_fields)
    assert in_file <= fields, in_file - fields
    defaults = PolicyParams()
    for name, value in pf.values(CURRENT).items():
        assert getattr(defaults, name) == value and type(getattr(defaults, name)) is type(value), name
    assert for_version(POLICY_VERSION) == defaults
    # The digits written in the file are kept (they show in components' details).
    assert str(defaults.silent_factor) == "0.50" and str(defaults.dealer_sales_multiple) == "2.0"


def test_2026_12_3_writes_the_last_code_defaults_into_the_file_and_moves_no_value() -> None:
    """2026.12-3 labels the changes made since 2026.12-2; its parameters are 2026.12-2's,
    the seven that were code defaults now in both files with those same values."""
    assert pf.shipped("2026.12-3").based_on == "2026.12-2"
    assert for_version("2026.12-3") == for_version("2026.12-2")
    p = for_version("2026.12-3")
    assert (p.commodity_haircuts, p.price_max_age_days, str(p.freight_advance_rate), str(p.ew_max_cut),
            str(p.interest_subsidy_share), str(p.lpr_1y_default)) == ((), 3, "0.80", "0", "0", "3.00")
    assert [(g, str(r)) for g, r in p.pricing_table] == [
        ("A", "6.00"), ("B", "9.00"), ("C", "12.00"), ("D", "15.00"), ("E", "18.00")]
    # The candidate is based on it and changes only its three values.
    cand = for_version("2027.01-1")
    assert pf.shipped("2027.01-1").based_on == "2026.12-3"
    assert {f.name for f in dataclasses.fields(p) if getattr(p, f.name) != getattr(cand, f.name)} == {
        "loan_to_value", "util_step", "silent_after_hours"}


def test_a_policy_file_with_errors_is_refused_with_every_error_listed(tmp_path: Path) -> None:
    text = pf.SHIPPED_DIR.joinpath(f"{POLICY_VERSION}.toml").read_text()
    # "\nadvance_rate": not order_advance_rate or freight_advance_rate.
    text = (text.replace(f'version = "{POLICY_VERSION}"', 'version = "next"')
            .replace("\nadvance_rate = 0.80", "\nadvance_rate = 1.5")
            .replace("util_step = 0.15", "util_step = 0.15\nutil_stepp = 0.2")
            .replace("rounding_unit = 1000\n", ""))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(pf.PolicyFileError) as err:
        pf.load_file(path)
    msgs = err.value.errors
    assert len(msgs) == 4, msgs
    assert any(m.startswith("version:") for m in msgs)
    assert any(m.startswith("parameters.advance_rate:") for m in msgs)
    assert any(m.startswith("parameters.util_stepp:") and "not permitted" in m for m in msgs)
    assert any(m.startswith("parameters.rounding_unit:") and "required" in m.lower() for m in msgs)
    assert "4 error(s)" in str(err.value)
    path.write_text(text.replace('version = "next"', 'version = "2026.12-9"')
                    .replace("\nadvance_rate = 1.5", "\nadvance_rate = 0.80").replace("util_stepp = 0.2", "")
                    .replace("soh_low = 70.0", "soh_low = 95.0") + "rounding_unit = 1000\n")
    with pytest.raises(pf.PolicyFileError, match="soh_low: must be below soh_full"):
        pf.load_file(path)
    path.write_text("version = [")
    with pytest.raises(pf.PolicyFileError, match="not TOML"):
        pf.load_file(path)


def test_a_version_names_one_set_of_parameters() -> None:
    with pytest.raises(pf.PolicyFileError, match="already names other parameters"):
        pf.use(candidate(POLICY_VERSION, advance_rate=Decimal("0.70")))


def test_the_json_schema_is_the_model_s_and_valid() -> None:
    import tomllib

    import jsonschema
    import orjson

    assert pf.SCHEMA_PATH.read_bytes() == pf.schema_bytes(), "run `creditstream policy schema --write`"
    schema = orjson.loads(pf.SCHEMA_PATH.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    for version in pf.shipped_versions():
        data = tomllib.loads(pf.SHIPPED_DIR.joinpath(f"{version}.toml").read_text())
        jsonschema.Draft202012Validator(schema).validate(data)


def _final(events: list, policy: str | None = None) -> dict[str, dict]:
    r = Replay(policy)
    latest: dict[str, dict] = {}
    for e in events:
        latest.update({o.key: o.value["payload"] for o in r.feed(codec.encode(e)) if o.topic == "cs.limits"})
    return latest


def test_a_candidate_s_rate_reaches_programs_that_do_not_set_it_and_not_those_that_do() -> None:
    version = pf.use(candidate("2026.12-t1", advance_rate=Decimal("0.70")))
    events, expected = sc.receivables("pf1")
    assert _final(events)["sup-pf1"]["limit"]["amount"] == expected["sup-pf1"] == "640000.00"
    after = _final(events, version)["sup-pf1"]
    # 800,000 of confirmed invoices at 0.70 instead of 0.80.
    assert after["limit"]["amount"] == "560000.00" and after["policy_version"] == "2026.12-t1"
    # A program that sets its own advance rate keeps it under any version.
    pinned = []
    for e in events:
        if isinstance(e, ev.ProgramRegistered):
            e = e.model_copy(update={"payload": e.payload.model_copy(
                update={"parameters": ev.ProgramParameters(advance_rate=Decimal("0.80"))})})
        pinned.append(e)
    assert _final(pinned, version)["sup-pf1"]["limit"]["amount"] == "640000.00"

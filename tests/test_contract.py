"""The event contract refuses bad events with messages that name the field and the rule."""

from __future__ import annotations

import copy

import orjson
import pytest

from schemas import codec
from schemas.examples import example_events
from schemas.jsonschema import stale_files


def _invoice() -> dict:
    ev = next(e for e in example_events() if e.type == "invoice.issued")
    return orjson.loads(codec.encode(ev))


def _errors(raw: dict | bytes) -> list[dict[str, str]]:
    data = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    with pytest.raises(codec.DecodeError) as info:
        codec.decode(data)
    return info.value.errors


def _mutate(path: str, value: object, delete: bool = False) -> dict:
    raw = copy.deepcopy(_invoice())
    *parents, leaf = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


def test_every_example_round_trips_through_the_codec() -> None:
    for event in example_events():
        assert codec.decode(codec.encode(event)) == event


def test_every_event_type_has_an_example() -> None:
    assert {e.type for e in example_events()} == set(codec.EVENT_TYPES)


@pytest.mark.parametrize(
    ("path", "value", "delete", "field", "rule"),
    [
        ("payload.buyer_id", None, True, "payload.buyer_id", "Field required"),
        ("payload.due_date", 20260530, False, "payload.due_date", "date"),
        ("occurred_at", "2026-03-01T08:00:00", False, "occurred_at", "timezone"),
        ("payload.invoice.total.amount", "-5.00", False, "payload.invoice.total.amount", "greater than or equal to 0"),
        ("payload.invoice.total.amount", 5000.5, False, "payload.invoice.total.amount", "not a float"),
        ("payload.invoice.total.amount", "12.345", False, "payload.invoice.total", "2 decimal places"),
        ("payload.invoice.total.currency", "XYZ", False, "payload.invoice.total.currency", "unknown currency"),
        ("payload.seller_id", "x" * 65, False, "payload.seller_id", "at most 64"),
        ("payload.seller_id", "bad id;DROP", False, "payload.seller_id", "pattern"),
        ("event_id", "", False, "event_id", "pattern"),
        ("type", "invoice.forged", False, "type", "unknown event type 'invoice.forged'"),
        ("payload.extra", 1, False, "payload.extra", "Extra inputs are not permitted"),
        ("occurred_at", "1999-12-31T00:00:00Z", False, "(event)", "before 2000-01-01"),
        ("occurred_at", "2030-01-01T00:00:00Z", False, "(event)", "clock skew"),
    ],
)
def test_rejections_name_field_and_rule(path: str, value: object, delete: bool, field: str, rule: str) -> None:
    errors = _errors(_mutate(path, value, delete))
    assert any(e["field"] == field and rule in e["rule"] for e in errors), errors


def test_missing_type_and_malformed_json_and_non_objects() -> None:
    raw = _invoice()
    del raw["type"]
    assert _errors(raw)[0]["field"] == "type"
    assert _errors(b'{"event_id": "e1", ')[0]["field"] == "(event)"
    assert "object" in _errors(b"[1, 2]")[0]["rule"]


def test_oversize_event_is_refused_before_parsing() -> None:
    with pytest.raises(codec.DecodeError) as info:
        codec.decode(b" " * (codec.MAX_EVENT_BYTES + 1))
    assert info.value.reason == "too_large"


def test_joint_lending_share_below_30_percent_is_rejected() -> None:
    ev = next(e for e in example_events() if e.type == "registry.program")
    raw = orjson.loads(codec.encode(ev))
    raw["payload"]["lenders"] = [{"lender_id": "bank-a", "share": "0.75"},
                                 {"lender_id": "mfi-b", "share": "0.25"}]
    errors = _errors(raw)
    assert any("at least 0.30" in e["rule"] and "mfi-b" in e["rule"] for e in errors), errors


def test_json_schema_files_match_the_models() -> None:
    assert stale_files() == [], "run `creditstream schemas generate` and commit schemas/json/"


def test_the_published_topic_catalogue_is_the_code_s() -> None:
    """docs/topics.md is what producers read: it lacked cs.dealers after the topic landed."""
    from pathlib import Path

    from schemas.topics import markdown_table

    doc = Path(__file__).resolve().parents[1] / "docs" / "topics.md"
    assert doc.read_text() == markdown_table(), "run `creditstream topics > docs/topics.md`"


def test_the_policy_file_schema_is_the_model_s_and_a_valid_json_schema() -> None:
    """schemas/json/policy/policy-file.json: what a tool editing policy files checks against."""
    import jsonschema

    from streams.domain import policyfile

    assert policyfile.SCHEMA_PATH.read_bytes() == policyfile.schema_bytes(), "run `creditstream policy schema --write`"
    jsonschema.Draft202012Validator.check_schema(orjson.loads(policyfile.SCHEMA_PATH.read_bytes()))

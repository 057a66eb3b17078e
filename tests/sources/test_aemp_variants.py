"""ISO 15143-3 pages as providers send them (tests/sources/samples/aemp/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sources import aemp, aemp_ids
from connectors.sources.common import RejectedItem, SourceError

SAMPLES = Path(__file__).parent / "samples" / "aemp"
BASE = "https://iris.example/aemp/v2/15143/-3/Fleet/1"


def page(name: str) -> aemp.Page:
    return aemp.parse_page((SAMPLES / name).read_bytes(), "application/json" if name.endswith("json") else "",
                           BASE)


def test_a_page_delivered_as_a_json_array_is_read() -> None:
    p = page("fleet-page-in-array.json")
    assert [m.machine_id for m in p.items if not isinstance(m, RejectedItem)] == ["353000512", "243925"]
    assert p.next_url == "https://iris.example/aemp/v2/15143/-3/Fleet/2"
    out = aemp.CounterTracker("t").accept_page(p)
    assert [e.payload.cumulative_operating_hours for e in out.events] == [1824.02, 1937.23]


def test_an_empty_array_is_an_empty_last_page() -> None:
    p = page("fleet-last-page-empty-array.json")
    assert p.items == [] and p.next_url is None


def test_an_array_of_several_things_is_not_a_page() -> None:
    with pytest.raises(SourceError) as exc:
        aemp.parse_json(b"[1, 2]")
    assert exc.value.reason == "not_a_fleet"


def test_pinless_machines_fall_back_to_serial_then_equipment_id_and_placeholders_never_become_ids() -> None:
    items = page("fleet-pinless.xml").items
    ids = [m.machine_id if not isinstance(m, RejectedItem) else m.reason for m in items]
    assert ids == ["243925", "Seither-Lustadt-Kramer5085-SN:353010025", "no_machine_id", "no_machine_id"]
    second = items[1]
    assert not isinstance(second, RejectedItem) and second.serial_number is None  # 'missing' is no serial


def test_two_placeholder_machines_do_not_share_one_state() -> None:
    tracker = aemp.CounterTracker("t")
    out = tracker.accept_page(page("fleet-pinless.xml"))
    assert len(out.events) == 2 and len(out.rejected) == 2
    assert set(tracker.state) == {"243925", "Seither-Lustadt-Kramer5085-SN:353010025"}


@pytest.mark.parametrize("value", ["missing", "N/A", "n.a.", "unknown", "0", "000000", "", "  ", "NULL", "-"])
def test_placeholders(value: str) -> None:
    assert aemp_ids.is_placeholder(value)


@pytest.mark.parametrize("value", ["353000512", "0815", "SN-0", "WNK35502EKSKD0145"])
def test_real_ids_are_not_placeholders(value: str) -> None:
    assert not aemp_ids.is_placeholder(value)


def test_the_machine_map_matches_free_text_as_written_or_normalised() -> None:
    assert aemp_ids.machine_id(["850 Kramer 346041375"], {"850 Kramer 346041375": "loader-7"}) == "loader-7"
    assert aemp_ids.machine_id(["850  Kramer 346041375"], {"850-Kramer-346041375": "loader-7"}) == "loader-7"
    assert aemp_ids.machine_id(["x" * 80], {}) is None

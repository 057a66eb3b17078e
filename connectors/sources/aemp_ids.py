"""Which ISO 15143-3 header field identifies a machine, and how free text becomes an id.

The PIN is the standard's machine identity; machines without one fall back to the
SerialNumber, then the EquipmentID (often the owner's free text: "850 Kramer 346041375").
Placeholders that providers write instead of leaving a field out ("missing", "N/A",
"unknown", "0") never become an id: in a fleet of several PIN-less machines they would
all share one state, and one machine's hours would be judged against another's.
"""

from __future__ import annotations

import re

from connectors.sources.common import is_id

# Compared after lower-casing and removing spaces, dots, dashes and slashes.
PLACEHOLDERS = frozenset({"", "missing", "na", "none", "null", "nil", "unknown", "unk", "notavailable",
                          "notapplicable", "undefined", "tbd", "tba", "xxx", "default", "pin", "serialnumber",
                          "equipmentid"})
_NOT_ID = re.compile(r"[^A-Za-z0-9._:\-]+")


def is_placeholder(value: str) -> bool:
    """``N/A``, ``unknown``, ``0``, ``0000`` and the like: a field filled for form's sake."""
    squeezed = re.sub(r"[\s./\\_\-]", "", value).lower()
    return squeezed in PLACEHOLDERS or set(squeezed) <= {"0"} or set(squeezed) <= {"?"}


def normalise(value: str) -> str:
    """Free text as an id: runs of spaces and other characters ids may not hold become one '-'."""
    return _NOT_ID.sub("-", value.strip()).strip("-.:")


def candidates(pin: str | None, serial: str | None, equipment_id: str | None) -> list[str]:
    """The usable header values, best first: PIN, then SerialNumber, then EquipmentID."""
    return [v for v in (pin, serial, equipment_id) if v is not None and not is_placeholder(v)]


def machine_id(keys: list[str], machine_map: dict[str, str]) -> str | None:
    """A ``--machine-map`` entry for any key (as written or normalised), else the best key
    normalised; None when that is still not an id (too long, nothing left)."""
    for key in keys:
        for form in (key, normalise(key)):
            if form in machine_map:
                return machine_map[form]
    best = normalise(keys[0])
    return best if is_id(best) else None

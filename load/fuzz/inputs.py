"""What a hostile or broken producer sends: hypothesis strategies of bytes, one per format.

Every strategy starts from something real (an example event of every type, the example
documents in docs/examples/, a well-formed GB/T 32960 frame) and breaks it in one way a
producer could: wrong types, missing or unknown fields, truncation, raw bytes, huge
strings and arrays, unicode edge cases (lone surrogates, NUL, right-to-left overrides,
combining marks), negative, float, NaN and huge money, timestamps in year 1 or 9999,
duplicated keys, XML entity bombs and external entities. Valid-but-extreme variants (the
``plausible`` strategies) reach the processors' domain logic instead of the decoder's
first check.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from schemas import codec
from schemas.config import REPO_ROOT
from schemas.topics import INPUT_TOPICS

EXAMPLES = Path(REPO_ROOT) / "docs" / "examples"

# ---------------------------------------------------------------- edge values
EDGE_TEXT = (
    "", " ", "\x00", "a\x00b", "\u202eevil\u202c", "e" + "\u0301" * 40, "\u200b", "\ufeffid",
    "\U0001f600" * 8, "\u03a9" * 64, "x" * 65, "\n", "\uff11\uff12\uff13", "\u0130", "\U0010ffff",
    "\u00df" * 40, "\t\r", "null", "../../etc/passwd", "<script>", "'; DROP TABLE parties; --",
    "\u0645\u0631\u062d\u0628\u0627", "\u4e2d\u6587\u540d\u79f0", "A" * 64, "a:b.c-d_e",
)
# JSON that orjson cannot write from Python values: spliced into the bytes as they are.
RAW_TOKENS = (
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"123456789012345678901234567890",
    b'"\\ud800"', b'"\\udc00x"', b'"\xff\xfe"', b'"a\x00b"', b'"\\u0000"', b"0.1e-400", b"-0",
    b"1E+17", b"00012", b".5", b"+1", b'"\\u202e"', b'"\xc0\xaf"', b'"\xed\xa0\x80"',
)
EDGE_MONEY: tuple[object, ...] = (
    "-1.00", "-0.01", "-0", "-0.00", 1.5, 0.1, -5, 0, "0", "NaN", "sNaN", "Infinity", "-Infinity",
    "1E+17", "1E+18", "1e400", "999999999999999999", "9999999999999999999", 10**18, 10**17,
    "0.001", "1_000", "\uff11\uff12\uff13", " 12 ", "12\n", "0x10", "", True, None, [], {},
    "1e-2", "+5", "5.", ".5", "1,000.00",
)
EDGE_TIMES = (
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00",
    "2000-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2026-03-02T08:00:00", "2026-02-30T00:00:00Z",
    "2026-03-02T24:00:00Z", "2026-03-02T23:59:60Z", "2026-03-02T08:00:00+14:00",
    "2026-03-02T08:00:00-12:00", "2026-03-02T08:00:00+99:00", "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00", 0, -1, 10**10, 253402300800,
    "now", "", "2026-03-02", "+275760-09-13T00:00:00Z", "2026-W10", "2026-03-02T08:00:00.1234567890Z",
    1e300, "1970-01-01T00:00:00Z",
)
EDGE_DATES = ("0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "1970-01-01", "2026-13-01",
              20260302, "2026-03-02T00:00:00Z", "", "9999-12-31T23:59:59Z")
EDGE_NUMBERS = (0, -0.0, -1, 1e308, 5e-324, 1.7976931348623157e308, 2**53 + 1, 2**63 - 1, -(2**63),
                100.0000001, -1e-9, 2**64 - 1, 1e-7, 3.5, 2**31)

# Valid but extreme: what the contract accepts and the domain must still cope with.
FAR_TIMES = ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59-12:00",
             "2000-01-01T00:00:00Z", "2000-01-01T00:00:00-12:00",
             "2000-01-01T00:00:00+14:00", "2099-12-31T12:00:00-12:00", "2026-03-02T08:00:00.000001Z")
FAR_DATES = ("0001-01-01", "9999-12-31", "2000-02-29", "1970-01-01", "2026-03-02")
PLAUSIBLE_AMOUNTS = ("0", "0.00", "0.01", "9999999999999999.99", "999999999999999999", "1E+17",
                     "-0.00", 1, 10**17)
PLAUSIBLE_IDS = ("sup-hydraulics", "sany-heavy", "ctr-xiang", "exc-SY215C-00042", "etruck-0007",
                 "prg-sany-chain", "prg-sany-equip", "po-778812", "ln-1001", "a", "A" * 64,
                 "x:y.z-1", "bank-cmb", "mfi-hunan")
PLAUSIBLE_FLOATS = (0.0, -0.0, 1e308, 5e-324, 100.0, 99.999, -1000.0, 1000.0, 2000.0, 90.0, -90.0,
                    180.0, -180.0, 15.0, 24.0, 1e-9)
PLAUSIBLE_INTS = (0, 1, 3, 5, 31, 100, 36500, 3650, 40, 200000, 524287, 2**32 - 1)
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


@cache
def seed_events() -> tuple[dict[str, Any], ...]:
    """One valid envelope of every event type (inputs and outputs), as JSON objects."""
    from schemas.examples import example_events

    return tuple(orjson.loads(codec.encode(e)) for e in example_events())


@cache
def seed_inputs() -> tuple[dict[str, Any], ...]:
    """The seeds whose type a producer may send (what the engine's input topics carry)."""
    from schemas.topics import TOPIC_OF_TYPE

    return tuple(s for s in seed_events() if TOPIC_OF_TYPE[s["type"]].name in INPUT_TOPICS)


@cache
def example_file(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


# ---------------------------------------------------------------- JSON plumbing
class Splice:
    """Placeholders for raw JSON tokens: a string in the document, raw bytes in the output."""

    def __init__(self) -> None:
        self.raw: dict[bytes, bytes] = {}

    def token(self, raw: bytes) -> str:
        marker = f"\x01splice{len(self.raw)}\x01"
        self.raw[orjson.dumps(marker)] = raw
        return marker

    def dumps(self, doc: Any) -> bytes:
        out = orjson.dumps(doc)
        for marker, raw in self.raw.items():
            out = out.replace(marker, raw)
        return out


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON document (the root included)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


def get_at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def set_at(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    get_at(obj, path[:-1])[path[-1]] = value
    return obj


def delete_at(obj: Any, path: tuple[Any, ...]) -> Any:
    if path:
        del get_at(obj, path[:-1])[path[-1]]
    return obj


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)
edge_text = st.sampled_from(EDGE_TEXT) | st.text(max_size=60)


@st.composite
def odd_value(draw: st.DrawFn, splice: Splice) -> Any:
    """A value of the wrong type, an edge-case string or number, or a raw JSON token."""
    kind = draw(st.sampled_from(("json", "text", "number", "raw", "money", "time")))
    if kind == "json":
        return draw(json_values)
    if kind == "text":
        return draw(edge_text)
    if kind == "number":
        return draw(st.sampled_from(EDGE_NUMBERS))
    if kind == "money":
        return draw(st.sampled_from(EDGE_MONEY))
    if kind == "time":
        return draw(st.sampled_from(EDGE_TIMES))
    return splice.token(draw(st.sampled_from(RAW_TOKENS)))


def _leaf_paths(doc: Any, pred: Any) -> list[tuple[Any, ...]]:
    return [p for p in paths(doc) if p and pred(p, get_at(doc, p))]


def _huge(draw: st.DrawFn, doc: Any, splice: Splice) -> Any:
    size = draw(st.sampled_from((65, 1000, 5000, 100_000, 300_000, 2_000_000)))
    lists = _leaf_paths(doc, lambda p, v: isinstance(v, list))
    if bool(lists) and draw(st.booleans()):  # bool(): mypy types `and`'s right side by its left
        path = draw(st.sampled_from(lists))
        items = get_at(doc, path) or ["x"]
        n = min(size, 20_000)  # a batch this long already takes seconds to import
        return set_at(doc, path, (items * (n // len(items) + 1))[:n])
    strings = _leaf_paths(doc, lambda p, v: isinstance(v, str)) or [("payload",)]
    return set_at(doc, draw(st.sampled_from(strings)), draw(st.sampled_from("A\u4e2d\U0001f600")) * size)


@st.composite
def broken_json(draw: st.DrawFn, seed: Any) -> bytes:
    """``seed`` (a JSON document) broken in one of the ways producers break documents."""
    doc = copy.deepcopy(seed)
    splice = Splice()
    kind = draw(st.sampled_from(("replace", "replace", "money", "time", "date", "drop", "extra",
                                 "truncate", "binary", "dup_key", "huge", "deep", "unicode", "bytes",
                                 "valid", "plausible", "plausible")))
    all_paths = [p for p in paths(doc) if p]
    if kind == "replace" and all_paths:
        doc = set_at(doc, draw(st.sampled_from(all_paths)), draw(odd_value(splice)))
    elif kind == "money":
        amounts = _leaf_paths(doc, lambda p, v: p[-1] in ("amount", "Hour", "FuelConsumed", "je", "se", "jshj", "total", "tax"))
        target = draw(st.sampled_from(amounts or all_paths or [()]))
        value: Any = draw(st.sampled_from(EDGE_MONEY)) if draw(st.integers(0, 3)) else splice.token(
            draw(st.sampled_from((b"NaN", b"Infinity", b"1e400", b"-0", b"123456789012345678901234567890"))))
        doc = set_at(doc, target, value)
    elif kind in ("time", "date"):
        times = _leaf_paths(doc, lambda p, v: isinstance(v, str) and bool((_DATETIME if kind == "time" else _DATE).match(v)))
        if times:
            value = draw(st.sampled_from(EDGE_TIMES if kind == "time" else EDGE_DATES))
            for p in (times if draw(st.booleans()) else [draw(st.sampled_from(times))]):
                doc = set_at(doc, p, value)
    elif kind == "drop" and all_paths:
        doc = delete_at(doc, draw(st.sampled_from(all_paths)))
    elif kind == "extra":
        dicts = [p for p in paths(doc) if isinstance(get_at(doc, p), dict)]
        if dicts:
            get_at(doc, draw(st.sampled_from(dicts)))[draw(st.sampled_from(("phone", "x", "", "\x00", "__proto__")))] = draw(json_values)
    elif kind == "binary":
        return draw(st.binary(max_size=400))
    elif kind == "huge":
        doc = _huge(draw, doc, splice)
    elif kind == "deep":
        depth = draw(st.sampled_from((100, 1000, 1025, 5000, 50_000)))
        target = draw(st.sampled_from(all_paths or [()]))
        doc = set_at(doc, target, splice.token(b"[" * depth + b"]" * depth))
    elif kind == "unicode":
        strings = _leaf_paths(doc, lambda p, v: isinstance(v, str))
        if strings:
            value = draw(edge_text)
            if draw(st.integers(0, 3)) == 0:
                value = splice.token(draw(st.sampled_from((b'"\\ud800"', b'"\\udfff\\ud800"', b'"\xff"', b'"a\x00b"'))))
            doc = set_at(doc, draw(st.sampled_from(strings)), value)
    elif kind == "plausible":
        doc = draw(plausible_json(doc))
    data = splice.dumps(doc)
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "dup_key" and isinstance(doc, dict) and doc:
        # A key repeated (first wins in some parsers, last in others), at the top or in the payload.
        inner = doc.get("payload") if isinstance(doc.get("payload"), dict) and draw(st.booleans()) else None
        key = draw(st.sampled_from(sorted(inner or doc)))
        extra = orjson.dumps(key) + b":" + orjson.dumps(draw(json_values)) + b","
        at = data.find(b'"payload":{') + len(b'"payload":{') if inner else 1
        return data[:at] + extra + data[at:]
    if kind == "bytes":
        how = draw(st.sampled_from(("bom", "nul", "trailing", "insert", "utf16", "latin1")))
        if how == "bom":
            return b"\xef\xbb\xbf" + data
        if how == "nul":
            return data + b"\x00"
        if how == "trailing":
            return data + draw(st.sampled_from((b" garbage", b"\n{}", b"}", b"\n\n")))
        if how == "utf16":
            return data.decode("utf-8", "replace").encode("utf-16")
        if how == "latin1":
            return data.decode("utf-8", "replace").encode("latin-1", "replace")
        pos = draw(st.integers(0, len(data)))
        return data[:pos] + draw(st.binary(min_size=1, max_size=4)) + data[pos:]
    return data


@st.composite
def plausible_json(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with 1-3 leaves set to valid-looking extremes of their own type."""
    doc = copy.deepcopy(seed)
    leaves = _leaf_paths(doc, lambda p, v: not isinstance(v, dict | list))
    for _ in range(draw(st.integers(1, 3))):
        if not leaves:
            break
        path = draw(st.sampled_from(leaves))
        old = get_at(doc, path)
        name = str(path[-1])
        if isinstance(old, bool):
            new: Any = not old
        elif isinstance(old, int):
            new = draw(st.sampled_from(PLAUSIBLE_INTS))
        elif isinstance(old, float):
            new = draw(st.sampled_from(PLAUSIBLE_FLOATS))
        elif name == "amount":
            new = draw(st.sampled_from(PLAUSIBLE_AMOUNTS))
        elif name == "currency":
            new = draw(st.sampled_from(("CNY", "USD", "JPY", "KWD", "EUR")))
        elif name == "share":
            new = draw(st.sampled_from(("0.3", "1", "0.7", "0.5")))
        elif isinstance(old, str) and _DATETIME.match(old):
            new = draw(st.sampled_from(FAR_TIMES))
        elif isinstance(old, str) and _DATE.match(old):
            new = draw(st.sampled_from(FAR_DATES))
        elif name.endswith("_id") or name in ("lender_id", "asset_id"):
            new = draw(st.sampled_from(PLAUSIBLE_IDS))
        else:
            new = draw(st.sampled_from(("x", "A" * 200, "\u4e2d\u6587", old)))
        doc = set_at(doc, path, new)
    if isinstance(doc, dict) and "occurred_at" in doc and draw(st.integers(0, 3)) == 0:
        # Far future or past event time that the envelope's skew rule still lets through.
        doc["occurred_at"] = doc["recorded_at"] = draw(st.sampled_from(FAR_TIMES))
    return doc


# ---------------------------------------------------------------- envelopes
envelopes = st.sampled_from(seed_events()).flatmap(broken_json)


@dataclass(frozen=True)
class Delivery:
    """One record as the engine would read it: bytes, and where they were sent."""

    value: bytes
    topic: str | None = None   # None: the catalogue topic of the event (or any input topic)
    key: bytes | None = None   # with topic None: the catalogue key
    wrong_key: bool = False


def destination(d: Delivery) -> tuple[str, bytes | None]:
    """The input topic and key a record goes to: its own, else the catalogue's for its
    event, else (undecodable, or an output type producers may not send) an input topic
    picked from its length."""
    if d.topic is not None:
        return d.topic, d.key
    from schemas.topics import route

    try:
        topic, key = route(codec.decode(d.value))
    except codec.DecodeError:
        topic, key = "", None
    if topic not in INPUT_TOPICS:
        topic = INPUT_TOPICS[len(d.value) % len(INPUT_TOPICS)]
    return topic, key


@st.composite
def deliveries(draw: st.DrawFn) -> list[Delivery]:
    """A short sequence of records for the processors: mostly valid-but-extreme events,
    some broken ones, exact duplicates and reissues (same event id, other content), some
    on the wrong topic or under the wrong key."""
    items: list[Delivery] = []
    docs: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("plausible", "plausible", "plausible", "valid", "broken",
                                     "duplicate", "reissue", "misplaced")))
        if kind in ("duplicate", "reissue") and items:
            n = draw(st.integers(0, len(items) - 1))
            if kind == "duplicate" or n >= len(docs):
                items.append(items[n])
                continue
            doc = draw(plausible_json(docs[n]))
            doc["event_id"] = docs[n]["event_id"]
            docs.append(doc)
            items.append(Delivery(orjson.dumps(doc)))
            continue
        seed = draw(st.sampled_from(seed_inputs()))
        if kind == "broken":
            items.append(Delivery(draw(broken_json(seed)), topic=draw(st.sampled_from((None, *INPUT_TOPICS)))))
            continue
        doc = copy.deepcopy(seed) if kind == "valid" else draw(plausible_json(seed))
        doc["event_id"] = f"fz-{draw(st.integers(0, 10**9))}"
        docs.append(doc)
        if kind == "misplaced":
            items.append(Delivery(orjson.dumps(doc), topic=draw(st.sampled_from(INPUT_TOPICS)),
                                  key=draw(st.sampled_from((None, b"", b"wrong-key", b"\xff\xfe"))),
                                  wrong_key=True))
        else:
            items.append(Delivery(orjson.dumps(doc)))
    return items


# ---------------------------------------------------------------- GB/T 32960 frames
GBT_VIN = "LGHXCAE28M1234567"


@cache
def gbt_frames() -> tuple[bytes, ...]:
    """Well-formed frames of every command the decoder handles."""
    from connectors.sources import gbt32960 as g

    ts = datetime(2024, 3, 1, 10, 15, 30, tzinfo=g.CHINA)
    data = g.realtime_data(ts, g.vehicle_block(soc=76, voltage_v=612.4, current_a=-35.2, mileage_km=120345.6),
                           g.motors_block(2), g.location_block(31.23, 121.47), g.extremes_block(3.412, 3.371, 38, 29),
                           g.alarm_block(2, 0x805, (0x00010203,)))
    return (g.encode_frame(g.Command.REALTIME, GBT_VIN, data), g.encode_frame(g.Command.REISSUED, GBT_VIN, data),
            g.encode_frame(g.Command.LOGIN, GBT_VIN, g.login_data(ts)),
            g.encode_frame(g.Command.LOGOUT, GBT_VIN, g.encode_time(ts) + b"\x00\x07"),
            g.encode_frame(g.Command.HEARTBEAT, GBT_VIN, b""),
            g.encode_frame(g.Command.REALTIME, GBT_VIN, data, flag=g.Flag.SUCCESS))


def _with_bcc(raw: bytearray) -> bytes:
    from connectors.sources.gbt32960 import bcc

    if len(raw) > 3:
        raw[-1] = bcc(raw[2:-1])
    return bytes(raw)


@st.composite
def gbt_bytes(draw: st.DrawFn) -> bytes:
    """A GB/T 32960 frame: random, mutated (checksum kept right so blocks are reached),
    truncated, with a lying length, odd times, maximal counts, or a huge data unit."""
    from connectors.sources import gbt32960 as g

    frame = bytearray(draw(st.sampled_from(gbt_frames())))
    kind = draw(st.sampled_from(("random", "mutate", "mutate", "truncate", "length", "time",
                                 "counts", "huge", "envelope", "valid", "vin")))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "mutate":
        for _ in range(draw(st.integers(1, 6))):
            frame[draw(st.integers(2, len(frame) - 2))] = draw(st.integers(0, 255))
        return _with_bcc(frame) if draw(st.integers(0, 4)) else bytes(frame)
    if kind == "truncate":
        return bytes(frame[: draw(st.integers(0, len(frame) - 1))])
    if kind == "length":
        frame[22:24] = draw(st.sampled_from((0, 1, 65531, 65535, len(frame) - 24, len(frame)))).to_bytes(2, "big")
        return _with_bcc(frame)
    if kind == "time":
        t = bytes(draw(st.lists(st.sampled_from((0, 1, 12, 13, 23, 24, 28, 29, 31, 32, 59, 60, 99, 254, 255)),
                                min_size=6, max_size=6)))
        return g.encode_frame(draw(st.sampled_from((1, 2, 3, 4))), GBT_VIN, t + bytes(frame[30:-1]))
    if kind == "counts":
        body = draw(st.sampled_from((b"\x02\xff", b"\x08\xff" + b"\x00" * 9 + b"\xff", b"\x09\xff\x01\xff\xff",
                                     b"\x07\x01\x00\x00\x00\x00\xff", b"\x07\x01\x00\x00\x00\x00\xfe\x00\x00\x00",
                                     b"\x03" + b"\x00" * 6 + b"\xff\xfd", b"\xff", b"\x80")))
        return g.encode_frame(2, GBT_VIN, bytes(frame[24:30]) + body * draw(st.integers(1, 3)))
    if kind == "huge":
        block = g.motors_block(1)
        n = draw(st.sampled_from((100, 1000, 5000)))
        return g.encode_frame(2, GBT_VIN, (bytes(frame[24:30]) + block * n)[: g.MAX_DATA_LEN])
    if kind == "envelope":
        return g.encode_frame(draw(st.integers(0, 255)), GBT_VIN, draw(st.binary(max_size=200)),
                              flag=draw(st.sampled_from((0xFE, 0x01, 0x02, 0x00))),
                              encryption=draw(st.sampled_from((1, 1, 1, 2, 3, 0xFE, 0xFF))))
    if kind == "vin":
        vin = draw(st.sampled_from(("IOQ45678901234567", "\x00" * 17, "lghxcae28m1234567", "LGHXCAE28M123456\xff")))
        frame[4:21] = vin.encode("latin-1")
        return _with_bcc(frame)
    return bytes(frame)


@st.composite
def gbt_streams(draw: st.DrawFn) -> list[bytes]:
    """TCP reads: frames and garbage split at arbitrary points (for the stream framer)."""
    parts = draw(st.lists(st.one_of(gbt_bytes(), st.sampled_from((b"#", b"##", b"###", b"\x00junk"))), max_size=5))
    stream = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


# ---------------------------------------------------------------- XML
XML_ATTACKS = (
    # billion laughs: nested entity expansion
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><Invoice><ID>&lol4;</ID></Invoice>',
    # quadratic blowup: one large entity referenced many times
    b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "' + b"A" * 50_000 + b'">]><Fleet>' + b"&a;" * 2000 + b"</Fleet>",
    # external entities: a local file, a URL, a parameter entity, an external DTD
    b'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Invoice><ID>&xxe;</ID></Invoice>',
    b'<?xml version="1.0"?><!DOCTYPE Fleet [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/secret">]><Fleet>&xxe;</Fleet>',
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]><a/>',
    b'<?xml version="1.0"?><!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/invoice.dtd"><Invoice/>',
    b'<?xml version="1.0"?><!DOCTYPE Invoice PUBLIC "-//X//Y" "file:///etc/passwd"><Invoice/>',
    b'<!DOCTYPE Fleet><Fleet/>',
    b'<?xml version="1.0"?><!DOCTYPE a [<!ELEMENT a ANY><!ATTLIST a x CDATA "default">]><a/>',
    # XInclude is not processed: it stays a plain element
    b'<Invoice xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></Invoice>',
    # encodings: unknown, mismatched, UTF-16, UTF-7, EBCDIC
    b'<?xml version="1.0" encoding="x-unknown"?><Invoice/>',
    b'<?xml version="1.0" encoding="UTF-16"?><Invoice/>',
    '<?xml version="1.0" encoding="UTF-16"?><Fleet/>'.encode("utf-16"),
    b'<?xml version="1.0" encoding="UTF-7"?><Invoice/>',
    b'<?xml version="1.0" encoding="cp037"?><Invoice/>',
    b'<?xml version="1.0" encoding="bogus-\xff"?><Invoice/>',
    b'<?xml version="1.1"?><Invoice/>',
    b'<?xml version="2.0"?><Invoice/>',
    # deep nesting, huge attributes, many attributes, odd nodes
    b"<Fleet>" + b"<x>" * 100_000 + b"</x>" * 100_000 + b"</Fleet>",
    b"<Equipment>" * 3000 + b"</Equipment>" * 3000,
    b'<Invoice a="' + b"x" * 3_000_000 + b'"/>',
    b"<Invoice " + b" ".join(b"a%d='1'" % i for i in range(20_000)) + b"/>",
    b"<Invoice><![CDATA[]]]]><![CDATA[>]]><!-- -- --><?pi data?></Invoice>",
    b"<Invoice>\x00</Invoice>", b"\xef\xbb\xbf<Invoice/>", b"<Invoice>&#0;</Invoice>", b"<Invoice>&#xD800;</Invoice>",
    b"<Invoice>&amp;&lt;&gt;&quot;&apos;&#x1F600;</Invoice>", b"<a:Invoice xmlns:a=''/>", b"", b"<", b"<?xml?>",
)
_TEXT_NODE = re.compile(rb">([^<>]+)<")


def _xml_escape(s: str) -> bytes:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8", "replace")


@st.composite
def broken_xml(draw: st.DrawFn, seed: bytes) -> bytes:
    """An XML document (``seed``) broken at the text level, or one of the known attacks."""
    kind = draw(st.sampled_from(("attack", "attack", "text", "text", "raw_text", "truncate", "binary",
                                 "prolog", "deep", "huge", "repeat", "drop", "valid", "encoding")))
    if kind == "attack":
        return draw(st.sampled_from(XML_ATTACKS))
    if kind == "binary":
        return draw(st.binary(max_size=400))
    if kind == "truncate":
        return seed[: draw(st.integers(0, len(seed) - 1))]
    nodes = list(_TEXT_NODE.finditer(seed))
    nodes = [m for m in nodes if m.group(1).strip()] or nodes
    if kind in ("text", "raw_text", "huge") and nodes:
        m = draw(st.sampled_from(nodes))
        if kind == "huge":
            new = b"9" * draw(st.sampled_from((1000, 100_000, 5_000_000)))
        elif kind == "text":
            value = draw(st.one_of(edge_text, st.sampled_from([str(v) for v in EDGE_MONEY + EDGE_TIMES + EDGE_NUMBERS])))
            new = _xml_escape(value)
        else:
            new = draw(st.sampled_from((b"&", b"<", b"]]>", b"&undefined;", b"\xff\xfe", b"\x00", b"&#x0;", b"\xed\xa0\x80")))
        return seed[: m.start(1)] + new + seed[m.end(1):]
    body = re.sub(rb"^<\?xml[^>]*\?>", b"", seed.lstrip()).lstrip()
    root = re.match(rb"<([A-Za-z_:][\w:.\-]*)", body)
    if kind == "prolog":
        decl = draw(st.sampled_from((b'<!DOCTYPE x [<!ENTITY e "v">]>', b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
                                     b"<!DOCTYPE x>", b"<?pi?>", b"<!-- c -->", b"")))
        return b'<?xml version="1.0"?>' + decl + body
    if kind == "encoding":
        enc = draw(st.sampled_from(("UTF-16", "UTF-16LE", "latin-1", "x-unknown", "utf-32", "ascii", "shift_jis", "UTF-8")))
        text = b'<?xml version="1.0" encoding="' + enc.encode() + b'"?>' + body
        return text.decode("utf-8", "replace").encode("utf-16") if draw(st.booleans()) else text
    if kind == "deep" and root:
        depth = draw(st.sampled_from((10, 1000, 50_000)))
        end = root.end()
        close = body.index(b">", end) + 1
        return body[:close] + b"<Equipment>" * depth + b"</Equipment>" * depth + body[close:]
    if kind == "repeat" and nodes:
        m = draw(st.sampled_from(nodes))
        start = seed.rfind(b"<", 0, m.start(1))
        end = seed.find(b">", m.end(1)) + 1
        return seed[:end] + seed[start:end] * draw(st.sampled_from((2, 100, 10_000))) + seed[end:]
    if kind == "drop" and nodes:
        m = draw(st.sampled_from(nodes))
        start = seed.rfind(b"<", 0, m.start(1))
        end = seed.find(b">", m.end(1)) + 1
        return seed[:start] + seed[end:]
    return seed


def xml_documents(seed_name: str) -> st.SearchStrategy[bytes]:
    return broken_xml(example_file(seed_name))


def json_documents(seed_name: str) -> st.SearchStrategy[bytes]:
    return broken_json(orjson.loads(example_file(seed_name)))


"""GB/T 32960 decoder, encoder, stream framing and mapping: unit tests and fuzzing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sources import gbt32960 as g
from connectors.sources.common import SourceError

VIN = "LGHXCAE28M1234567"
TS = datetime(2024, 3, 1, 10, 15, 30, tzinfo=g.CHINA)


def realtime(command: int = g.Command.REALTIME, **vehicle) -> bytes:
    v = {"soc": 76, "voltage_v": 612.4, "current_a": -35.2, "mileage_km": 120345.6, "speed_kmh": 42.5} | vehicle
    data = g.realtime_data(TS, g.vehicle_block(**v), g.motors_block(2),
                           g.location_block(31.230416, 121.473701),
                           g.extremes_block(3.412, 3.371, 38, 29),
                           g.alarm_block(2, 0b1000_0000_0101, (0x00010203, 0x0A0B0C0D)))
    return g.encode_frame(command, VIN, data)


def test_realtime_frame_decodes_every_block() -> None:
    f = g.decode_frame(realtime())
    assert (f.command, f.flag, f.vin, f.time) == (2, 0xFE, VIN, TS)
    v = f.vehicle
    assert v is not None and (v.soc_pct, v.voltage_v, v.current_a, v.mileage_km, v.speed_kmh) == (
        76, 612.4, -35.2, 120345.6, 42.5)
    assert f.location == g.Location(valid=True, lat=31.230416, lon=121.473701)
    x = f.extremes
    assert x is not None and (x.max_cell_v, x.max_cell_no, x.min_cell_v, x.min_cell_no) == (3.412, 17, 3.371, 42)
    assert (x.max_temp_c, x.min_temp_c) == (38, 29)
    assert f.alarms == g.Alarms(max_level=2, flags=0b1000_0000_0101,
                                battery_faults=(0x00010203, 0x0A0B0C0D))
    assert f.skipped_blocks == (0x02,)


def test_maps_to_battery_telemetry_with_china_time() -> None:
    e = g.to_event(g.decode_frame(realtime()), tenant="fleet-a", vin_map={VIN: "truck-7"})
    assert e is not None and e.type == "telemetry.battery"
    assert e.occurred_at == datetime(2024, 3, 1, 2, 15, 30, tzinfo=UTC)
    p = e.payload
    assert (p.machine_id, p.vin, p.soc_pct, p.pack_voltage_v, p.pack_current_a) == ("truck-7", VIN, 76, 612.4, -35.2)
    assert (p.max_cell_voltage_v, p.min_cell_voltage_v, p.max_temp_c) == (3.412, 3.371, 38)
    assert (p.alarm_level, p.alarm_flags, p.mileage_km, p.reissued, p.soh_pct) == (2, 0x805, 120345.6, False, None)
    assert p.location is not None and p.location.lat == 31.230416
    assert e.event_id == f"gbt-{VIN}-{int(TS.timestamp())}"


def test_reissued_frame_is_flagged_and_default_machine_id() -> None:
    e = g.to_event(g.decode_frame(realtime(g.Command.REISSUED)), tenant="fleet-a")
    assert e is not None and e.payload.reissued and e.payload.machine_id == f"vin-{VIN}"


def test_southern_western_and_invalid_positions() -> None:
    data = g.realtime_data(TS, g.vehicle_block(soc=50, voltage_v=400, current_a=0),
                           g.location_block(-33.86, -70.65))
    f = g.decode_frame(g.encode_frame(2, VIN, data))
    assert f.location == g.Location(valid=True, lat=-33.86, lon=-70.65)
    data = g.realtime_data(TS, g.vehicle_block(soc=50, voltage_v=400, current_a=0),
                           g.location_block(1, 1, valid=False))
    e = g.to_event(g.decode_frame(g.encode_frame(2, VIN, data)), tenant="t")
    assert e is not None and e.payload.location is None


def test_login_and_logout_carry_no_telemetry_but_are_answered() -> None:
    login = g.decode_frame(g.encode_frame(g.Command.LOGIN, VIN, g.login_data(TS, serial=7)))
    assert (login.login_serial, login.iccid, login.time) == (7, "89860012345678901234", TS)
    assert g.to_event(login, tenant="t") is None
    reply = g.answer(login)
    assert reply is not None
    ans = g.decode_frame(reply)
    assert (ans.command, ans.flag, ans.vin, ans.data) == (1, g.Flag.SUCCESS, VIN, g.encode_time(TS))
    logout = g.decode_frame(g.encode_frame(g.Command.LOGOUT, VIN, g.encode_time(TS) + b"\x00\x07"))
    assert logout.login_serial == 7 and g.to_event(logout, tenant="t") is None


def test_answer_bcc_is_recomputed() -> None:
    reply = g.answer(g.decode_frame(realtime()))
    assert reply is not None and reply[-1] == g.bcc(reply[2:-1]) and reply[3] == g.Flag.SUCCESS


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda b: b"!!" + b[2:], "bad_start"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "bad_checksum"),
    (lambda b: b[:30], "bad_length"),
    (lambda b: b[:5], "truncated_frame"),
])
def test_malformed_frames_are_refused_with_a_reason(mutate, reason) -> None:
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(mutate(realtime()))
    assert exc.value.reason == reason


def test_bad_checksum_is_answered_with_an_error_flag() -> None:
    raw = realtime()
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(raw[:-1] + bytes([raw[-1] ^ 1]))
    reply = g.answer(None, exc.value)
    assert reply is not None
    ans = g.decode_frame(reply)
    assert (ans.command, ans.flag, ans.vin) == (2, g.Flag.ERROR, VIN)


def test_unknown_block_stops_decoding_cleanly() -> None:
    # 0x30-0x7F are reserved by the standard: no length is known for them.
    data = g.realtime_data(TS, g.vehicle_block(soc=50, voltage_v=400, current_a=0), b"\x30\x01\x02")
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(g.encode_frame(2, VIN, data))
    assert exc.value.reason == "unknown_block" and "0x30" in exc.value.message


def test_encrypted_and_bad_vin_and_bad_time_are_refused() -> None:
    data = g.realtime_data(TS, g.vehicle_block(soc=50, voltage_v=400, current_a=0))
    with pytest.raises(g.GbtDecodeError, match="encrypt"):
        g.decode_frame(g.encode_frame(2, VIN, data, encryption=0x03))
    with pytest.raises(g.GbtDecodeError, match="VIN"):
        g.decode_frame(g.encode_frame(2, "IOQ45678901234567", data))
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(g.encode_frame(2, VIN, bytes([24, 13, 1, 0, 0, 0]) + data[6:]))
    assert exc.value.reason == "bad_time"


def test_truncated_block_is_refused() -> None:
    data = g.realtime_data(TS, g.vehicle_block(soc=50, voltage_v=400, current_a=0))[:-4]
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(g.encode_frame(2, VIN, data))
    assert exc.value.reason == "truncated_block"


def test_frame_without_vehicle_block_is_unmappable() -> None:
    frame = g.decode_frame(g.encode_frame(2, VIN, g.realtime_data(TS, g.location_block(30, 120))))
    with pytest.raises(SourceError) as exc:
        g.to_event(frame, tenant="t")
    assert exc.value.reason == "no_battery_data"


def test_invalid_soc_marker_is_unmappable() -> None:
    frame = g.decode_frame(g.encode_frame(2, VIN, g.realtime_data(
        TS, g.vehicle_block(soc=0xFF, voltage_v=400, current_a=0))))
    assert frame.vehicle is not None and frame.vehicle.soc_pct is None
    with pytest.raises(SourceError):
        g.to_event(frame, tenant="t")


def test_stream_framing_handles_split_reads_and_garbage() -> None:
    a, b = realtime(), realtime(g.Command.REISSUED)
    stream = b"\x00junk#" + a + b"x" + b
    buf = g.FrameBuffer()
    got = []
    for i in range(0, len(stream), 7):  # 7-byte reads split headers and bodies
        got += buf.feed(stream[i:i + 7])
    assert [d for k, d in got if k == "frame"] == [a, b]
    assert b"".join(d for k, d in got if k == "garbage") == b"\x00junk#x"
    assert buf.pending == 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_decode_errors(raw: bytes) -> None:
    with contextlib.suppress(g.GbtDecodeError):
        g.decode_frame(raw)
    g.FrameBuffer().feed(raw)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.integers(min_value=1, max_value=4))
def test_fuzz_valid_envelopes_with_random_data(data: bytes, command: int) -> None:
    # A correct envelope and checksum around random data exercises the block decoders.
    try:
        frame = g.decode_frame(g.encode_frame(command, VIN, data))
    except g.GbtDecodeError:
        return
    with contextlib.suppress(SourceError):
        g.to_event(frame, tenant="t")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_real_frames(data: st.DataObject) -> None:
    raw = bytearray(realtime())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(2, len(raw) - 2))] = data.draw(st.integers(0, 255))
    raw[-1] = g.bcc(raw[2:-1])  # keep the checksum right so mutations reach the blocks
    with contextlib.suppress(g.GbtDecodeError):
        g.decode_frame(bytes(raw))

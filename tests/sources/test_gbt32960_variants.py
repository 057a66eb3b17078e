"""GB/T 32960 frames recorded by another parser's authors (tests/sources/samples/gbt32960/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sources import gbt32960 as g
from connectors.sources.common import SourceError

SAMPLES = Path(__file__).parent / "samples" / "gbt32960"


def sample(name: str) -> bytes:
    return bytes.fromhex((SAMPLES / name).read_text().strip())


def test_vendor_block_after_the_standard_blocks_is_skipped_and_the_data_kept() -> None:
    frame = g.decode_frame(sample("realtime-2016-vendor-0x83.hex"))
    assert frame.skipped_blocks == (0x02, 0x08, 0x09, 0x83)
    e = g.to_event(frame, tenant="fleet")
    assert e is not None and e.payload.vin == "HAUV4BGN6S5002219" and e.payload.soc_pct == 85


def test_vendor_block_alone_is_skipped_by_its_length() -> None:
    frame = g.decode_frame(sample("realtime-2016-vendor-0x80-only.hex"))
    assert frame.skipped_blocks == (0x80,)
    with pytest.raises(SourceError) as exc:  # valid frame, but it carries no vehicle block
        g.to_event(frame, tenant="fleet")
    assert exc.value.reason == "no_battery_data"


def test_vendor_block_with_a_short_length_is_truncated_not_unknown() -> None:
    data = g.realtime_data(g.decode_frame(sample("realtime-2016-vendor-0x80-only.hex")).time,
                           g.vehicle_block(soc=50, voltage_v=400, current_a=0), b"\xfe\x00\x10\x01")
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(g.encode_frame(2, "HAUV4BGN6S5002219", data))
    assert exc.value.reason == "truncated_block"


@pytest.mark.parametrize("name", ["realtime-2025.hex", "logout-2025.hex"])
def test_2025_edition_is_refused_explicitly_and_answered_in_its_edition(name: str) -> None:
    raw = sample(name)
    with pytest.raises(g.GbtDecodeError) as exc:
        g.decode_frame(raw)
    assert exc.value.reason == "unsupported_edition"
    reply = g.answer(None, exc.value)
    assert reply is not None and reply[:2] == b"$$" and reply[2] == raw[2] and reply[3] == g.Flag.ERROR
    assert reply[4:21] == raw[4:21] and reply[-1] == g.bcc(reply[2:-1])


def test_2025_frames_are_framed_on_tcp_not_discarded_as_garbage() -> None:
    a, b = sample("realtime-2025.hex"), sample("realtime-2016-vendor-0x83.hex")
    buf = g.FrameBuffer()
    got = []
    for i in range(0, len(a + b"$" + b), 5):
        got += buf.feed((a + b"$" + b)[i:i + 5])
    assert [d for k, d in got if k == "frame"] == [a, b]
    assert [d for k, d in got if k == "garbage"] == [b"$"]


def test_platform_login_and_logout_are_decoded() -> None:
    login = g.decode_frame(sample("platform-login-2016.hex"))
    assert (login.command, login.platform_user, login.login_serial) == (g.Command.PLATFORM_LOGIN, "HAUV4BGN6S50", 0x0802)
    assert login.platform_password == "HAUV4BGN6S5002219HAU" and g.to_event(login, tenant="t") is None
    logout = g.decode_frame(sample("platform-logout-2016.hex"))
    assert logout.command == g.Command.PLATFORM_LOGOUT and g.to_event(logout, tenant="t") is None
    reply = g.decode_frame(g.answer(logout) or b"")
    assert (reply.command, reply.flag) == (g.Command.PLATFORM_LOGOUT, g.Flag.SUCCESS)


def test_platform_id_need_not_be_a_vin() -> None:
    raw = g.encode_frame(g.Command.PLATFORM_LOGIN, "platform-01\x00\x00\x00\x00\x00\x00",
                         g.platform_login_data(g.decode_frame(sample("platform-login-2016.hex")).time, "u", "p"))
    assert g.decode_frame(raw).platform_user == "u"


def test_an_answer_frame_is_refused_as_an_answer_and_not_answered() -> None:
    frame = g.decode_frame(sample("answer-login-2016.hex"))
    with pytest.raises(SourceError) as exc:
        g.to_event(frame, tenant="t")
    assert exc.value.reason == "unexpected_answer" and g.answer(frame) is None
    realtime_answer = g.encode_frame(2, "HAUV4BGN6S5002219", frame.data, flag=g.Flag.SUCCESS)
    with pytest.raises(SourceError) as exc:
        g.to_event(g.decode_frame(realtime_answer), tenant="t")
    assert exc.value.reason == "unexpected_answer"  # was no_battery_data

"""The GB/T 32960 gateway takes frames only from a logged-in platform, for pledged VINs (issue 11.9)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from connectors.sources import gbt32960 as g
from connectors.sources import gbt32960_client
from connectors.sources.common import Outcome
from connectors.sources.gbt32960_access import PlatformAuth, PledgeBook
from connectors.sources.gbt32960_server import GbtGateway

PLEDGED, OTHER = "LGHXCAE28M1234567", "LGHXCAE28M7654321"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
AUTH = PlatformAuth("fleetplat", "s3cret-pass")


def pledge(tenant: str, machine: str, kind: str = "registry.pledge") -> bytes:
    return orjson.dumps({"type": kind, "tenant": tenant, "payload": {"machine_id": machine}})


def realtime(vin: str) -> bytes:
    return g.encode_frame(2, vin, g.realtime_data(T0, g.vehicle_block(soc=70, voltage_v=600, current_a=-20)))


def login(user: str = "fleetplat", password: str = "s3cret-pass") -> bytes:
    return g.encode_frame(g.Command.PLATFORM_LOGIN, "PLATFORM000000001", g.platform_login_data(T0, user, password))


async def exchange(gateway: GbtGateway, *frames: bytes) -> list[g.Frame]:
    return await gbt32960_client.exchange("127.0.0.1", gateway.port, frames)


@pytest.fixture
async def gateway():
    outcomes: list[Outcome] = []

    async def sink(outcome: Outcome) -> None:
        outcomes.append(outcome)

    book = PledgeBook("fleet-a")
    for value in (pledge("fleet-a", "truck-1"), pledge("fleet-b", f"vin-{OTHER}"),
                  pledge("fleet-a", "truck-9"), pledge("fleet-a", "truck-9", "registry.pledge_released")):
        book.apply(value)
    gw = GbtGateway(sink, tenant="fleet-a", vin_map={PLEDGED: "truck-1", "LGHXCAE28M0000009": "truck-9"},
                    auth=AUTH, pledged=book, max_per_peer=2, idle_timeout=5)
    await gw.start("127.0.0.1", 0)
    gw.outcomes = outcomes  # type: ignore[attr-defined]
    try:
        yield gw
    finally:
        await gw.stop()


def refusals(gw: GbtGateway) -> list[str]:
    return [r.reason for o in gw.outcomes for r in o.rejected]  # type: ignore[attr-defined]


async def test_vehicle_frames_before_the_platform_login_are_refused(gateway: GbtGateway) -> None:
    answers = await exchange(gateway, realtime(PLEDGED))
    assert [(a.command, a.flag) for a in answers] == [(2, g.Flag.ERROR)]
    assert refusals(gateway) == ["not_logged_in"]
    assert not [e for o in gateway.outcomes for e in o.events]  # type: ignore[attr-defined]


async def test_a_wrong_password_is_refused_and_not_kept_in_the_dead_letter(gateway: GbtGateway) -> None:
    answers = await exchange(gateway, login(password="s3cret-pasX"), realtime(PLEDGED))
    assert [(a.command, a.flag) for a in answers] == [(5, g.Flag.ERROR), (2, g.Flag.ERROR)]
    assert refusals(gateway) == ["bad_credentials", "not_logged_in"]
    raw = gateway.outcomes[0].rejected[0].raw  # type: ignore[attr-defined]
    assert b"s3cret" not in raw and b"fleetplat" in raw


async def test_after_login_only_vins_pledged_by_the_tenant_are_taken(gateway: GbtGateway) -> None:
    released = "LGHXCAE28M0000009"
    answers = await exchange(gateway, login(), realtime(PLEDGED), realtime(OTHER), realtime(released))
    assert [(a.command, a.flag) for a in answers] == [(5, 1), (2, 1), (2, g.Flag.ERROR), (2, g.Flag.ERROR)]
    events = [e for o in gateway.outcomes for e in o.events]  # type: ignore[attr-defined]
    assert [(e.payload.vin, e.payload.machine_id) for e in events] == [(PLEDGED, "truck-1")]
    assert refusals(gateway) == ["vin_not_pledged", "vin_not_pledged"]
    letters = [r for o in gateway.outcomes for r in o.rejected]  # type: ignore[attr-defined]
    assert letters[0].raw == realtime(OTHER) and OTHER in letters[0].origin


async def test_platform_logout_closes_the_session(gateway: GbtGateway) -> None:
    logout = g.encode_frame(g.Command.PLATFORM_LOGOUT, "PLATFORM000000001", g.encode_time(T0) + b"\x00\x02")
    answers = await exchange(gateway, login(), logout, realtime(PLEDGED))
    assert [(a.command, a.flag) for a in answers] == [(5, 1), (6, 1), (2, g.Flag.ERROR)]
    assert refusals(gateway) == ["not_logged_in"]


async def test_connections_per_peer_are_bounded(gateway: GbtGateway) -> None:
    held = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(2)]
    await asyncio.sleep(0.1)
    r, w = await asyncio.open_connection("127.0.0.1", gateway.port)
    assert await asyncio.wait_for(r.read(10), 5) == b""  # closed at once
    w.close()
    assert gateway.stats.refused_connections == 1
    for _, hw in held:
        hw.close()
    await asyncio.sleep(0.1)
    assert (await exchange(gateway, login()))[0].flag == g.Flag.SUCCESS  # slots are given back


async def test_idle_connections_are_closed() -> None:
    async def sink(outcome: Outcome) -> None:
        return None

    gw = GbtGateway(sink, tenant="t", auth=AUTH, idle_timeout=0.3)
    await gw.start("127.0.0.1", 0)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", gw.port)
        assert await asyncio.wait_for(r.read(10), 5) == b""
        w.close()
    finally:
        await gw.stop()


async def test_the_send_command_simulates_a_logged_in_vehicle(gateway: GbtGateway) -> None:
    """`creditstream gbt32960 send` (docs/connectors.md): platform login, vehicle login,
    real-time frames, logout, each answer printed; exit 0 when all succeeded, 1 if not."""
    import os

    from tests.lenders.ld_support import CLI

    async def send(*extra: str) -> tuple[int, list[str]]:
        proc = await asyncio.create_subprocess_exec(
            CLI, "gbt32960", "send", "--port", str(gateway.port), "--vin", PLEDGED, "--frames", "2", *extra,
            env={**os.environ, "GBT_PLATFORM_PASSWORD": AUTH.password}, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode().splitlines()

    assert await send("--platform-user", AUTH.user, "--platform-password-env", "GBT_PLATFORM_PASSWORD") == (0, [
        "command 5: success", "command 1: success", "command 2: success", "command 2: success",
        "command 4: success"])
    assert await send() == (1, ["command 1: error 0x02", "command 2: error 0x02", "command 2: error 0x02",
                                "command 4: error 0x02"])

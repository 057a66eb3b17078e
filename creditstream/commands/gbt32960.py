"""`creditstream gbt32960 serve|send`: the GB/T 32960 TCP gateway and a frame sender."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from creditstream.commands import Subparsers, run_service, said


def _auth(args: argparse.Namespace):  # -> PlatformAuth | None
    """The platform account from --platform-user and the variable --platform-password-env names."""
    from connectors.sources.gbt32960_access import PlatformAuth

    if args.platform_user is None:
        if getattr(args, "action", "") == "serve" and not args.no_platform_login:
            raise ValueError("--platform-user and --platform-password-env are required "
                             "(or --no-platform-login on a trusted network)")
        return None
    password = os.environ.get(args.platform_password_env or "", "")
    if not password:
        raise ValueError(f"environment variable {args.platform_password_env!r} holding the "
                         "platform password is unset or empty")
    return PlatformAuth(args.platform_user, password)


async def _serve(args: argparse.Namespace) -> int:
    from connectors.kafka_io import make_producer
    from connectors.sources.common import Outcome
    from connectors.sources.emit import deliver, load_map
    from connectors.sources.gbt32960_access import PledgeBook, follow_pledges
    from connectors.sources.gbt32960_server import GbtGateway
    from schemas import config

    auth = _auth(args)
    bootstrap = args.bootstrap or config.load().kafka_bootstrap
    book, follower = None, None
    if not args.any_vin:
        book = PledgeBook(args.tenant)
        follower = asyncio.create_task(follow_pledges(bootstrap, book))
        await asyncio.wait({follower, asyncio.ensure_future(book.ready.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if follower.done():  # failed before catching up: its exception says why
            follower.result()
        # Failing later leaves the pledges as last read: say so loudly rather than silently.
        def _stopped(t: asyncio.Task[None]) -> None:
            if not t.cancelled():
                logging.getLogger(__name__).error(
                    "gbt32960: stopped following cs.pledges (%s): pledges are frozen as last read", t.exception())

        follower.add_done_callback(_stopped)
    producer = make_producer(bootstrap)
    await producer.start()

    async def sink(outcome: Outcome) -> None:
        await deliver(producer, outcome, tenant=args.tenant, stage="gbt32960")

    gateway = GbtGateway(sink, tenant=args.tenant, vin_map=load_map(args.vin_map),
                         idle_timeout=args.idle_timeout, auth=auth, pledged=book,
                         max_per_peer=args.max_per_peer)
    server = await gateway.start(args.host, args.port)
    print(f"gbt32960: listening on {args.host}:{gateway.port} for tenant {args.tenant}",
          file=sys.stderr, flush=True)
    serving = asyncio.current_task()
    if serving is not None:  # SIGTERM ends serving cleanly: the producer flushes and stops
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    try:
        async with server:
            await server.serve_forever()
    except asyncio.CancelledError:
        pass
    finally:
        if follower is not None:
            follower.cancel()
        await producer.stop()
        s = gateway.stats
        print(f"gbt32960: {s.connections} connections, {s.frames} frames, {s.events} events, "
              f"{s.rejected} rejected", file=sys.stderr)
    return 0


async def _send(args: argparse.Namespace) -> int:
    """Simulate a vehicle: login, N real-time frames a minute apart, logout; print answers."""
    from datetime import UTC, datetime, timedelta

    from connectors.sources import gbt32960 as g
    from connectors.sources.gbt32960_client import exchange

    auth = _auth(args)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=args.frames)
    frames = [g.encode_frame(g.Command.LOGIN, args.vin, g.login_data(start))]
    if auth is not None:
        frames.insert(0, g.encode_frame(g.Command.PLATFORM_LOGIN, args.platform_id.ljust(17, "0")[:17],
                                        g.platform_login_data(start, auth.user, auth.password)))
    for n in range(args.frames):
        ts = start + timedelta(minutes=n)
        frames.append(g.encode_frame(g.Command.REALTIME, args.vin, g.realtime_data(
            ts, g.vehicle_block(soc=max(0, args.soc - n), voltage_v=612.0 - n, current_a=-80.0,
                                mileage_km=args.mileage + n * 0.8, speed_kmh=48.0),
            g.location_block(28.2282, 112.9388), g.extremes_block(3.41, 3.37, 36, 28),
            g.alarm_block())))
    frames.append(g.encode_frame(g.Command.LOGOUT, args.vin, g.encode_time(start) + b"\x00\x01"))
    failed = 0
    for ans in await exchange(args.host, args.port, frames, timeout=10):
        ok = ans.flag == g.Flag.SUCCESS
        failed += not ok
        print(f"command {ans.command}: {'success' if ok else f'error 0x{ans.flag:02X}'}")
    return 1 if failed else 0


def _run(args: argparse.Namespace) -> int:
    return said(f"gbt32960 {args.action}", lambda: run_service(_serve(args) if args.action == "serve" else _send(args)),
                interrupt_ok=True)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("gbt32960", help="GB/T 32960 EV battery telemetry: TCP gateway and simulator")
    a = p.add_subparsers(dest="action", required=True)
    s = a.add_parser("serve", help="accept vehicle connections and produce battery telemetry")
    s.add_argument("--tenant", required=True, help="the publishing fleet or OEM")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=32960, help="TCP port (0: any free port)")
    s.add_argument("--vin-map", help="JSON file: VIN -> machine id (default vin-<VIN>)")
    s.add_argument("--idle-timeout", type=float, default=300.0, help="close idle connections after s")
    s.add_argument("--platform-user", help="the platform login (0x05) user name every connection must send")
    s.add_argument("--platform-password-env", help="environment variable holding the platform password")
    s.add_argument("--no-platform-login", action="store_true",
                   help="take vehicle frames without a platform login (trusted networks, development)")
    s.add_argument("--any-vin", action="store_true",
                   help="take every VIN instead of only the machines pledged by --tenant on cs.pledges")
    s.add_argument("--max-per-peer", type=int, default=8, help="connections one address may hold (default 8)")
    s.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    s.set_defaults(func=_run)
    c = a.add_parser("send", help="simulate one vehicle: login, real-time frames, logout")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=32960)
    c.add_argument("--vin", default="LGHXCAE28M1234567")
    c.add_argument("--frames", type=int, default=3)
    c.add_argument("--soc", type=int, default=80)
    c.add_argument("--mileage", type=float, default=120000.0)
    c.add_argument("--platform-user", help="log in as this platform first (command 0x05)")
    c.add_argument("--platform-password-env", help="environment variable holding the platform password")
    c.add_argument("--platform-id", default="CREDITSTREAMSIM", help="the platform's 17-character id")
    c.set_defaults(func=_run)

"""`creditstream gateway`: the HTTP ingest gateway for core enterprises."""

from __future__ import annotations

import argparse
import asyncio

from creditstream.commands import Subparsers


def _run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from connectors.gateway.app import Limits, build_app
    from connectors.pg.migrate import migrate
    from schemas import config

    settings = config.load()
    asyncio.run(migrate(settings.pg_url))
    limits = Limits(max_in_flight=args.max_in_flight, max_items=args.max_items,
                    max_in_flight_per_tenant=args.max_in_flight_per_tenant, body_timeout_s=args.body_timeout)
    port = args.port or settings.gateway_port

    def ready(_: str) -> None:
        # aiohttp's banner replaced by one line with the address, printed once it listens.
        print(f"gateway: ready; POST http://{args.host}:{port}/v1/events (Kafka {settings.kafka_bootstrap})",
              flush=True)

    web.run_app(build_app(settings.pg_url, settings.kafka_bootstrap, limits), host=args.host,
                port=port, print=ready)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("gateway", help="HTTP ingest gateway: POST /v1/events with a tenant API key")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=None, help="default CREDITSTREAM_GATEWAY_PORT (18080)")
    p.add_argument("--max-in-flight", type=int, default=32, help="requests in flight before 429")
    p.add_argument("--max-in-flight-per-tenant", type=int, default=8,
                   help="requests in flight of one tenant before its 429 (the others still get through)")
    p.add_argument("--body-timeout", type=float, default=10.0, help="seconds for a whole body to arrive (408)")
    p.add_argument("--max-items", type=int, default=1000, help="events per request")
    p.set_defaults(func=_run)

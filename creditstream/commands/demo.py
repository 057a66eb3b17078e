"""`creditstream demo`: the main job. Stack up, a worker, a simulated supply chain,
and the limit updates it causes printed with their reasons as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time

from creditstream.commands import Subparsers
from schemas import config


async def _tell_story(settings: config.Settings, pause: float) -> int:
    import orjson

    from connectors.kafka_io import TopicReader, make_producer, produce_events
    from creditstream.demo import describe, run_id, story
    from schemas.topics import ALERTS_TOPIC, LIMITS_TOPIC

    rid = run_id()
    producer = make_producer(settings.kafka_bootstrap)
    await producer.start()
    updates = 0
    try:
        async with TopicReader(settings.kafka_bootstrap, LIMITS_TOPIC, ALERTS_TOPIC) as reader:
            for caption, events in story(rid):
                print(f"\n▶ {caption} ({len(events)} events)", flush=True)
                await produce_events(producer, events)
                deadline = time.monotonic() + pause
                while time.monotonic() < deadline:
                    for rec in await reader.read(lambda recs: bool(recs), timeout=deadline - time.monotonic()):
                        value = orjson.loads(rec.value)
                        if rid not in rec.value.decode(errors="replace"):
                            continue
                        if rec.topic == LIMITS_TOPIC:
                            updates += 1
                            print(describe(value), flush=True)
                        else:
                            a = value["payload"]
                            print(f"  ⚠ alert {a['code']} ({a['severity']}): {a['text']}", flush=True)
    finally:
        await producer.stop()
    print(f"\nThe story produced {updates} limit updates.")
    return 0 if updates else 1


def _run(args: argparse.Namespace) -> int:
    from creditstream.stack import manager
    from load.workers import free_port, is_ready

    settings = config.load()
    try:
        manager.up(settings)
    except manager.StackError as exc:
        print(f"demo: the stack did not come up: {exc}", file=sys.stderr)
        return 1
    log = settings.state_dir / "demo-worker.log"
    log.unlink(missing_ok=True)
    # A fresh engine id that starts at the end of the input topics: the demo shows its own
    # story at once, whatever earlier runs left on the shared topics.
    app_id = f"creditstream-demo-{int(time.time())}"
    print(f"demo: starting a worker, engine {app_id} (log {log})", flush=True)
    web_port = free_port()
    with open(log, "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "creditstream.cli", "worker", "--id", "demo",
                                   "--app-id", app_id, "--start-at", "latest", "--web-port", str(web_port), "--data-dir",
                                   str(settings.state_dir / "demo" / app_id), "--loglevel", "info"],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  cwd=config.REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        while not is_ready(web_port):
            if worker.poll() is not None or time.monotonic() > deadline:
                print(f"demo: the worker did not start; see {log}", file=sys.stderr)
                return 1
            time.sleep(0.3)
        return asyncio.run(_tell_story(settings, args.pause))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        print("demo: worker stopped; the stack keeps running (`creditstream stack down` stops it)")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="the main job: stack, a worker and a simulated supply chain")
    p.add_argument("--pause", type=float, default=3.0, help="seconds to show each step's effects")
    p.set_defaults(func=_run)

"""`creditstream chaos run --fault webhook`: a lender's endpoint down, under load.

A real receiver (load/webhook_receiver.py, aiohttp on a free loopback port) verifies the
signature of every delivery and records it. The run's world names its lenders after the
run, the lender funding the most borrowers is registered with the receiver's URL and
subscribed to all the run's borrowers, and the webhook dispatcher
(connectors/lenders/webhooks.py, in this process, on a group of its own) pushes the chaos
engine's limit updates. When 40% of the stream is sent the receiver goes down (listening
socket and connections closed: connections are refused), and comes back on the same port
after the outage. Checked once everything published for the lender has arrived:

- lost: (borrower, version) published naming the lender, for a subscribed borrower, that
  never arrived;
- duplicates: a (borrower, version) that arrived with content differing from an earlier
  arrival or from what the engine published (identical repeats are at-least-once);
- order violations: an arrival whose version is below one already received for that borrower;
- recovered: seconds from the endpoint coming back until the last update it had missed
  (not received before it came back) arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from typing import Any

import asyncpg

from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy, funders
from connectors.lenders.urls import UrlPolicy
from connectors.lenders.webhooks import TOPIC, Dispatcher
from connectors.pg.migrate import migrate
from load.chaos import EngineRun, Published, build_traffic, drive, new_tag
from load.chaos_sinks import (
    BUSINESS_EVERY,
    SinkResult,
    engine_failures,
    group_at_end,
    task_alive,
    until,
)
from load.webhook_receiver import Delivery, Receiver
from load.world import World
from schemas import config

# Retry waits for the run: short enough that a returning endpoint is noticed within 10 s.
BASE_S, CAP_S = 0.5, 10.0
RISK = 1e-9


def hoeffding(policy: RetryPolicy, outage_s: float) -> float:
    """Upper bound on the chance that every attempt of ``policy`` fails inside an outage of
    ``outage_s`` (the update is then dead-lettered): the full-jitter waits are independent
    uniforms on [0, ceiling], so P(sum < outage) <= exp(-2 t^2 / sum(ceiling^2)) with
    t = E[sum] - outage (Hoeffding), when the outage is below the mean."""
    ceilings = [min(policy.cap_s, policy.base_s * 2 ** (n - 1)) for n in range(1, policy.max_attempts)]
    t = sum(c / 2 for c in ceilings) - outage_s
    return 1.0 if t <= 0 else math.exp(-2 * t * t / sum(c * c for c in ceilings))


def policy_for(outage_s: float) -> RetryPolicy:
    """The fewest attempts, with waits doubling from 0.5 s to a 10 s cap, that outlast the
    outage except with probability below 1e-9 per (lender, borrower).

    The default policy (10 attempts, 2 s doubling to 120 s) waits about 4 minutes on average,
    but its full jitter makes all ten attempts fail inside 2 minutes for about 2.6% of
    (lender, borrower) pairs (Monte Carlo, 200,000 draws): a 2-minute outage touching a few
    dozen borrowers would dead-letter some updates most runs, and its 120 s cap alone could
    hold a returned endpoint idle for 2 minutes.
    """
    attempts = 2
    while hoeffding(RetryPolicy(attempts, BASE_S, CAP_S), outage_s) > RISK:
        attempts += 1
    return RetryPolicy(attempts, BASE_S, CAP_S)


def busiest_lender(world: World) -> tuple[str, list[str]]:
    """The lender funding the most borrowers of the world, and those borrowers."""
    funded: dict[str, list[str]] = {}
    for p in world.borrowers:
        for lid, _share in world.programs.get(p.program_id or "", ()):
            funded.setdefault(lid, []).append(p.party_id)
    lid = max(sorted(funded), key=lambda k: len(funded[k]))
    return lid, funded[lid]


async def run(events: int, machines: int, rate: float, seed: int, outage_s: float) -> SinkResult:
    settings = config.load()
    bootstrap, url = settings.kafka_bootstrap, settings.pg_url
    await migrate(url)
    tag = new_tag()
    traffic = build_traffic(tag, seed, machines, events, BUSINESS_EVERY, lender_prefix=f"{tag}-")
    lender, funded = busiest_lender(traffic.world)
    subscribed = [p.party_id for p in traffic.world.borrowers]
    policy = policy_for(outage_s)
    receiver = Receiver()
    await receiver.up()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    stop = asyncio.Event()
    dispatcher_task: asyncio.Task[None] | None = None
    try:
        # The receiver is on this machine: loopback is allowed for this run only.
        loopback = UrlPolicy(allow_loopback=True)
        _key, receiver.secret = await repo.add_lender(pool, lender, f"Chaos {lender}", receiver.url,
                                                      url_policy=loopback)
        # All the run's borrowers: the dispatcher must push only those the lender funds.
        await repo.subscribe(pool, lender, "borrowers", borrower_ids=subscribed)
        group = f"cs-chaos-webhooks-{tag.lower()}"
        await group_at_end(bootstrap, group, [TOPIC])
        dispatcher = Dispatcher(bootstrap, pool, group=group, policy=policy, url_policy=loopback)
        dispatcher_task = asyncio.create_task(dispatcher.run(stop), name="webhook dispatcher")
        alive = task_alive(dispatcher_task)
        await until(lambda: _true(dispatcher.assigned.is_set()), 60, "the dispatcher got no partitions", alive)
        outage: asyncio.Task[float] | None = None
        async with EngineRun(settings, tag) as engine:
            async def inject() -> None:
                nonlocal outage
                outage = asyncio.create_task(_outage(receiver, outage_s))

            try:
                records = await drive(engine, traffic, rate, inject)
                assert outage is not None
                up_at = await outage
            finally:
                if outage is not None and not outage.done():
                    outage.cancel()
                    with contextlib.suppress(BaseException):
                        await outage
        pub = Published.of(records, engine.source)
        expected = {k: p for k, p in pub.updates.items() if k[0] in set(subscribed) and lender in funders(p)}

        async def all_arrived() -> bool:
            return expected.keys() <= {(d.borrower_id, d.version) for d in receiver.deliveries}

        await until(all_arrived, 180, "the backlog was not delivered", alive)
        await asyncio.sleep(1.0)  # a late repeat or out-of-order delivery would arrive now
        dead = await pool.fetchval("SELECT count(*) FROM webhook_dead_letters WHERE lender_id = $1", lender)
    finally:
        stop.set()
        if dispatcher_task is not None:
            await asyncio.gather(dispatcher_task, return_exceptions=True)
        await receiver.down()
        await pool.close()
    lost, duplicates, violations, foreign, backlog, recover_s = check(expected, receiver.deliveries, up_at)
    failures = pub.foreign_failure() + engine_failures(pub.gaps(), 0, pub.mismatches(traffic.reference))
    failures += [f"{n} {what}" for n, what in ((dead, "dead letters"), (len(receiver.refused), "refused deliveries"),
                                               (foreign, "deliveries the lender was not to get")) if n]
    if backlog == 0:
        failures.append("no update for the lender was published while the endpoint was down")
    return SinkResult(
        "webhook", outage_s, traffic.records, len(expected), len({b for b, _ in expected}),
        lost=lost, duplicates=duplicates + pub.conflicting, order_violations=violations, recover_s=recover_s,
        notes={"endpoint_down": outage_s, "lender": lender, "funds": f"{len(funded)} of {len(subscribed)} borrowers",
               "deliveries": len(receiver.deliveries), "backlog": backlog,
               "failed_attempts": dispatcher.stats.failed_attempts, "dead_letters": dead,
               "retry_policy": f"{policy.max_attempts} attempts, {policy.base_s:g} s doubling to {policy.cap_s:g} s"},
        failures=failures)


async def _true(value: bool) -> bool:
    return value


async def _outage(receiver: Receiver, outage_s: float) -> float:
    """Take the endpoint down for ``outage_s``; return the wall time it was back."""
    await receiver.down()
    try:
        await asyncio.sleep(outage_s)
    finally:
        await receiver.up()
    return time.time()


def check(expected: dict[tuple[str, int], dict[str, Any]], deliveries: list[Delivery],
          up_at: float) -> tuple[int, int, int, int, int, float]:
    """(lost, duplicates, order violations, foreign, backlog, recovery seconds) of the
    deliveries, in arrival order, against the updates the lender was to get."""
    first: dict[tuple[str, int], Delivery] = {}
    high: Counter[str] = Counter()
    duplicates = violations = foreign = 0
    for d in deliveries:
        key = (d.borrower_id, d.version)
        if key not in expected:
            foreign += 1
            continue
        if d.version < high[d.borrower_id]:
            violations += 1
        high[d.borrower_id] = max(high[d.borrower_id], d.version)
        if key not in first:
            first[key] = d
            duplicates += d.payload != expected[key]
        elif d.payload != first[key].payload:
            duplicates += 1
    lost = sum(1 for k in expected if k not in first)
    missed = [first[k].at for k in expected if k in first and first[k].at >= up_at]
    recover_s = max(0.0, max(missed) - up_at) if missed else 0.0
    return lost, duplicates, violations, foreign, len(missed), recover_s

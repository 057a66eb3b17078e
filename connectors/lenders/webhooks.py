"""Webhook dispatcher: cs.limits -> signed POSTs to subscribed, entitled lenders.

Order: one queue and one worker per (lender, borrower). A version is retried until it
succeeds or is dead-lettered before the next one for that pair is attempted; other pairs
are not held up. Progress per pair is kept in PostgreSQL (webhook_progress), and Kafka
offsets are committed only up to the lowest record with unfinished deliveries, so a
restart resumes in order and skips what is done. Delivery is at least once: a lender
de-duplicates by (borrower_id, version).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from connectors.errors import ConnectorError
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy, Subscription, targets
from connectors.lenders.offsets import TP, OffsetTracker
from connectors.lenders.urls import GuardedResolver, UrlPolicy, WebhookUrlError, check
from connectors.lenders.verify import HEADER, sign_header
from connectors.sink import Stopped, retry_unreachable
from schemas.topics import LIMITS_TOPIC

log = logging.getLogger(__name__)
T = TypeVar("T")
GROUP = "creditstream-webhooks"
TOPIC = LIMITS_TOPIC


class CannotOpenData(ConnectorError, RuntimeError):
    """No lender's webhook secret opens with the configured data keys: the process has the
    wrong key, and must not start as if it could deliver (docs/security.md, data keys)."""


async def preflight(pool: asyncpg.Pool) -> dict[str, str]:
    """Raise :class:`CannotOpenData` when webhook secrets exist and none opens; else the
    lenders whose secret does not (alerted and skipped, the others are served)."""
    sealed, problems = await repo.secret_problems(pool)
    if sealed and len(problems) == sealed:
        # Prefer a value that names its key (v2): the message then says which key is needed.
        first = next((p for p in problems.values() if "needs data key id" in p), next(iter(problems.values())))
        raise CannotOpenData(
            f"none of the {sealed} webhook secrets opens with the configured data key; the first: "
            f"{first}. Set CREDITSTREAM_DATA_KEY to the key that sealed them (compare with "
            "`creditstream keys data-key status`), or CREDITSTREAM_DATA_KEY_PREVIOUS during a rotation")
    return problems


@dataclass
class Job:
    lender_id: str
    borrower_id: str
    version: int
    event_id: str
    body: bytes
    tp: TP
    offset: int


@dataclass
class Stats:
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0
    skipped: int = 0
    unreadable: set[str] = field(default_factory=set)  # lenders whose secret does not open
    undecodable: int = 0
    attempts: list[tuple[str, str, int, int]] = field(default_factory=list)


class _Revoked(ConsumerRebalanceListener):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.d.tracker.forget([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            self.d.assigned.set()


class Dispatcher:
    """Run with ``await run(stop)``; ``stats`` counts outcomes."""

    def __init__(self, bootstrap: str, pool: asyncpg.Pool, *, group: str = GROUP,
                 policy: RetryPolicy | None = None, timeout_s: float = 10.0,
                 refresh_s: float = 5.0, max_pending: int = 10_000,
                 url_policy: UrlPolicy | None = None) -> None:
        self.bootstrap = bootstrap
        self.url_policy = url_policy or UrlPolicy.from_env()
        self.pool = pool
        self.group = group
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.refresh_s = refresh_s
        self.max_pending = max_pending
        self.tracker = OffsetTracker()
        self.stats = Stats()
        self.assigned = asyncio.Event()
        self._queues: dict[tuple[str, str], deque[Job]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._subs: list[Subscription] = []
        self._endpoints: dict[str, tuple[str, str]] = {}
        self._unreadable: dict[str, str] = {}
        self._loaded_at = 0.0
        self._stop = asyncio.Event()
        self._committed: dict[TP, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._alert(await preflight(self.pool))
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=200)
        consumer.subscribe([TOPIC], listener=_Revoked(self))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # Kafka unreachable: release the client, then say so
            raise
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(self.url_policy)))
        self._committed = {}
        try:
            with contextlib.suppress(Stopped):
                await self._loop(consumer, stop)
        finally:
            for task in self._workers.values():
                task.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)
            await self._commit(consumer, self._committed)
            await self._session.close()
            await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.tracker.pending >= self.max_pending:
                await asyncio.sleep(0.2)  # back-pressure: a dead endpoint must not eat RAM
            else:
                polled = await consumer.getmany(timeout_ms=300, max_records=500)
                if polled:
                    await self._refresh()
                for tp, msgs in polled.items():
                    for m in msgs:
                        self._dispatch((tp.topic, tp.partition), m.offset, m.value or b"")
            self._committed = await self._commit(consumer, self._committed)

    async def _commit(self, consumer: AIOKafkaConsumer, committed: dict[TP, int]) -> dict[TP, int]:
        mine = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        todo = {tp: o for tp, o in self.tracker.committable().items()
                if tp in mine and committed.get(tp) != o}
        if not todo:
            return committed
        try:
            await consumer.commit({TopicPartition(*tp): o for tp, o in todo.items()})
            return {**committed, **todo}
        except (CommitFailedError, KafkaError) as exc:
            log.warning("webhooks: commit failed (%s); records will be re-read", exc)
            return committed

    async def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < self.refresh_s:
            return
        self._subs, self._endpoints, unreadable = await self._db(repo.webhook_subscriptions, self.pool)
        self._alert(unreadable)
        self._unreadable = unreadable
        self._loaded_at = time.monotonic()

    def _alert(self, unreadable: dict[str, str]) -> None:
        """An ERROR line (what operators alert on) for each lender newly found unreadable.

        One bad row used to raise out of the refresh: the dispatcher left its group and no
        lender received anything while REST kept answering. Now only that lender is
        skipped, its updates dead-lettered unsent, and the others keep receiving."""
        for lender, why in unreadable.items():
            if lender not in self.stats.unreadable:
                log.error("webhooks: ALERT: skipping lender %s, its webhook secret cannot be opened: %s; its "
                          "updates are dead-lettered unsent until the key is configured", lender, why)
        self.stats.unreadable = set(unreadable)

    def _dispatch(self, tp: TP, offset: int, value: bytes) -> None:
        try:
            env = orjson.loads(value)
            payload = env["payload"]
            borrower, version = str(payload["borrower_id"]), int(payload["version"])
            event_id = str(env["event_id"])
            if env.get("type") != "limit.updated":
                raise ValueError(f"type {env.get('type')!r}")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # The ledger dead-letters undecodable records; here they are only skipped.
            self.stats.undecodable += 1
            log.warning("webhooks: skipping undecodable record %s@%d: %s", tp, offset, exc)
            self.tracker.add(tp, offset, 0)
            return
        lenders = [lid for lid in targets(payload, self._subs)
                   if lid in self._endpoints or lid in self._unreadable]
        self.tracker.add(tp, offset, len(lenders))
        for lid in lenders:
            key = (lid, borrower)
            self._queues.setdefault(key, deque()).append(
                Job(lid, borrower, version, event_id, value, tp, offset))
            if key not in self._workers:
                self._workers[key] = asyncio.create_task(self._worker(key))

    async def _worker(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue and not self._stop.is_set():
                job = queue[0]
                if not await self._deliver(job):
                    return  # stopping: unfinished, so its offset stays uncommitted
                queue.popleft()
                self.tracker.done(job.tp, job.offset)
        except Stopped:
            return
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _deliver(self, job: Job) -> bool:
        """Deliver one version (attempts, log rows, dead letter); False if stopped first."""
        done = await self._db(repo.progress, self.pool, job.lender_id, job.borrower_id)
        if done >= job.version:
            self.stats.skipped += 1  # delivered or dead-lettered before a restart
            return True
        if job.lender_id in self._unreadable:
            # Nothing can be signed for it: no attempt, a dead letter to replay once fixed.
            self.stats.dead += 1
            await self._db(self._finish, job, (job.event_id, 0, "webhook secret cannot be opened: "
                                               + self._unreadable[job.lender_id], job.body))
            return True
        error = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            url, secret = self._endpoints.get(job.lender_id, (None, None))
            started = datetime.now(UTC)
            code: int | None = None
            if url is None or secret is None:
                error = "lender has no webhook endpoint any more"
            else:
                code, error = await self._post(url, secret, job, attempt)
            ok = code is not None and 200 <= code < 300
            last = attempt == self.policy.max_attempts
            status = "delivered" if ok else ("dead" if last else "failed")
            self.stats.attempts.append((job.lender_id, job.borrower_id, job.version, attempt))
            await self._db(repo.log_attempt, self.pool, job.lender_id, job.borrower_id, job.version,
                           job.event_id, attempt, status, code, None if ok else error, started)
            if ok:
                self.stats.delivered += 1
                await self._db(self._finish, job, None)
                return True
            self.stats.failed_attempts += 1
            if last:
                break
            delay = self.policy.delay(attempt)
            log.info("webhooks: %s %s v%d attempt %d failed (%s); retry in %.2fs",
                     job.lender_id, job.borrower_id, job.version, attempt, error, delay)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
                return False
            except TimeoutError:
                pass
        self.stats.dead += 1
        log.error("webhooks: dead-lettered %s %s v%d after %d attempts: %s", job.lender_id,
                  job.borrower_id, job.version, self.policy.max_attempts, error)
        await self._db(self._finish, job, (job.event_id, self.policy.max_attempts, error, job.body))
        return True

    async def _finish(self, job: Job, dead: tuple[str, int, str, bytes] | None) -> None:
        async with self.pool.acquire() as conn:
            await repo.finish(conn, job.lender_id, job.borrower_id, job.version, dead)

    async def _post(self, url: str, secret: str, job: Job, attempt: int) -> tuple[int | None, str]:
        headers = {"Content-Type": "application/json", HEADER: sign_header(secret, job.body),
                   "X-Creditstream-Event-Id": job.event_id,
                   "X-Creditstream-Borrower": job.borrower_id,
                   "X-Creditstream-Version": str(job.version),
                   "X-Creditstream-Attempt": str(attempt)}
        try:
            # Again at every attempt: the URL may predate validation, and DNS can change.
            await check(url, self.url_policy)
        except WebhookUrlError as exc:
            return None, f"refused webhook URL: {exc}"[:500]
        try:
            # Redirects are not followed: a 3xx is a failed attempt, never a second target.
            async with self._session.post(url, data=job.body, headers=headers,
                                          allow_redirects=False) as resp:
                await resp.read()
                return resp.status, "" if resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]

    async def _db(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a database call, retrying while PostgreSQL is unreachable
        (:class:`connectors.sink.Stopped` when stopped first)."""
        return await retry_unreachable(lambda: fn(*args), self._stop, name="webhooks")

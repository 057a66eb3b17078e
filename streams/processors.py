"""Processors: raw Kafka records in, domain calls, outputs back. No Kafka, no Faust here.

Each processor owns one state store (a mapping key -> JSON-able dict) and handles the
topics co-partitioned with it, like a Kafka Streams processor with its state store. The
lanes (streams/fastlane.py) and the offline replay (streams/replay.py) both drive these
same classes, so what is tested offline is what runs.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

import orjson

from schemas import codec
from schemas import events as ev
from schemas.outputs import dead_letter_record
from schemas.topics import (
    BY_NAME,
    DEADLETTER_TOPIC,
    KEY_OF_TYPE,
    LEDGER_TOPIC,
    PLEDGES_TOPIC,
    POOLS_TOPIC,
    PRICES_TOPIC,
    REGISTRY_TOPIC,
    SIGNALS_TOPIC,
    TELEMETRY_TOPIC,
    TOPIC_OF_TYPE,
    WAYBILLS_TOPIC,
)
from streams import metrics
from streams.domain import (
    dealers,
    facility,
    freight,
    invoices,
    machines,
    orders,
    receipts,
    registry,
    risk_pool,
    silence,
)
from streams.domain.signals import (
    Output,
    Rejected,
    one_signal_per_borrower,
    read_signal,
    utc_time,
)
from streams.domain.signals import alert as raise_alert

log = logging.getLogger(__name__)
Store = MutableMapping[str, Any]


def dead_letter(topic: str, partition: int | None, offset: int | None, key: bytes | None,
                value: bytes, stage: str, reason: str, error: str, at: float | None = None) -> Output:
    """The dead letter of a refused record (schemas.outputs.dead_letter_record), keyed by
    the record's key.

    Its time is the refused event's time (``at``) when it decoded, else ``EARLIEST``
    (2000-01-01, the oldest time the envelope contract accepts) meaning "unknown": a
    wall-clock time would make replays differ, and 1970 is not a valid envelope time.
    """
    record = dead_letter_record(topic=topic, partition=partition, offset=offset, key=key, value=value,
                                stage=stage, reason=reason, error=error,
                                at=utc_time(at) if at is not None else ev.EARLIEST)
    return Output(DEADLETTER_TOPIC, (key or b"").decode(errors="replace")[:200] or record["event_id"], record)


class Processor:
    """Base: decode, check routing, call the domain, turn every failure into a dead letter."""

    name = "processor"
    topics: tuple[str, ...] = ()
    types: frozenset[str] = frozenset()
    # Whether a lane records this processor's outputs with its state before publishing
    # them (streams/fastlane.py, "outbox"): for a processor whose decision may depend on
    # the order in which independently produced inputs arrived, so that the owner after
    # a crash re-publishes what was decided instead of deciding again from another order.
    outbox = False

    def process(self, store: Store, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None,
                decoded: ev.Envelope | None = None) -> list[Output]:
        """``decoded``: ``value`` as the caller already decoded it (a policy diff routes
        each event by its type first), not decoded again."""
        event: ev.Envelope | None = None
        expected: str | None = None
        try:
            event = codec.decode(value) if decoded is None else decoded
            if event.type not in self.types:
                raise Rejected("wrong_topic", f"event type {event.type} does not belong on {topic}")
            expected = KEY_OF_TYPE[event.type](event)
            if key is not None and key.decode(errors="replace") != expected:
                raise Rejected("misrouted", f"record key {key!r} does not match the catalogue key {expected!r}")
            return one_signal_per_borrower(self.apply(store, expected, event))
        except codec.DecodeError as exc:
            return [dead_letter(topic, partition, offset, key, value, self.name, exc.reason, str(exc))]
        except Rejected as exc:
            forget(store, expected)
            at = event.occurred_at.timestamp() if event else None
            return [dead_letter(topic, partition, offset, key, value, self.name, exc.reason, str(exc), at)]
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the partition; it is dead-lettered
            forget(store, expected)
            log.exception("processor %s failed on %s/%s@%s", self.name, topic, partition, offset)
            return [dead_letter(topic, partition, offset, key, value, self.name, "internal_error", repr(exc))]

    def apply(self, store: Store, key: str, event: ev.Envelope) -> list[Output]:
        raise NotImplementedError


def forget(store: Store, key: str | None) -> None:
    """After a refused or failed event, drop a store's cached copy of the key's state
    (streams/fastlane.py caches decoded states; a domain function may have changed the
    object before it refused): the next event starts again from the stored state."""
    drop = getattr(store, "forget", None)
    if drop is not None and isinstance(key, str):
        drop(key)


def own_copy(store: Store, key: str, new: Any) -> Any:
    """The key's state as a private copy (or a new one), for the low-volume processors.

    A refused input must leave the state as it was, but a domain function may change the
    state before it refuses (it records the input's id first, to ignore repeats). Stores
    hand out the cached object itself (the replay's dict, a lane's cache, a Faust batch's
    writes), so those changes would stick or not depending on the store and the batch:
    the replay and a worker would then treat a corrected retry differently. Working on
    a copy, only a successful input's state is written back."""
    state = store.get(key)
    return new(key) if state is None else orjson.loads(orjson.dumps(state))


class MachineProcessor(Processor):
    """Stage 1: pledges and telemetry by machine id."""

    name = "machines"
    topics = (TELEMETRY_TOPIC, PLEDGES_TOPIC, WAYBILLS_TOPIC)
    types = frozenset({"telemetry.equipment", "telemetry.battery", "registry.pledge", "registry.pledge_released"}
                      | {t for t in KEY_OF_TYPE if t.startswith("freight.")})

    _partition = 0

    def process(self, store: Store, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None,
                decoded: ev.Envelope | None = None) -> list[Output]:
        # The partition scopes stage 1's clock for MACHINE_SILENT (domain/silence.py); the
        # replay has none and takes the one the producers' partitioner picks.
        self._partition = (partition if partition is not None
                           else silence.partition_of(key or b"", BY_NAME[topic].partitions))
        return super().process(store, topic, key, value, partition, offset, decoded)

    def apply(self, store: Store, key: str, event: ev.Envelope) -> list[Output]:
        if event.type.startswith("freight."):  # a truck's waybills meet its positions here (freight.py)
            state = own_copy(store, key, machines.new_state)
            outs = freight.on_event(state, event)
            store[key] = state
            return outs
        if isinstance(event, ev.MachinePledged | ev.PledgeReleased):
            state = own_copy(store, key, machines.new_state)  # pledges are rare: a copy is cheap
            told = state.get("told")
            outs = machines.on_pledge(state, event)
        else:
            # Telemetry (the hot path) is not copied: on_telemetry refuses before any change.
            state = store.get(key) or machines.new_state(key)
            told = state.get("told")
            outs = machines.on_telemetry(state, event)  # type: ignore[arg-type]
        store[key] = state
        pledge = state["pledge"]
        if pledge is None:
            return outs
        if state.get("told") != told:
            silence.told(store, self._partition, state)
        # Tails of other machines of the program made final by this record's time come
        # first: they are older than it.
        return silence.advance(store, self._partition, pledge["program_id"], event.occurred_at.timestamp(),
                               machines.tell) + outs


class AssetProcessor(Processor):
    """One state per catalogue key and one domain function per event: the stage-1
    processors whose ``domain`` module has ``new_state(key)`` and ``on_event(state, event)``.

    A subclass names its store, its domain module and the ``prefixes`` of its event
    types; its types are the catalogue's types with those prefixes and its topics the
    catalogue's topics of those types (schemas/topics.py), so neither is kept twice."""

    domain: ModuleType
    prefixes: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.types = frozenset(t for t in KEY_OF_TYPE if t.startswith(cls.prefixes))
        cls.topics = tuple(dict.fromkeys(TOPIC_OF_TYPE[t].name for t in KEY_OF_TYPE if t in cls.types))

    def apply(self, store: Store, key: str, event: ev.Envelope) -> list[Output]:
        state = own_copy(store, key, self.domain.new_state)
        outs: list[Output] = self.domain.on_event(state, event)
        store[key] = state
        return outs


class InvoiceProcessor(AssetProcessor):
    name, domain, prefixes = "invoices", invoices, ("invoice.",)


class OrderProcessor(AssetProcessor):
    name, domain, prefixes = "orders", orders, ("po.", "shipment.observed")


class DealerProcessor(AssetProcessor):
    """Stage 1: sales-based dealer financing, by dealer id (units, plans, audits)."""

    name, domain, prefixes = "dealers", dealers, ("dealer.",)


class ReceiptProcessor(AssetProcessor):
    """Stage 1: warehouse receipts by receipt (warehouse and number), the duplicate guard."""

    name, domain, prefixes = "receipts", receipts, ("receipt.",)


class RegistryProcessor(Processor):
    """The single-partition registry; its store holds many keys per event (indexes)."""

    name = "registry"
    topics = (REGISTRY_TOPIC, PRICES_TOPIC)  # prices fan out to programs' members (prices.py)
    types = frozenset({"market.price", "registry.borrower", "registry.supply_relationship", "registry.party_status",
                       "registry.program", "registry.consent_granted", "registry.consent_revoked",
                       "registry.policy_promoted", "registry.reference_rate"})

    def apply(self, store: Store, key: str, event: ev.Envelope) -> list[Output]:
        return registry.on_event(store, event)


# Ledger records of one borrower kept while its registration has not reached stage 2;
# beyond this, a ledger record for an unregistered borrower is dead-lettered at once.
MAX_PARKED_LEDGER = 64


class FacilityProcessor(Processor):
    """Stage 2: signals and ledger events by borrower id; runs the credit policy."""

    name = "facilities"
    # Signals arrive when stage 1 made them, ledger events when they were produced: live,
    # a drawdown may be decided before the signal of an earlier receipt exists; replayed
    # after a crash, the signal is there first (chaos kill-each, seed 8209).
    outbox = True
    _record: tuple[bytes | None, bytes, int | None, int | None] = (None, b"", None, None)
    topics = (SIGNALS_TOPIC, LEDGER_TOPIC)
    types = frozenset({"ledger.drawdown", "ledger.repayment", "ledger.overdue"})
    # A policy diff's figures of an update instead of the event (facility.decide_and_publish).
    summarise: Callable[[facility.State, Any], Any] | None = None

    def __init__(self, pinned: str | None = None) -> None:
        # An engine pinned to a policy version (a shadow, a diff) decides every borrower
        # under it, whatever the registry promotes (facility.policy_version).
        self.pinned = pinned

    def _state(self, store: Store, bid: str) -> facility.State:
        """A borrower's state, pinned to this engine's version or to none: an engine id
        run once with ``--shadow`` and then without is not left pinned."""
        state = store.get(bid) or facility.new_state(bid)
        if self.pinned:
            state["pinned"] = self.pinned
        else:
            state.pop("pinned", None)
        return state

    def process(self, store: Store, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None,
                decoded: ev.Envelope | None = None) -> list[Output]:
        # The policy runs after every input, never per batch: the decisions (and so the
        # versions) are then a function of the input sequence alone, and a worker that
        # restarts mid-batch re-publishes exactly what it published before.
        if topic != SIGNALS_TOPIC:
            self._record = (key, value, partition, offset)
            return super().process(store, topic, key, value, partition, offset, decoded)
        bid = None
        try:
            sig = read_signal(value)
            bid = sig["borrower_id"]
            state = self._state(store, bid)
            outs = facility.apply_signal(state, sig)
            outs += self._apply_parked(state)
            outs += facility.decide_and_publish(state, self.summarise)
            store[bid] = state
            return outs
        except Rejected as exc:
            forget(store, bid)
            return [dead_letter(topic, partition, offset, key, value, self.name, exc.reason, str(exc))]
        except Exception as exc:  # noqa: BLE001 - see Processor.process
            forget(store, bid)
            log.exception("facility failed on signal %s@%s", partition, offset)
            return [dead_letter(topic, partition, offset, key, value, self.name, "internal_error", repr(exc))]

    def apply(self, store: Store, key: str, event: ev.Envelope) -> list[Output]:
        state = self._state(store, key)
        if state["program"] is None and len(state.get("parked", ())) < MAX_PARKED_LEDGER:
            # The registration may still be on its way: the registry is another topic,
            # and its signal reaches this partition after stage 1 read it, so a worker
            # reading a backlog can see a borrower's drawdown first (issue 19, the late
            # worker). The record is kept, as it arrived, and applied with the program.
            k, value, partition, offset = self._record
            state.setdefault("parked", []).append({
                "key": k.decode(errors="replace") if k is not None else None,
                "value": base64.b64encode(value).decode(), "partition": partition, "offset": offset})
            store[key] = state
            # Seen, not silent: a borrower that is never registered keeps it visible.
            return [raise_alert("LEDGER_BEFORE_REGISTRATION", "warning",
                                f"{event.type} {event.event_id} for borrower {key} arrived before the borrower's "
                                "registration; it is kept and applied when the program arrives.",
                                event.occurred_at.timestamp(), [event.event_id], key, None, event.tenant)]
        outs = facility.apply_ledger(state, event)
        outs += facility.decide_and_publish(state, self.summarise)
        store[key] = state
        return outs

    def _apply_parked(self, state: facility.State) -> list[Output]:
        """Once the borrower's program is known, apply the ledger records kept until then,
        in their order, into the decision the program's signal causes (one input, one
        decision); a record refused now is dead-lettered with its own origin and bytes."""
        if state["program"] is None or not state.get("parked"):
            return []
        outs: list[Output] = []
        for rec in state.pop("parked"):
            value = base64.b64decode(rec["value"])
            key = rec["key"].encode() if rec["key"] is not None else None
            try:
                outs += facility.apply_ledger(state, codec.decode(value))
            except Rejected as exc:
                outs.append(dead_letter(LEDGER_TOPIC, rec["partition"], rec["offset"], key, value, self.name,
                                        exc.reason, str(exc)))
        return outs


class PoolProcessor(Processor):
    """The pool stage: stage 2's claims on risk-sharing pools, by pool id; answers each
    borrower whose covered exposure changed with a ``pool`` signal (risk_pool.py)."""

    name = "pools"
    outbox = True  # claims of many borrowers, from lanes of their own
    topics = (POOLS_TOPIC,)

    def process(self, store: Store, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None,
                decoded: ev.Envelope | None = None) -> list[Output]:
        pool_id = None
        try:
            claim = orjson.loads(value)
            pool_id = claim["pool_id"]
            # No copy (a pool holds all its borrowers' claims): on_claim refuses before any change.
            state = store.get(pool_id) or risk_pool.new_pool(pool_id)
            outs = risk_pool.on_claim(state, claim)
            store[pool_id] = state
            if outs:  # what operators watch: the pool's covered exposure against its capacity
                covered, capacity = risk_pool.utilisation(state)
                metrics.POOL_COVERED.labels(pool_id).set(float(covered))
                metrics.POOL_CAPACITY.labels(pool_id).set(float(capacity))
            return outs
        except Exception as exc:  # noqa: BLE001 - an internal record: a bug must not stop the partition
            forget(store, pool_id)
            log.exception("pool stage failed on %s@%s", partition, offset)
            return [dead_letter(topic, partition, offset, key, value, self.name, "internal_error", repr(exc))]


def all_processors(policy: str | None = None) -> list[Processor]:
    """One engine's processors; ``policy`` pins its decisions to that policy version."""
    return [RegistryProcessor(), MachineProcessor(), InvoiceProcessor(), OrderProcessor(), DealerProcessor(),
            ReceiptProcessor(), FacilityProcessor(policy), PoolProcessor()]


def processor_for(topic: str, processors: list[Processor]) -> Processor:
    for p in processors:
        if topic in p.topics:
            return p
    raise KeyError(topic)


def encode_output(o: Output, source: str | None = None) -> bytes:
    """Serialise an output; ``source`` names the engine in envelopes (limit updates and
    dead letters) when it is not the default engine, so shadow and test engines that
    share the output topics can be told apart."""
    if source and "source" in o.value:
        return orjson.dumps({**o.value, "source": source})
    return orjson.dumps(o.value)


def engine_source(app_id: str, default_id: str = "creditstream-engine") -> str | None:
    return None if app_id == default_id else f"creditstream.engine.{app_id}"[:128]

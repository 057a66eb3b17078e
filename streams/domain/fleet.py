"""Stage 2's equipment component, kept per machine: a decision costs O(what changed).

``policy.decide`` needs every pledged machine's contribution (``policy._machine``). Valued
from scratch, a signal of one machine re-valued the borrower's whole fleet (issue 13:
1,000 machines per signal). :func:`equipment` keeps, per borrower, each machine's
component and reasons with the running sum, the number frozen and the reason codes, and
values again only

- the machines whose signal arrived since the last decision (:func:`touch`, called by
  ``facility`` whenever it changes a machine's entry or utilisation history), and
- the machines whose value the passing of event time may have changed: each entry
  carries the earliest watermark at which it can differ (:func:`valid_until`), and a
  heap hands back the entries that are due.

A machine's value depends on "now" (the watermark) in three places only, each a step
function of now with steps that can be computed in advance:

1. age: ``round(min(age factor, hours factor), 6)``; the age factor falls linearly, so
   the rounded value stays until the age factor reaches the lower rounding boundary,
   ``acquired + (1 - (r - 0.5e-6)) x life`` (one step every ~5 minutes of event time for
   a 10-year life, that is ~0.03 machines per signal for a machine reporting every 10
   minutes);
2. utilisation: the step rule's window opens at ``at + window`` for each accepted factor
   in the history (at most 20);
3. silence: ``last_seen + silent_after_hours``.

Each step is taken :data:`MARGIN_S` early (an early re-valuation gives the same result;
a late one would not), so the decision is byte-identical to valuing the whole fleet,
which ``policy.equipment`` still does and tests/engine/test_fleet_incremental.py
compares against over generated logs. Nothing here is stored: the cache lives beside the
state object it was built for (by identity, so a state read again from the store after
a refusal or a rewind is valued from scratch once), bounded by
:data:`MAX_CACHED_MACHINES`.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from schemas.currencies import minor_unit
from streams.domain.policy import (
    D0,
    DAY,
    Equipment,
    PolicyParams,
    _acquired_ts,
    _machine,
    _money,
)
from streams.domain.signals import MachineSignal

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

# Steps are taken this many seconds of event time early: float rounding in the step
# times is ~1e-7 s at today's epoch, so a second is ample and costs nothing.
MARGIN_S = 1.0
YEAR_S = 365.25 * DAY
# Machines whose components are kept in memory across all borrowers (~1.2 KB each as
# Python objects); beyond it the borrowers valued longest ago are dropped, and valued
# from scratch when next decided. The stage-2 lane caches ~32 MB of states' JSON (4
# partitions x 8 MB, ~600 bytes a machine), about as many machines: a fleet whose state
# left that cache is valued afresh anyway, since its state is then a new object.
MAX_CACHED_MACHINES = 50_000


def valid_until(sig: MachineSignal, params: PolicyParams, now: float, history: list[list[float]]) -> float:
    """The earliest watermark after ``now`` at which ``policy._machine`` may value this
    machine differently (its signal and history unchanged); ``inf`` if never."""
    pledge = sig["pledge"]
    until = math.inf
    acquired = _acquired_ts(pledge["acquired_on"])
    if now < acquired:
        until = acquired  # the age factor is 1 until the acquisition, then falls
    else:
        life = pledge["life_years"]
        age_factor = max(0.0, 1 - max(0.0, (now - acquired) / YEAR_S) / life)
        hours_factor = max(0.0, 1 - (sig.get("hours") or 0.0) / pledge["life_hours"])
        r = round(min(age_factor, hours_factor), 6)
        if r > 0:  # at 0 it stays 0
            until = acquired + (1 - (r - 5e-7)) * life * YEAR_S - MARGIN_S
    window = float(params.util_step_window_days) * DAY
    for at, _factor in history:
        if at + window > now - MARGIN_S:  # not yet (or only just) out of the window
            until = min(until, at + window - MARGIN_S)
    silent_s = float(params.silent_after_hours) * 3600  # a program's override is a Decimal
    if not (now - sig["last_seen"]) / 3600 > params.silent_after_hours:
        until = min(until, sig["last_seen"] + silent_s - MARGIN_S)
    return until


class Fleet:
    """One borrower's machines as valued at the last decision."""

    def __init__(self, state: FacilityState, params: PolicyParams, currency: str) -> None:
        self.owner = state  # identity: the cache is only good for this very object
        self.params = params
        self.currency = currency
        self.unit = minor_unit(currency)
        self.zero = _money(D0, self.unit)
        self.total = self.zero
        self.frozen = 0
        self.codes: Counter[str] = Counter()
        # machine id -> (component, reasons, valid until); order: their ids, sorted
        self.entries: dict[str, tuple[dict[str, Any], list[tuple[str, str]], float]] = {}
        self.order: list[str] = []
        self.due: list[tuple[float, str]] = []  # (valid until, id), a heap; stale rows skipped
        self.dirty: set[str] = set(state["assets"]["machine"])
        self.now = -math.inf

    def advance(self, now: float) -> None:
        """Value again what changed and what the watermark ``now`` made due."""
        due = self.due
        todo = self.dirty
        self.dirty = set()
        while due and due[0][0] <= now:
            until, mid = heapq.heappop(due)
            entry = self.entries.get(mid)
            if entry is not None and entry[2] == until:
                todo.add(mid)
        for mid in todo:
            self._value(mid, now)
        if len(due) > 4 * len(self.entries) + 64:  # rows left by machines valued again
            self.due = [(e[2], mid) for mid, e in self.entries.items() if e[2] != math.inf]
            heapq.heapify(self.due)
        self.now = now

    def _value(self, mid: str, now: float) -> None:
        state = self.owner
        old = self.entries.pop(mid, None)
        if old is not None:
            self.total -= old[0]["contribution"]
            self.frozen -= old[0]["frozen"]
            self.codes.subtract(code for code, _ in old[1])
        sig = state["assets"]["machine"].get(mid)
        if sig is None or sig["pledge"]["currency"] != self.currency:
            if old is not None:
                del self.order[bisect_left(self.order, mid)]
            return
        history = state["util"].get(mid, [])
        reasons: list[tuple[str, str]] = []
        component = _machine(sig, self.params, now, history, reasons, self.unit)
        until = valid_until(sig, self.params, now, history)
        self.entries[mid] = (component, reasons, until)
        if old is None:
            insort(self.order, mid)
        self.total += component["contribution"]
        self.frozen += component["frozen"]
        self.codes.update(code for code, _ in reasons)
        if until != math.inf:
            heapq.heappush(self.due, (until, mid))

    def view(self) -> Equipment:
        entries, order = self.entries, self.order
        return Equipment(
            total=self.total, frozen=self.frozen > 0,
            codes=frozenset(code for code, n in self.codes.items() if n > 0),
            components=lambda: [entries[mid][0] for mid in order],
            reasons=lambda: [r for mid in order for r in entries[mid][1]])


# By the state object's id (the fleet holds the object, so the id is not reused while
# it is kept): a policy diff runs two stage 2s with the same borrowers side by side.
_FLEETS: dict[int, Fleet] = {}
_cached = 0


def equipment(state: FacilityState, params: PolicyParams) -> Equipment:
    """The equipment part of the decision on ``state`` at its watermark, valuing only
    what changed since the last call for the same state (see the module docstring)."""
    global _cached
    key = id(state)
    currency = cast(dict[str, Any], state["program"])["currency"]  # decided once registered
    now = state["watermark"]
    fleet = _FLEETS.get(key)
    if (fleet is None or fleet.owner is not state or fleet.currency != currency or now < fleet.now
            or not (fleet.params is params or fleet.params == params)):
        if fleet is not None:
            _cached -= len(fleet.entries)
            del _FLEETS[key]
        fleet = _FLEETS[key] = Fleet(state, params, currency)
        while _cached > MAX_CACHED_MACHINES and len(_FLEETS) > 1:
            oldest = next(iter(_FLEETS))
            _cached -= len(_FLEETS.pop(oldest).entries)
    before = len(fleet.entries)
    fleet.advance(now)
    _cached += len(fleet.entries) - before
    return fleet.view()


def touch(state: FacilityState, machine_id: str) -> None:
    """Say that ``state``'s entry or utilisation history of ``machine_id`` changed (or
    the machine was released): it is valued again at the next decision."""
    fleet = _FLEETS.get(id(state))
    if fleet is not None and fleet.owner is state:
        fleet.dirty.add(machine_id)


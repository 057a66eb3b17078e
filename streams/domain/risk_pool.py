"""Government risk-sharing pools (docs/credit-policy.md section 14): a program declares
a compensation pool (``ProgramPayload.risk_pool``); each limit is a claim on it; the
pool's capacity, fund x leverage, bounds the exposure it covers across all its
programs' borrowers.

Two halves, both pure (no clock, no I/O):

- the borrower's side, in stage 2 (``facility.py``, ``policy.decide``): what the limit
  claims, what the pool answered, the hold or the uncovered part, the limit update's
  ``risk_pool`` block and each lender's covered amount; a changed claim becomes a
  record on ``cs.pools`` keyed by pool id;
- the pool's side (``PoolProcessor``, one state per pool id): the claims of every
  borrower, the allocation, and an answer (a ``pool`` signal) to each borrower whose
  covered amount changed.

The allocation depends on the *set* of claims, never on the order they reached the
pool: each borrower's claim is kept as layers (one per increase, stamped with the event
time of the decision that made it; a decrease trims the newest layers), and capacity is
given out layer by layer in event-time order (ties: borrower id). So a worker that reads
the claims in another interleaving than the replay ends with the same covered amounts.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, cast

from schemas.topics import POOLS_TOPIC
from streams.domain.signals import Output, PoolSignal, signal

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

ZERO = Decimal(0)
SHARE = Decimal("0.0001")


def declared(program: dict[str, Any] | None) -> dict[str, Any] | None:
    """The program's pool declaration (``RiskPool`` as JSON), or None."""
    return (program or {}).get("risk_pool") or None


def capacity(pool: dict[str, Any]) -> Decimal:
    return Decimal(pool["fund"]["amount"]) * Decimal(str(pool["leverage"]))


# ------------------------------------------------------------------ borrower's side
def apply(state: FacilityState, limit: Decimal, unit: Decimal) -> tuple[Decimal, dict[str, Any] | None,
                                                                         list[tuple[str, str]]]:
    """The limit after the pool's rule, the ``risk_pool`` block and the reasons.

    ``limit`` is what the policy would lend (the claim). A ``hold`` pool keeps the limit
    at what the pool covers (an increase waits for its answer and for room); an
    ``uncovered`` pool lets the limit rise and covers what it can."""
    pool = declared(state["program"])
    if pool is None:
        return limit, None, []
    mine = state.get("pool") or {}
    same = mine.get("id") == pool["pool_id"]
    granted = Decimal(mine["granted"]) if same and "granted" in mine else ZERO
    claim = _claim_key(pool, limit)
    # Only an increase waits for the pool's answer: a decrease (or a limit of 0) is
    # covered at once, as the pool always accepts it.
    pending = limit > granted and (mine.get("claim") != claim or mine.get("answered", 0) < mine.get("seq", 0))
    cur = cast(dict[str, Any], state["program"])["currency"]  # declared a pool: registered
    # Only figures of this borrower and its program: how full the pool is at a given
    # moment depends on how other borrowers' claims interleaved, so a limit update that
    # said it would differ between the worker and the replay (the lender API and the
    # worker's metrics show it).
    cap = capacity(pool)
    reasons: list[tuple[str, str]] = []
    held = limit
    if pool["on_overflow"] == "hold" and limit > granted:
        held = granted.quantize(unit)
        why = (f"until the risk-sharing pool {pool['pool_id']} answers" if pending else
               f"because the risk-sharing pool {pool['pool_id']} (capacity {cap:,.0f} {cur}) is full")
        reasons.append(("POOL_HOLD", f"Your limit of {limit:,.0f} {cur} is held at {granted:,.0f} {cur} {why}; "
                                     "the increase follows when the pool covers it."))
    covered = min(held, granted)
    if pool["on_overflow"] == "uncovered" and not pending and covered < held:
        reasons.append(("POOL_UNCOVERED", f"The risk-sharing pool {pool['pool_id']} (capacity {cap:,.0f} {cur}) "
                                          f"is full: {covered:,.0f} of your limit of {held:,.0f} {cur} is "
                                          "covered, the rest is not."))
    block = {"pool_id": pool["pool_id"], "on_overflow": pool["on_overflow"],
             "covered_share": Decimal(str(pool["covered_share"])), "claimed": limit.quantize(unit),
             "covered": covered.quantize(unit), "pending": pending, "capacity": cap.quantize(unit)}
    return held, block, reasons


def lender_cover(block: dict[str, Any] | None, lenders: list[dict[str, Any]], limit: Decimal,
                 unit: Decimal) -> None:
    """Each lender's covered amount (its share of the covered exposure, the last lender
    the remainder, as the limit is split) and the share of its limit whose losses the
    pool bears; written into ``lenders`` in place."""
    if block is None:
        return
    remaining = block["covered"]
    for i, lender in enumerate(lenders):
        amount = remaining if i == len(lenders) - 1 else (block["covered"] * lender["share"]).quantize(unit, ROUND_DOWN)
        remaining -= amount
        lender["covered"] = amount
        lender["covered_share"] = ((block["covered_share"] * amount / lender["limit"]).quantize(SHARE)
                                   if lender["limit"] > 0 else ZERO.quantize(SHARE))


def say_cover(change: dict[str, str], last: list[Any] | None, block: dict[str, Any] | None) -> dict[str, str]:
    """The change reason (LIMIT_UP/DOWN/UNCHANGED) with the pool's cover when it moved
    since the last update: "pool cover 0 -> 600,000"."""
    before = Decimal(last[2]) if last else ZERO
    if block is None or block["covered"] == before:
        return change
    move = f"pool cover {before:,.0f} \u2192 {block['covered']:,.0f}"
    text = change["text"]
    text = text[:-2] + f"; {move})." if text.endswith(").") else text[:-1] + f" ({move})."
    return {**change, "text": text[:500]}


def _claim_key(pool: dict[str, Any], amount: Decimal) -> list[str]:
    """What a claim says: a new one is sent when any of it changes."""
    return [pool["pool_id"], str(amount), str(capacity(pool)), pool["on_overflow"]]


def claims(state: FacilityState, block: dict[str, Any] | None, at: float, triggers: list[str]) -> list[Output]:
    """The records to send to the pool stage after a decision: a claim when the claimed
    amount (or the pool's declaration) changed, and a claim of 0 on a pool the borrower
    left. Each carries the borrower's claim seq on that pool (``seqs``, kept for good, so
    a borrower that comes back is not taken for a repeat), so the pool drops a repeat."""
    pool = declared(state["program"])
    if pool is None and not (state.get("pool") or {}).get("id"):
        return []  # never in a pool, or left it: nothing to say (and no state for it)
    mine = state.setdefault("pool", {})
    seqs = mine.setdefault("seqs", {})

    def next_seq(pool_id: str) -> int:
        seqs[pool_id] = seqs.get(pool_id, 0) + 1
        return int(seqs[pool_id])

    outs: list[Output] = []
    if mine.get("id") and (pool is None or pool["pool_id"] != mine["id"]):
        outs.append(_claim(mine["id"], state, next_seq(mine["id"]), ZERO, None, False, at, triggers))
        for k in ("id", "claim", "seq", "granted", "answered"):
            mine.pop(k, None)
    if pool is None or block is None:
        return outs
    key = _claim_key(pool, block["claimed"])
    if mine.get("id") == pool["pool_id"] and mine.get("claim") == key:
        return outs
    if mine.get("id") != pool["pool_id"] and not block["claimed"]:
        return outs  # a limit of 0 on a pool it has no claim on: nothing to ask
    if mine.get("id") != pool["pool_id"]:
        mine.update(id=pool["pool_id"], granted="0", answered=0)
    mine.update(seq=next_seq(pool["pool_id"]), claim=key)
    outs.append(_claim(pool["pool_id"], state, mine["seq"], block["claimed"], str(capacity(pool)),
                       pool["on_overflow"] == "hold", at, triggers))
    return outs


def _claim(pool_id: str, state: FacilityState, seq: int, amount: Decimal, cap: str | None, hold: bool,
           at: float, triggers: list[str]) -> Output:
    return Output(POOLS_TOPIC, pool_id, {
        "kind": "claim", "pool_id": pool_id, "borrower_id": state["borrower_id"],
        "program_id": state["program_id"], "seq": seq, "amount": str(amount), "capacity": cap,
        "hold": hold, "at": at, "triggers": triggers[-10:]})


def on_answer(state: FacilityState, sig: PoolSignal) -> None:
    """Fold the pool's answer into the borrower's state (stage 2)."""
    mine = state.get("pool") or {}
    if mine.get("id") != sig["asset_id"]:
        return  # an answer from a pool the borrower has left since
    mine.update(granted=sig["granted"], answered=max(mine.get("answered", 0), sig["answered"]))
    state["pool"] = mine


# ------------------------------------------------------------------ pool's side
def new_pool(pool_id: str) -> dict[str, Any]:
    return {"pool_id": pool_id, "programs": {}, "claims": {}, "granted": {}, "told": {}}


def reshape(layers: list[list[Any]], amount: Decimal, at: float) -> list[list[Any]]:
    """A borrower's layers after a claim of ``amount``: an increase adds a layer stamped
    ``at``; a decrease trims the newest layers first (the oldest cover is kept)."""
    total = sum((Decimal(a) for _, a in layers), ZERO)
    if amount > total:
        return [*layers, [at, str(amount - total)]]
    out: list[list[Any]] = []
    left = amount
    for t, a in layers:
        if left <= 0:
            break
        take = min(Decimal(a), left)
        out.append([t, str(take)])
        left -= take
    return out


def pool_capacity(pool: dict[str, Any]) -> Decimal:
    """The smallest capacity any program of the pool declared (the conservative one)."""
    caps = [Decimal(c) for c in pool["programs"].values()]
    return min(caps) if caps else ZERO


def allocate(pool: dict[str, Any]) -> dict[str, Decimal]:
    """Covered exposure per borrower: capacity given out layer by layer in event-time
    order (ties by borrower id, then layer). An ``uncovered`` borrower's layer takes what
    is left; a ``hold`` borrower's layer is covered whole or not at all, and once one is
    not, its later layers wait too (its increases are held in order)."""
    free = pool_capacity(pool)
    granted = {b: ZERO for b in pool["claims"]}
    blocked: set[str] = set()
    layers = sorted((t, b, i, Decimal(a)) for b, c in pool["claims"].items() for i, (t, a) in enumerate(c["layers"]))
    for _, b, _, amount in layers:
        if pool["claims"][b]["hold"]:
            if b in blocked or amount > free:
                blocked.add(b)
                continue
            take = amount
        else:
            take = min(amount, free)
        granted[b] += take
        free -= take
    return granted


def on_claim(pool: dict[str, Any], claim: dict[str, Any]) -> list[Output]:
    """Apply one borrower's claim; answer every borrower whose covered amount changed,
    and the claimant always (its claim seq is answered). A claim whose seq is not newer
    than the borrower's last is a repeat: nothing changes, nothing is sent.

    Everything is computed before the state changes (a claim that fails leaves the pool
    as it was), so the pool stage needs no copy of the state, which holds every
    borrower of the pool, per claim."""
    b = claim["borrower_id"]
    cur = pool["claims"].get(b)
    if cur is not None and claim["seq"] <= cur["seq"]:
        return []
    programs = dict(pool["programs"])
    if claim["capacity"] is not None:  # None: a borrower leaving the pool declares nothing
        programs[claim["program_id"]] = str(Decimal(claim["capacity"]))
    layers = reshape(cur["layers"] if cur else [], Decimal(claim["amount"]), float(claim["at"]))
    claims = {**pool["claims"], b: {"seq": int(claim["seq"]), "layers": layers, "hold": bool(claim["hold"])}}
    after = allocate({"programs": programs, "claims": claims})
    cap = pool_capacity({"programs": programs})
    total = sum(after.values(), ZERO)
    before = pool["granted"]
    changed = [o for o in sorted(after) if o == b or Decimal(before.get(o, "0")) != after[o]]
    told = {o: pool["told"].get(o, 0) + 1 for o in changed}
    outs = [signal("pool", o, pool["pool_id"], told[o], claim["at"], claim["triggers"],
                   granted=str(after[o]), answered=claims[o]["seq"], capacity=str(cap), pool_covered=str(total))
            for o in changed]
    pool.update(programs=programs, claims=claims, granted={k: str(v) for k, v in after.items() if v > 0},
                told={**pool["told"], **told})
    return outs


def utilisation(pool: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(covered, capacity) of a pool state: what operators see (the worker's metrics)."""
    return sum((Decimal(v) for v in pool["granted"].values()), ZERO), pool_capacity(pool)

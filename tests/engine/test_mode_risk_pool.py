"""Government risk-sharing pools and the interest subsidy's cap (issue 17.2): a program
declares its pool; every limit update carries, per lender, the covered amount and share;
the pool's capacity (fund x leverage) binds across all its programs' borrowers, through
a pool-keyed stage (streams/domain/risk_pool.py). The pool rule alone, then the replay,
then a worker on the real broker with the lender API reading the pool's utilisation."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.ledger.service import Ledger
from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.factory import EventFactory
from streams.domain import pricing, risk_pool
from streams.replay import Replay
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, u
from tests.engine.test_scenarios import codes, last_for, run


# ---------------------------------------------------------------- the pool rule, pure
def claim(b: str, seq: int, amount: str, at: float, hold: bool = False, cap: str | None = "1000",
          program: str = "p1") -> dict:
    return {"kind": "claim", "pool_id": "pool", "borrower_id": b, "program_id": program, "seq": seq,
            "amount": amount, "capacity": cap, "hold": hold, "at": at, "triggers": [f"{b}-{seq}"]}


def granted(pool: dict) -> dict[str, str]:
    return {b: str(v) for b, v in risk_pool.allocate(pool).items() if v}


def test_capacity_is_given_in_event_time_order_and_the_overflow_is_uncovered() -> None:
    pool = risk_pool.new_pool("pool")
    risk_pool.on_claim(pool, claim("a", 1, "400", 1.0))
    risk_pool.on_claim(pool, claim("b", 1, "400", 2.0))
    answers = risk_pool.on_claim(pool, claim("c", 1, "400", 3.0))
    assert granted(pool) == {"a": "400", "b": "400", "c": "200"}  # c: the 200 left, the rest uncovered
    assert [(o.key, o.value["granted"], o.value["pool_covered"], o.value["capacity"]) for o in answers] == [
        ("c", "200", "1000", "1000")]


def test_a_held_increase_is_covered_whole_or_waits_and_later_ones_wait_behind_it() -> None:
    pool = risk_pool.new_pool("pool")
    risk_pool.on_claim(pool, claim("a", 1, "700", 1.0))
    risk_pool.on_claim(pool, claim("h", 1, "400", 2.0, hold=True))   # 300 free: held
    risk_pool.on_claim(pool, claim("h", 2, "450", 3.0, hold=True))   # its next 50 waits behind the 400
    risk_pool.on_claim(pool, claim("d", 1, "100", 4.0, hold=True))   # another's 100 fits
    assert granted(pool) == {"a": "700", "d": "100"}
    # a falls to 200: h's layers (400 at t2, 50 at t3) now fit and are covered.
    answers = risk_pool.on_claim(pool, claim("a", 2, "200", 5.0))
    assert granted(pool) == {"a": "200", "h": "450", "d": "100"}
    assert {o.key: o.value["granted"] for o in answers} == {"a": "200", "h": "450"}


def test_a_decrease_trims_the_newest_layer_first() -> None:
    assert risk_pool.reshape([[1.0, "100"], [5.0, "50"]], Decimal("120"), 9.0) == [[1.0, "100"], [5.0, "20"]]
    assert risk_pool.reshape([[1.0, "100"]], Decimal("130"), 9.0) == [[1.0, "100"], [9.0, "30"]]
    assert risk_pool.reshape([[1.0, "100"]], Decimal("0"), 9.0) == []


def test_the_allocation_does_not_depend_on_the_order_claims_arrive() -> None:
    """Claims of different borrowers reach the pool in any interleaving (they come from
    different stage-2 partitions); each borrower's own claims stay in order."""
    per_borrower = {
        "a": [claim("a", 1, "500", 1.0), claim("a", 2, "300", 6.0)],
        "b": [claim("b", 1, "400", 2.0), claim("b", 2, "600", 4.0)],
        "h": [claim("h", 1, "300", 3.0, hold=True)],
        "c": [claim("c", 1, "250", 5.0, cap="900", program="p2")],
    }
    results = set()
    for order in itertools.permutations(per_borrower):
        for rounds in (1, 2):  # whole borrowers one after another, or round-robin
            pool = risk_pool.new_pool("pool")
            queues = [list(per_borrower[b]) for b in order]
            while any(queues):
                for q in queues:
                    for _ in range(rounds if rounds == 1 else len(q)):
                        if q:
                            risk_pool.on_claim(pool, q.pop(0))
            results.add(tuple(sorted(granted(pool).items())))
    # Capacity 900 (the smaller declaration). In event-time order: a's 300 at t1 (its 500
    # trimmed at t6), b's 400 at t2 (200 left), h's 300 at t3 held (it does not fit whole),
    # b's 200 at t4 (0 left), c's 250 at t5 uncovered.
    assert results == {(("a", "300"), ("b", "600"))}


def test_a_repeated_claim_changes_nothing_and_says_nothing() -> None:
    pool = risk_pool.new_pool("pool")
    risk_pool.on_claim(pool, claim("a", 1, "400", 1.0))
    before = orjson.dumps(pool)
    assert risk_pool.on_claim(pool, claim("a", 1, "400", 1.0)) == []
    assert risk_pool.on_claim(pool, claim("a", 1, "900", 1.0)) == []  # same seq: a redelivery
    assert orjson.dumps(pool) == before


def test_the_subsidy_pays_at_most_cny_500k_a_year_per_borrower() -> None:
    table = {"A": Decimal("18.00"), "B": Decimal("18"), "C": Decimal("18"), "D": Decimal("18"), "E": Decimal("18")}
    rcv = [{"kind": "receivable", "contribution": Decimal("10000000"), "detail": {"buyer_factor": "1"}}]
    # 30% of 18% on 10,000,000 = 540,000 a year > 500,000: the subsidy pays 5.00 points, not 5.40.
    block, reasons = pricing.price({}, rcv, Decimal("10000000"), table, Decimal("10"), Decimal("0.30"),
                                   Decimal("10000000"))
    assert (block["apr_pct"], block["net_apr_pct"], block["subsidy_capped"]) == ("18.00", "13.00", True)
    assert [c for c, _ in reasons] == ["SUBSIDY_CAPPED"]
    # 5,000,000: 270,000 a year, under the cap: 30% off.
    block, reasons = pricing.price({}, rcv, Decimal("10000000"), table, Decimal("10"), Decimal("0.30"),
                                   Decimal("5000000"))
    assert (block["net_apr_pct"], "subsidy_capped" in block, reasons) == ("12.60", False, [])


# ---------------------------------------------------------------- through the replay
def pooled(uid: str, fund: str = "100000") -> tuple[list, dict[str, str]]:
    """Pool ``pool-<uid>``: fund 100,000 x 10 = capacity 1,000,000, shared by an
    'uncovered' program (suppliers a, b, e) and a 'hold' program (supplier c). Each has a
    confirmed 500,000 invoice (limit 400,000), an hour apart: a, b, e, c. Then a's and
    b's invoices are cancelled, which frees the pool for e and c."""
    f = EventFactory(f"rp-{uid}", sc.WEEK0)
    pool_id = f"pool-{uid}"
    lenders = ((f"pa-{uid}", "0.6"), (f"pb-{uid}", "0.4"))
    up, hp = f"prg-u-{uid}", f"prg-h-{uid}"
    evs = [f.program(up, lenders=lenders, risk_pool=f.risk_pool(pool_id, fund, on_overflow="uncovered")),
           f.program(hp, lenders=lenders, risk_pool=f.risk_pool(pool_id, fund, on_overflow="hold"))]
    who = {k: f"s{k}-{uid}" for k in "abec"}
    later, refs = [], {}
    for k in "abec":
        s = who[k]
        evs += [f.borrower(s, hp if k == "c" else up), f.consent(s), f.supplies(s, f"core-{uid}")]
    for k in "abec":
        f.advance(hours=1)
        s = who[k]
        refs[k] = f.invoice_ref(sc.TAX_S, f"{k}{uid}", "500000")
        later += [f.invoice_issued(refs[k], s, f"core-{uid}"),
                  f.invoice_action("confirmed", refs[k], s, f"core-{uid}")]
    for k in "ab":
        f.advance(hours=1)
        later.append(f.invoice_action("cancelled", refs[k], who[k], f"core-{uid}"))
    return evs + later, who


def text(update: dict, code: str) -> str:
    return next(r["text"] for r in update["reasons"] if r["code"] == code)


def test_a_full_pool_leaves_an_increase_uncovered_or_holds_it_until_it_has_room() -> None:
    events, who = pooled("r1")
    limits, _, dead = run(events)
    assert dead == []
    mine = {k: [x["payload"] for x in limits if x["payload"]["borrower_id"] == b] for k, b in who.items()}
    # e (uncovered program) came third: 200,000 of its 400,000 covered, with the reason.
    e_full = next(x for x in mine["e"] if "POOL_UNCOVERED" in codes(x))
    assert (e_full["limit"]["amount"], e_full["risk_pool"]["covered"]["amount"]) == ("400000.00", "200000.00")
    assert "(capacity 1,000,000 CNY) is full: 200,000 of your limit of 400,000" in text(e_full, "POOL_UNCOVERED")
    # Per lender: its share of the covered exposure, and the share of its limit the pool bears.
    assert [(x["lender_id"], x["limit"]["amount"], x["covered"]["amount"], x["covered_share"])
            for x in e_full["lenders"]] == [("pa-r1", "240000.00", "120000.00", "0.3000"),
                                            ("pb-r1", "160000.00", "80000.00", "0.3000")]
    # c (hold program) came last, with the pool full: its limit is held at 0.
    c_held = [x for x in mine["c"] if "POOL_HOLD" in codes(x) and not x["risk_pool"]["pending"]]
    assert c_held and c_held[0]["limit"]["amount"] == "0.00"
    assert c_held[0]["risk_pool"]["claimed"]["amount"] == "400000.00"
    assert "held at 0 CNY because the risk-sharing pool pool-r1 (capacity 1,000,000 CNY) is full" in text(
        c_held[0], "POOL_HOLD")
    # a's and b's invoices cancelled: e is covered whole, and c's 400,000 is released.
    final = {k: last_for(limits, b) for k, b in who.items()}
    assert final["e"]["risk_pool"]["covered"]["amount"] == "400000.00" and "POOL_UNCOVERED" not in codes(final["e"])
    assert final["c"]["limit"]["amount"] == "400000.00" and "POOL_HOLD" not in codes(final["c"])
    assert final["c"]["risk_pool"]["covered"]["amount"] == "400000.00"
    assert "pool cover 0 → 400,000" in text(final["c"], "LIMIT_UP")
    assert [final[k]["limit"]["amount"] for k in "ab"] == ["0.00", "0.00"]


def test_the_replay_gives_the_same_bytes_twice() -> None:
    events, _ = pooled("r2")
    assert run(events) == run(events)


def test_a_program_without_a_pool_carries_no_pool_block() -> None:
    events, s = sc.receivables("rp3")
    limits, _, _ = run(events)
    final = last_for(limits, "sup-rp3")
    assert "risk_pool" not in final and all("covered" not in x for x in final["lenders"])


# ---------------------------------------------------------------- through a real worker
async def _site(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.mark.integration
async def test_risk_pool_through_the_broker_and_the_lender_api(producer, outputs: Outputs, mine, engine,
                                                              bootstrap: str, pg_url: str) -> None:
    uid = u()
    events, who = pooled(uid)
    r = Replay()
    want = {}
    for e in events:
        for out in r.feed(codec.encode(e)):
            if out.topic == "cs.limits":
                want[out.key] = out.value["payload"]
    registry = [e for e in events if e.type.startswith("registry.")]
    await produce_events(producer, registry)
    await outputs.wait(lambda rs: all(mine(rs, b) for b in who.values()), timeout=120)
    # The invoices first: the pool fills, e is covered in part and c held (what the
    # replay shows at that point); then the cancellations that free it.
    cancels = [e for e in events if e.type == "invoice.cancelled"]
    await produce_events(producer, [e for e in events if e not in registry and e not in cancels])
    await outputs.wait(lambda rs: any("POOL_UNCOVERED" in codes(x) for x in mine(rs, who["e"])) and any(
        "POOL_HOLD" in codes(x) and not x["risk_pool"]["pending"] for x in mine(rs, who["c"])), timeout=240)
    await produce_events(producer, cancels)

    def settled(rs: list) -> bool:
        return all(mine(rs, b) and {k: mine(rs, b)[-1][k] for k in ("limit", "risk_pool")}
                   == {k: want[b][k] for k in ("limit", "risk_pool")} for b in who.values())
    try:
        await outputs.wait(settled, timeout=240)
    except AssertionError:  # say which borrower differs from the replay, and how
        diff = {b: ((mine(outputs.records, b) or [{}])[-1].get("risk_pool"), want[b]["risk_pool"])
                for b in who.values()}
        raise AssertionError(f"final limits differ from the replay: {diff}") from None
    for b in who.values():
        final = mine(outputs.records, b)[-1]
        assert (final["limit"], final["lenders"], final["risk_pool"]) == (
            want[b]["limit"], want[b]["lenders"], want[b]["risk_pool"])

    # Operators: the worker's metrics hold the pool's covered exposure and capacity.
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{engine.web_port}/metrics") as resp:
        exposition = await resp.text()
    assert f'creditstream_pool_covered{{pool="pool-{uid}"}} 800000.0' in exposition
    assert f'creditstream_pool_capacity{{pool="pool-{uid}"}} 1e+06' in exposition

    # The lender API: the pool's utilisation from the stored current limits.
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    stop = asyncio.Event()
    ledger = Ledger(bootstrap, pg_url, group=f"test-risk-pool-ledger-{uid}")
    task = asyncio.create_task(ledger.run(stop))
    runner, port = await _site(make_app(pool, poll_s=0.2))
    try:
        key, _ = await repo.add_lender(pool, f"pa-{uid}", "Bank A")
        other, _ = await repo.add_lender(pool, f"px-{uid}", "Bank X")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async def get(path: str, api_key: str) -> tuple[int, dict]:
                async with http.get(f"http://127.0.0.1:{port}{path}",
                                    headers={"Authorization": f"Bearer {api_key}"}) as resp:
                    return resp.status, await resp.json()
            body: dict = {}
            for _ in range(240):  # the ledger stores what the engine published
                status, body = await get(f"/v1/risk-pools/pool-{uid}", key)
                if status == 200 and body["borrowers"] == 4 and body["covered"]["amount"] == "800000.00":
                    break
                await asyncio.sleep(0.5)
            # e and c covered 400,000 each; a and b at 0 (cancelled invoices).
            assert body["capacity"] == {"amount": "1000000.00", "currency": "CNY"}
            assert (body["covered"]["amount"], body["utilisation"], body["held"], body["uncovered"]) == (
                "800000.00", "0.8000", 0, 0)
            assert body["your_covered"] == {"amount": "480000.00", "currency": "CNY"}  # 60% of 800,000
            # A lender with no borrower in the pool learns nothing about it.
            status, err = await get(f"/v1/risk-pools/pool-{uid}", other)
            assert status == 404 and err["error"] == "not_found"
            status, err = await get("/v1/risk-pools/bad%20id", key)
            assert status == 400
    finally:
        stop.set()
        await task
        await runner.cleanup()
        await pool.close()


def test_a_program_that_leaves_its_pool_frees_its_borrowers_cover() -> None:
    """A program registered again without its pool: its borrowers claim 0 on the pool
    (their cover is freed for the others) and their updates carry no pool block."""
    f = EventFactory("rp-leave", sc.WEEK0)
    small = f.risk_pool("pool-leave", "50000", on_overflow="hold")  # capacity 500,000
    evs = [f.program("prg-l1", risk_pool=small), f.program("prg-l2", risk_pool=small)]
    for s, prg in (("sl1", "prg-l1"), ("sl2", "prg-l2")):
        f.advance(hours=1)
        ref = f.invoice_ref(sc.TAX_S, f"{s}X", "500000")
        evs += [f.borrower(s, prg), f.consent(s), f.supplies(s, "core-l"),
                f.invoice_issued(ref, s, "core-l"), f.invoice_action("confirmed", ref, s, "core-l")]
    limits, _, dead = run(evs)
    assert dead == []
    assert last_for(limits, "sl2")["limit"]["amount"] == "0.00" and "POOL_HOLD" in codes(last_for(limits, "sl2"))
    f.advance(hours=1)
    limits, _, _ = run([*evs, f.program("prg-l1")])  # prg-l1 without its pool
    assert "risk_pool" not in last_for(limits, "sl1") and last_for(limits, "sl1")["limit"]["amount"] == "400000.00"
    sl2 = last_for(limits, "sl2")
    assert (sl2["limit"]["amount"], sl2["risk_pool"]["covered"]["amount"]) == ("400000.00", "400000.00")


def test_a_claim_that_fails_leaves_the_pool_as_it_was_and_is_dead_lettered() -> None:
    from streams.processors import PoolProcessor

    proc, store = PoolProcessor(), {}
    proc.process(store, "cs.pools", b"pool", orjson.dumps(claim("a", 1, "400", 1.0)))
    before = orjson.dumps(store)
    outs = proc.process(store, "cs.pools", b"pool", orjson.dumps(claim("b", 1, "four hundred", 2.0)), 0, 7)
    assert [(o.topic, o.value["payload"]["reason"], o.value["payload"]["offset"]) for o in outs] == [
        ("cs.deadletter", "internal_error", 7)]
    assert orjson.dumps(store) == before


def test_a_large_subsidised_limit_says_the_subsidy_cap() -> None:
    """Through the replay: a 10,000,000 limit (the inclusive cap) at 18% (the LPR at
    4.50%, so the ceiling is 18%) with a 30% subsidy would be subsidised 540,000 a year:
    capped at 500,000, net 13.00%."""
    f = EventFactory("rp-sub", sc.WEEK0)
    flat = {g: "18.00" for g in "ABCDE"}
    ref = f.invoice_ref(sc.TAX_S, "SUB1", "13000000")
    limits, _, dead = run([f.reference_rate("4.50"),
                           f.program("prg-sub", cap="20000000", pricing_table=flat, interest_subsidy_share="0.30"),
                           f.borrower("s-sub", "prg-sub"), f.consent("s-sub"), f.supplies("s-sub", "core-sub"),
                           f.invoice_issued(ref, "s-sub", "core-sub"),
                           f.invoice_action("confirmed", ref, "s-sub", "core-sub")])
    assert dead == []
    final = last_for(limits, "s-sub")
    p = final["pricing"]
    assert (final["limit"]["amount"], p["apr_pct"], p["net_apr_pct"], p["subsidy_capped"]) == (
        "10000000.00", "18.00", "13.00", True)
    assert "would exceed CNY 500,000 a year; it pays 5.00 points" in text(final, "SUBSIDY_CAPPED")


@pytest.mark.integration
async def test_a_worker_killed_while_the_pool_fills_ends_as_the_replay(producer, bootstrap: str, settings) -> None:
    """At least once across the pool stage: SIGKILL while claims and answers are in
    flight, restart; claims re-read are dropped by their seq, answers by theirs, and
    the final limits and covers are the replay's; a version seen twice is the same."""
    from connectors.kafka_io import TopicReader
    from tests.engine.conftest import WorkerProcess
    from tests.engine.test_broker import OUT, limits_of

    uid = u()
    app_id = f"cs-engine-pool-kill-{uid}"
    worker = WorkerProcess(app_id, settings.state_dir / "test-workers" / app_id)
    worker.start()
    events, who = pooled(uid)
    r = Replay()
    want = {}
    for e in events:
        for out in r.feed(codec.encode(e)):
            if out.topic == "cs.limits":
                want[out.key] = out.value["payload"]
    registry = [e for e in events if e.type.startswith("registry.")]
    cancels = [e for e in events if e.type == "invoice.cancelled"]
    try:
        async with TopicReader(bootstrap, *OUT) as reader:
            out = Outputs(reader)
            await produce_events(producer, registry)
            await out.wait(lambda rs: all(limits_of(rs, b, app_id) for b in who.values()), timeout=120)
            await produce_events(producer, [e for e in events if e not in registry and e not in cancels])
            # The pool has answered a's first claim: claims and answers are flowing.
            await out.wait(lambda rs: any((x.get("risk_pool") or {}).get("covered", {}).get("amount") == "400000.00"
                                          for x in limits_of(rs, who["a"], app_id)), timeout=120)
            worker.kill()
            worker.start()
            await produce_events(producer, cancels)

            def settled(rs: list) -> bool:
                return all(limits_of(rs, b, app_id) and {k: limits_of(rs, b, app_id)[-1][k] for k in
                           ("limit", "risk_pool", "lenders")} == {k: want[b][k] for k in ("limit", "risk_pool", "lenders")}
                           for b in who.values())
            await out.wait(settled, timeout=240)
    finally:
        worker.stop()
    for b in who.values():
        by_version: dict[int, dict] = {}
        for x in limits_of(out.records, b, app_id):
            assert by_version.setdefault(x["version"], x) == x


def test_a_borrower_outside_any_pool_keeps_no_pool_state() -> None:
    from streams.domain import facility

    state = facility.new_state("b")
    state["program"] = {"currency": "CNY"}
    assert risk_pool.claims(state, None, 1.0, []) == [] and "pool" not in state


def test_a_pool_named_in_two_currencies_is_refused() -> None:
    """The pool stage adds covered amounts without converting them: a second program
    naming the pool in another currency is dead-lettered (pool_currency_mismatch)."""
    from schemas import events as ev
    from schemas.common import Money

    f = EventFactory("rp-ccy", sc.WEEK0)
    usd = ev.ProgramPayload(program_id="prg-usd", name="USD program", currency="USD",
                            cap=Money(amount=Decimal("1000000"), currency="USD"),
                            lenders=[ev.LenderShare(lender_id="bank-a", share=Decimal(1))],
                            risk_pool=ev.RiskPool(pool_id="pool-ccy", fund=Money(amount=Decimal("10000"), currency="USD"),
                                                  leverage=Decimal(10), covered_share=Decimal("0.5"),
                                                  on_overflow="uncovered"))
    events = [f.program("prg-cny", risk_pool=f.risk_pool("pool-ccy", "100000")),
              f._e(ev.ProgramRegistered, usd)]
    _, _, dead = run(events)
    assert [d["payload"]["reason"] for d in dead] == ["pool_currency_mismatch"]
    assert "declares it in CNY" in dead[0]["payload"]["error"]

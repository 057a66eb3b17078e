"""What-if over history (issue 18, part 2): the diff's figures are those of a replay of
the same log under each version, and its report is one page that fetches nothing."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from creditstream.cli import main
from load.history import history
from load.world import WorldConfig
from schemas import codec
from streams import policylab, policyreport
from streams.domain import fleet
from streams.domain import policyfile as pf
from streams.domain.policy import POLICY_VERSION
from streams.errors import DiffError
from streams.replay import Replay
from tests.engine.test_mode_risk_pool import pooled

CFG = WorldConfig(seed=11, tag="Lpd", machines=30, contractors=4, cadence_s=6 * 3600)


@pytest.fixture(scope="module")
def log() -> list[bytes]:
    return list(history(CFG, days=20))


@pytest.fixture(scope="module")
def candidate() -> str:
    params = pf.shipped(POLICY_VERSION).parameters.model_copy(update={
        "advance_rate": Decimal("0.70"), "loan_to_value": Decimal("0.50"), "util_step": 0.30,
        "silent_after_hours": 30.0, "inclusive_cap_cny": Decimal("2000000")})
    return pf.use(pf.PolicyFile(version="2026.12-t2", based_on=POLICY_VERSION, parameters=params))


@pytest.fixture(scope="module")
def diffed(log: list[bytes], candidate: str) -> policylab.DualReplay:
    """The plain diff of the log, made once for the tests that only read it (0.5 s each)."""
    return policylab.diff(log, POLICY_VERSION, candidate)


def _replayed(log: list[bytes], version: str) -> dict[str, dict]:
    r = Replay(version)
    latest = {}
    for line in log:
        latest.update({o.key: o.value["payload"] for o in r.feed(line) if o.topic == "cs.limits"})
    return latest


def test_the_diff_s_figures_are_the_replays_of_the_same_log(log: list[bytes], candidate: str) -> None:
    seen = []
    dual = policylab.diff(log, POLICY_VERSION, candidate, progress=lambda d: seen.append(d.events), every=2000)
    assert seen[-1] == len(log) and len(seen) > 1  # progress was reported along the way
    report = policylab.report(dual, top=10_000)
    before, after = _replayed(log, POLICY_VERSION), _replayed(log, candidate)
    assert report["borrowers"] == len(before) == len(after)
    assert sum(report["distribution"].values()) == report["borrowers"]
    changed = {c["borrower_id"]: c for c in report["changes"]}
    assert report["borrowers_changed"] == len(changed) > 0
    for bid in before:
        x, y = before[bid], after[bid]
        codes = lambda p: {r["code"] for r in p["reasons"]} - {"LIMIT_UP", "LIMIT_DOWN", "LIMIT_UNCHANGED"}  # noqa: E731
        moved = x["limit"] != y["limit"] or x["status"] != y["status"] or codes(x) != codes(y)
        assert (bid in changed) == moved, bid
        if moved:
            c = changed[bid]
            assert (c["before"], c["after"]) == (x["limit"]["amount"], y["limit"]["amount"])
            assert set(c["codes_appeared"]) == codes(y) - codes(x)
            assert set(c["codes_disappeared"]) == codes(x) - codes(y)
        assert y["policy_version"] == candidate and x["policy_version"] == POLICY_VERSION
    total = {v: sum(Decimal(p["limit"]["amount"]) for p in s.values()) for v, s in (("b", before), ("a", after))}
    assert report["total_limit"]["before"] == str(total["b"]) and report["total_limit"]["after"] == str(total["a"])
    for side, replayed in (("before", before), ("after", after)):
        lenders: dict[str, Decimal] = defaultdict(Decimal)
        programs: dict[str, Decimal] = defaultdict(Decimal)
        for p in replayed.values():
            programs[f"{p['program_id']} {p['limit']['currency']}"] += Decimal(p["limit"]["amount"])
            for a in p["lenders"]:
                lenders[f"{a['lender_id']} {a['limit']['currency']}"] += Decimal(a["limit"]["amount"])
        assert {k: Decimal(v[side]) for k, v in report["exposure"]["lender"].items()} == lenders
        assert {k: Decimal(v[side]) for k, v in report["exposure"]["program"].items()} == programs
    # The day-by-day totals end at the final totals.
    for version, side in ((POLICY_VERSION, "before"), (candidate, "after")):
        days = report["daily_total"][version]["CNY"]
        assert days[max(days)] == report["total_limit"][side]
    # A lower inclusive cap: the borrowers above it now cross it.
    crossed = {c["borrower_id"] for c in report["crossings"] if "INCLUSIVE_CAP reached" in c["crossed"]}
    assert crossed == {b for b in before if "INCLUSIVE_CAP" in {r["code"] for r in after[b]["reasons"]}
                       and "INCLUSIVE_CAP" not in {r["code"] for r in before[b]["reasons"]}}
    assert crossed


def test_the_report_restricted_to_borrowers_and_its_page(diffed: policylab.DualReplay) -> None:
    dual = diffed
    some = sorted(dual.sides[0].latest)[:3]
    report = policylab.report(dual, set(some))
    assert report["borrowers"] == 3 and {c["borrower_id"] for c in report["changes"]} <= set(some)
    page = policyreport.html(report)  # distribution, daily totals (CNY), lenders, programs
    assert page.count("<svg") == 4 and "<script" not in page and "<link" not in page
    assert "src=" not in page and "url(" not in page and "@import" not in page


def test_the_diff_in_several_processes_is_the_diff_in_one(log: list[bytes], candidate: str,
                                                          diffed: policylab.DualReplay) -> None:
    """One process runs stage 1 and hands each borrower's inputs to the process deciding
    it: the same figures, day-by-day totals and widest gaps included."""
    one = policylab.report(diffed, top=10_000)
    seen = []
    three = policylab.diff(lambda: log, POLICY_VERSION, candidate, jobs=3, progress=lambda d: seen.append(d.events),
                           every=2000)
    assert policylab.report(three, top=10_000) == one
    assert seen[-1] == len(log) and len(seen) > 1 and len(three.borrowers) == one["borrowers"]


def test_the_fast_path_gives_the_figures_of_the_validated_events(log: list[bytes], candidate: str,
                                                                 diffed: policylab.DualReplay) -> None:
    """The diff takes each update's figures from the decision (``_summarise``) instead of
    building the limit.updated event: the report, to the last digit and timestamp, is the
    one read from the validated events the engine publishes."""
    validated = policylab.diff(log, POLICY_VERSION, candidate, validated=True)
    fast = diffed
    assert policylab.report(fast, top=10_000) == policylab.report(validated, top=10_000)
    for a, b in zip(fast.sides, validated.sides, strict=True):
        assert a.latest == b.latest and a.updates == b.updates > 0
        # Same exponents too (Decimal equality would not see 5.0 against 5.00).
        assert {k: {f: str(v) for f, v in s.items()} for k, s in a.latest.items()} == {
            k: {f: str(v) for f, v in s.items()} for k, s in b.latest.items()}


def _widest_in_step(log: list[bytes], candidate: str) -> dict[str, Decimal]:
    """Per borrower, the widest gap between two replays' limits after the same input."""
    replays: tuple[tuple[Replay, dict[str, dict]], ...] = ((Replay(POLICY_VERSION), {}), (Replay(candidate), {}))
    widest: dict[str, Decimal] = {}
    for line in log:
        touched = set()
        for r, latest in replays:
            for o in r.feed(line):
                if o.topic == "cs.limits":
                    latest[o.key] = o.value["payload"]
                    touched.add(o.key)
        (_, la), (_, lb) = replays
        for bid in touched & set(la) & set(lb):
            a, b = la[bid], lb[bid]
            if a["limit"] != b["limit"] or a["status"] != b["status"]:
                gap = Decimal(b["limit"]["amount"]) - Decimal(a["limit"]["amount"])
                if bid not in widest or abs(gap) > abs(widest[bid]):
                    widest[bid] = gap
    return widest


def test_the_widest_gaps_are_those_of_two_replays_in_step(log: list[bytes], candidate: str,
                                                          diffed: policylab.DualReplay) -> None:
    """A borrower whose limits differed at some point is listed, with the widest gap,
    even when the two versions agree again by the end."""
    report = policylab.report(diffed, top=10_000)
    widest = _widest_in_step(log, candidate)
    assert {w["borrower_id"]: Decimal(w["gap"]) for w in report["widest_gaps"]} == widest
    assert report["borrowers_diverged_at_some_point"] == len(widest) >= report["borrowers_changed"]
    assert {w["borrower_id"] for w in report["widest_gaps"] if w["at_end"]} == {
        c["borrower_id"] for c in report["changes"]} & set(widest)


def test_a_pooled_history_is_diffed_in_one_process_with_each_version_s_own_pool(candidate: str) -> None:
    """A risk-sharing pool answers borrowers of every share of a parallel diff: the diff
    of a log whose programs name a pool runs in one process, the pool stage once per
    version (the candidate's lower advance rate claims less of the pool), and gives the
    replays' figures; a log read only once cannot be checked first and fails loudly."""
    events, who = pooled("pd")
    log = [codec.encode(e) for e in events]
    assert policylab.joins_borrowers(log) and not policylab.joins_borrowers(
        list(history(WorldConfig(seed=3, tag="Lpj", machines=4, contractors=1), days=1)))
    dual = policylab.diff(lambda: log, POLICY_VERSION, candidate, jobs=2)
    report = policylab.report(dual, top=10_000)
    assert report == policylab.report(policylab.diff(log, POLICY_VERSION, candidate), top=10_000)
    before, after = _replayed(log, POLICY_VERSION), _replayed(log, candidate)
    assert {c["borrower_id"]: (c["before"], c["after"]) for c in report["changes"]} == {
        b: (before[b]["limit"]["amount"], after[b]["limit"]["amount"]) for b in before
        if before[b]["limit"] != after[b]["limit"]}
    assert report["borrowers_changed"] >= 2  # e and c: each version's pool covers its own claims
    assert {w["borrower_id"]: Decimal(w["gap"]) for w in report["widest_gaps"]} == _widest_in_step(log, candidate)
    with pytest.raises(DiffError, match="--jobs 1"):
        policylab.diff(iter(log), POLICY_VERSION, candidate, jobs=2)


def test_the_diff_keeps_every_fleet_s_valuation(log: list[bytes], candidate: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A diff holds every borrower's state of both versions, so it keeps every fleet's
    valuation too: bounded like the engine's cache (here 10 machines for a 30-machine
    world), fleets were dropped and valued from scratch again and again."""
    monkeypatch.setattr(fleet, "MAX_CACHED_MACHINES", 10)
    built = []
    init = fleet.Fleet.__init__

    def counted(self: fleet.Fleet, *a: Any) -> None:
        built.append(1)
        init(self, *a)

    monkeypatch.setattr(fleet.Fleet, "__init__", counted)
    report = policylab.report(policylab.diff(log, POLICY_VERSION, candidate))
    assert 0 < len(built) <= 2 * report["borrowers"]  # once per borrower and version


def test_a_kept_stage_1_gives_every_candidate_the_figures_of_a_full_diff(
        log: list[bytes], candidate: str, diffed: policylab.DualReplay, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 1 does not depend on the policy: kept from a first diff of a log, it serves
    the next diffs of the same log (any candidate, any --jobs) without running again, with
    the figures of a full diff; a changed log makes it stale, and it is run and kept again."""
    path = tmp_path / "h.ndjson"
    path.write_bytes(b"\n".join(log) + b"\n")

    def lines() -> list[bytes]:
        return path.read_bytes().splitlines()

    kept = str(tmp_path / "stage1.bin")
    first = policylab.report(policylab.diff(lines, POLICY_VERSION, candidate, stage1=(
        kept, policylab.stage1_key(str(path)))), top=10_000)
    assert first == policylab.report(diffed, top=10_000)
    other = "2027.01-1"  # another candidate, from the kept stage 1 only
    full = policylab.report(policylab.diff(lines, POLICY_VERSION, other), top=10_000)
    with monkeypatch.context() as m:
        m.setattr(policylab.DualReplay, "stage1_inputs", lambda *a: pytest.fail("stage 1 ran again"))
        for jobs in (1, 2):
            dual = policylab.diff(lines, POLICY_VERSION, other, jobs=jobs,
                                  stage1=(kept, policylab.stage1_key(str(path))))
            assert dual.kept and policylab.report(dual, top=10_000) == full
    # The log changed (here: cut to its first 600 lines, which keeps the rerun short):
    # the kept stage 1 is stale.
    path.write_bytes(b"\n".join(log[:600]) + b"\n")
    dual = policylab.diff(lines, POLICY_VERSION, other, stage1=(kept, policylab.stage1_key(str(path))))
    assert not dual.kept and dual.events == 600
    assert policylab.diff(lines, POLICY_VERSION, other, stage1=(kept, policylab.stage1_key(str(path)))).kept


def test_a_kept_stage_1_says_whether_a_pool_joins_borrowers(candidate: str, tmp_path: Path) -> None:
    """A kept stage 1 records whether the log registers a pooled program, so a diff from
    it runs in one process without reading the log again to find out."""
    events, _ = pooled("pk")
    log = [codec.encode(e) for e in events]
    path = tmp_path / "pooled.ndjson"
    path.write_bytes(b"\n".join(log) + b"\n")
    kept = (str(tmp_path / "pooled.bin"), policylab.stage1_key(str(path)))
    one = policylab.report(policylab.diff(log, POLICY_VERSION, candidate, stage1=kept), top=10_000)

    def unread() -> list[bytes]:
        raise AssertionError("the log was read again")

    dual = policylab.diff(unread, POLICY_VERSION, candidate, jobs=2, stage1=kept)
    assert dual.kept and policylab.report(dual, top=10_000) == one


def test_the_command_keeps_stage_1_and_diffs_from_it(log: list[bytes], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`policy diff --stage1 FILE`: the first run keeps stage 1, the second reads it (its
    progress says so) and writes the same report; without --log it is refused at once.
    (In process: what a subprocess would add is the CLI's imports, tested elsewhere.)"""
    path = tmp_path / "h.ndjson"
    path.write_bytes(b"\n".join(log) + b"\n")
    cli = ["policy", "diff", "--from", POLICY_VERSION, "--to", "2027.01-1", "--stage1", str(tmp_path / "s1.bin")]
    errs = []
    for out in ("a", "b"):
        assert main([*cli, "--log", str(path), "--out", str(tmp_path / out)]) == 0
        errs.append(capsys.readouterr().err)
    assert "kept stage 1" not in errs[0] and "kept stage 1" in errs[1]
    reports = [orjson.loads((tmp_path / out / "report.json").read_bytes()) for out in ("a", "b")]
    for r in reports:
        r.pop("elapsed_s")
    assert reports[0] == reports[1] and reports[0]["events"] == len(log)
    assert main([*cli, "--out", str(tmp_path / "c")]) == 2
    assert "--stage1 needs --log" in capsys.readouterr().err

"""The bad-input campaign, short: every decoder ends in its own error or a valid event.

`creditstream fuzz run --examples 2000` is the full campaign (docs/security.md); this runs
the same targets with fewer examples so the suite keeps the guarantee: 15 each in the unit
run, 40 in the ``slow`` twin that ``make test`` runs (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from load.fuzz import campaign
from load.fuzz.targets import Target, Verdict, all_targets

UNIT_EXAMPLES, EXAMPLES = 15, 40
NAMES = [t.name for t in all_targets()]


@pytest.mark.parametrize(("name", "examples"), [*((n, UNIT_EXAMPLES) for n in NAMES),
                                                *(pytest.param(n, EXAMPLES, marks=pytest.mark.slow) for n in NAMES)])
def test_decoder_only_accepts_or_refuses(name: str, examples: int) -> None:
    (target,) = [t for t in all_targets() if t.name == name]
    tally = campaign.run_target(target, examples, seed=20261122)
    print(f"fuzz {name}: {tally.tried} inputs tried, {tally.accepted} accepted, "
          f"{sum(tally.refused.values())} refused, {tally.failed} failures")
    assert tally.failed == 0, campaign.failures_report([tally])
    assert tally.examples == examples and tally.tried >= examples
    assert tally.tried == tally.accepted + sum(tally.refused.values())


def test_every_decoder_is_in_the_campaign() -> None:
    assert NAMES == ["codec.decode", "processors", "gbt32960.frame", "gbt32960.stream", "aemp", "epcis",
                     "invoices.ubl", "invoices.vat", "safexml"]


def test_a_decoder_that_raises_is_counted_as_failing_not_hidden() -> None:
    def check(n: int) -> list[Verdict]:
        if n % 2:
            raise KeyError(n)
        return [Verdict(False, "odd_reason")]

    tally = campaign.run_target(Target("broken", "", st.integers(0, 10**6), check), 30, seed=1)
    assert tally.tried == 30 and tally.failed + tally.refused["odd_reason"] == 30
    assert tally.failed > 0 and "KeyError" in campaign.failures_report([tally])
    table = campaign.table([tally])
    assert "broken" in table and "odd_reason" in table and table.splitlines()[-1].startswith("total")

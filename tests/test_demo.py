"""The README's main job: the demo tells its story and limits move with reasons."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from schemas.config import REPO_ROOT

pytestmark = pytest.mark.integration


def test_demo_shows_limits_moving_with_reasons() -> None:
    res = subprocess.run([sys.executable, "-m", "creditstream.cli", "demo", "--pause", "2"],
                         capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    produced = int(re.search(r"The story produced (\d+) limit updates", res.stdout).group(1))
    assert produced >= 15
    for expected in ("DUPLICATE_FINANCING", "BATTERY_ALARM_L3", "GEOFENCE_BREACH", "BUYER_DISTRESSED",
                     "INVENTORY_MARGIN_CALL", "Repay 160,000.00 CNY", "WAYBILL_NOT_CORROBORATED",
                     "corroborated waybills +8,000",
                     "EARLY_WARNING", "Early warning for gears-", "PRICE_CAPPED", "APR 6.00% (B)",
                     "POOL_UNCOVERED", "POOL_HOLD", "pool-covered 400,000", "pool cover 0 → 300,000",
                     "[partially_frozen]", "↑", "↓"):
        assert expected in res.stdout, expected

"""The load report (issue 14, item 7): plots at full width with round tick values, no
empty tables, and the workers' metrics summarised instead of 100 raw Prometheus rows."""

from __future__ import annotations

import re

from load import report


def _results(**extra: object) -> dict:
    return {
        "run": "Lr", "scenario": "steady", "rate": 1000, "duration_s": 10,
        "timeline": [{"t": float(t), "sent_per_s": 1000.0, "processed_per_s": 990.0 + t,
                      "p50_ms": 10.0, "p99_ms": 37.3 + t, "max_ms": 52.1, "lag": 17 * t}
                     for t in range(11)],
        "latency_ms": {"all": {"count": 800, "p50": 10.0, "p99": 40.0, "max": 50.0}},
        "deadletters": {"count": 0, "reasons": {}}, "alerts": {}, **extra}


def test_ticks_are_round() -> None:
    assert report.ticks(0, 1047) == [0, 200, 400, 600, 800, 1000, 1200]
    assert report.ticks(0, 37.3) == [0, 10, 20, 30, 40]
    assert report.ticks(0, 0.73) == [0, 0.2, 0.4, 0.6, 0.8]
    assert report.ticks(3, 10) == [2, 4, 6, 8, 10]


def test_plots_fill_the_width_and_their_axes_read_round_numbers() -> None:
    page = report.render_html(_results())
    svgs = re.findall(r"<svg [^>]*>", page)
    assert svgs and all('width="100%"' in s and "viewBox=" in s for s in svgs)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', page)   # y-axis labels
    assert labels and all(re.fullmatch(r"[0-9,]+(\.[0-9]*[0-9])?", x) for x in labels), labels
    assert all(float(x.replace(",", "")) * 4 == round(float(x.replace(",", "")) * 4) for x in labels)


def test_empty_tables_are_left_out() -> None:
    page = report.render_html(_results())
    assert "No dead letters." in page and "No alerts." in page
    assert "<th>reason</th>" not in page and "<th>code</th>" not in page


def test_worker_metrics_are_a_summary_not_a_dump() -> None:
    values = {f'creditstream_events_in_total{{topic="cs.t{i}"}}': 100.0 for i in range(3)}
    values |= {f'creditstream_consumer_lag{{partition="{p}",topic="cs.telemetry"}}': float(p) for p in range(24)}
    values |= {f'creditstream_table_keys{{table="t{i}"}}': 5.0 for i in range(40)}
    values |= {'creditstream_dead_letters_total{reason="unknown_borrower"}': 3.0,
               'creditstream_dead_letters_total{reason="invalid_event"}': 1.0,
               "creditstream_decisions_total": 250.0,
               'creditstream_e2e_latency_seconds_bucket{le="0.05",output="limit"}': 90.0,
               'creditstream_e2e_latency_seconds_bucket{le="0.25",output="limit"}': 100.0,
               'creditstream_e2e_latency_seconds_bucket{le="+Inf",output="limit"}': 100.0}
    page = report.render_html(_results(metrics={"values": values, "errors": {}}))
    section = page.split("What the workers report")[1]
    assert section.count("<tr>") <= 12                       # not one row per series
    assert "300 (30.0/s)" in section and "250 (25.0/s)" in section
    assert "276 / 23" in section                             # lag: all partitions / worst one
    assert "4: unknown_borrower 3, invalid_event 1" in section
    assert "p99 (histogram bucket, at most, ms)</td><td>250" in section
    assert "creditstream_table_keys" not in section

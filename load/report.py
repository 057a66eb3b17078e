"""The results of a load run as JSON and as a self-contained HTML page with SVG plots.

No plotting library: the charts are small hand-drawn SVG line charts, so the report opens
in any browser, offline, and the repository needs nothing extra.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
Point = tuple[float, float]


def nice_step(span: float, most: int = 6) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most ``most``
    intervals over ``span``: axes read 0, 250, 500, not 0, 262.5, 525."""
    if span <= 0:
        return 1.0
    raw = span / most
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]: from a multiple of the step at or below lo to
    the first multiple at or above hi."""
    step = nice_step(hi - lo, most)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _nice(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.3g}"


def line_chart(title: str, series: Mapping[str, Sequence[Point]], x_label: str, y_label: str,
               width: int = 1100, height: int = 300, x_ticks: Sequence[tuple[float, str]] | None = None) -> str:
    """An SVG line chart of named series of (x, y) points; empty series are skipped.

    The chart scales to the page's width (a viewBox, width 100%); both axes end on round
    tick values."""
    pad_l, pad_r, pad_t, pad_b = 70, 20, 30, 45
    pts = [p for s in series.values() for p in s]
    esc = html.escape
    if not pts:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 60" width="100%">'
                f'<text x="10" y="35">{esc(title)}: no data</text></svg>')
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    x1 = x1 if x1 > x0 else x0 + 1
    if x_ticks is None:
        xt = ticks(x0, x1)
        x0, x1 = xt[0], xt[-1]
        x_ticks = [(x, _nice(x)) for x in xt]
    y_ticks = ticks(0.0, max(p[1] for p in pts) or 1.0)
    y1 = y_ticks[-1]
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return pad_t + h - y / y1 * h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{pad_l}" y="18" font-size="13" font-weight="bold">{esc(title)}</text>',
           f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for y in y_ticks:
        out.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{pad_l - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_nice(y)}</text>')
    for x, label in x_ticks:
        out.append(f'<text x="{sx(x):.1f}" y="{pad_t + h + 15}" text-anchor="middle">{esc(label)}</text>')
    out.append(f'<text x="{pad_l + w / 2}" y="{height - 8}" text-anchor="middle">{esc(x_label)}</text>')
    out.append(f'<text x="14" y="{pad_t + h / 2}" transform="rotate(-90 14 {pad_t + h / 2})" '
               f'text-anchor="middle">{esc(y_label)}</text>')
    legend_x = pad_l + 10
    for i, (name, s) in enumerate(series.items()):
        if not s:
            continue
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{path}"/>')
        out.append(f'<rect x="{legend_x}" y="{pad_t + 6}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{legend_x + 14}" y="{pad_t + 15}">{esc(name)}</text>')
        legend_x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _nines(p: float) -> float:
    """Percentile to the 'number of nines' axis: 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(max(1e-6, 1 - p / 100))


def percentile_chart(curves: dict[str, Sequence[Point]]) -> str:
    series = {name: [(_nines(p), ms) for p, ms in pts] for name, pts in curves.items()}
    ticks = [(_nines(p), label) for p, label in ((0, "0"), (90, "90"), (99, "99"), (99.9, "99.9"),
                                                 (99.99, "99.99"), (99.999, "99.999"), (100, "max"))]
    return line_chart("Latency by percentile", series, "percentile", "ms", x_ticks=ticks)


def charts(results: dict[str, Any]) -> list[str]:
    tl = results.get("timeline", [])

    def col(name: str) -> list[Point]:
        return [(row["t"], row[name]) for row in tl if row.get(name) is not None]

    return [
        line_chart("Throughput", {"sent/s": col("sent_per_s"), "engine processed/s": col("processed_per_s"),
                                  "outputs/s": col("outputs_per_s")}, "seconds", "events/s"),
        line_chart("End-to-end latency per second", {"p50": col("p50_ms"), "p99": col("p99_ms"),
                                                     "max": col("max_ms")}, "seconds", "ms"),
        percentile_chart(results.get("percentile_curve", {})),
        line_chart("Consumer lag of the engine group", {"lag": col("lag")}, "seconds", "records"),
        line_chart("Generator: worst lateness per second", {"late": col("gen_late_ms")}, "seconds", "ms"),
        *([line_chart("Workers: resident memory and CPU", {"memory MB": col("worker_rss_mb"),
                                                           "CPU %": col("worker_cpu_pct")}, "seconds", "MB / %")]
          if any("worker_rss_mb" in row for row in tl) else []),
    ]


def _series(values: dict[str, float], name: str) -> dict[str, float]:
    """{label text: value} of one metric in load/metrics.py's flat form ('name{k="v"}')."""
    out: dict[str, float] = {}
    for key, v in values.items():
        base, _, labels = key.partition("{")
        if base == name:
            out[labels.rstrip("}")] = out.get(labels.rstrip("}"), 0.0) + v
    return out


def _label(labels: str, name: str) -> str:
    for part in labels.split(","):
        k, _, v = part.partition("=")
        if k == name:
            return v.strip('"')
    return labels or "-"


def _bucket_quantile(values: dict[str, float], q: float, output: str = "limit") -> float | None:
    """An upper bound of the q-quantile of end-to-end latency (ms) from the histogram."""
    buckets = sorted((float(_label(lb, "le")), v) for lb, v in
                     _series(values, "creditstream_e2e_latency_seconds_bucket").items()
                     if _label(lb, "output") == output)
    if not buckets or buckets[-1][1] <= 0:
        return None
    le = next(le for le, n in buckets if n >= q * buckets[-1][1])
    return None if math.isinf(le) else le * 1000


def worker_summary(metrics: dict[str, Any], duration_s: float | None) -> list[list[Any]]:
    """The workers' own figures in a few rows (totals, mean rates over the run, lag,
    latency, dead letters and alerts by reason) instead of every Prometheus series."""
    values = metrics.get("values", {})
    per_s = (lambda n: f"{n:,.0f} ({n / duration_s:,.1f}/s)") if duration_s else (lambda n: f"{n:,.0f}")
    rows: list[list[Any]] = []
    events = _series(values, "creditstream_events_in_total")
    if events:
        rows.append(["events in", per_s(sum(events.values()))])
        rows += [[f"  {_label(k, 'topic')}", per_s(v)] for k, v in sorted(events.items())]
    if "creditstream_decisions_total" in values:
        rows.append(["limit updates published", per_s(values["creditstream_decisions_total"])])
    lag = _series(values, "creditstream_consumer_lag")
    if lag:
        rows.append(["consumer lag at the end (records, all partitions / worst one)",
                     f"{sum(lag.values()):,.0f} / {max(lag.values()):,.0f}"])
    for q in (0.5, 0.99):
        ms = _bucket_quantile(values, q)
        if ms is not None:
            rows.append([f"limit latency p{q * 100:g} (histogram bucket, at most, ms)", f"{ms:,.0f}"])
    for name, label, title in (("creditstream_dead_letters_total", "reason", "dead letters"),
                               ("creditstream_alerts_total", "code", "alerts")):
        found = {_label(k, label): v for k, v in _series(values, name).items() if v}
        if found:
            rows.append([title, f"{sum(found.values()):,.0f}: " + ", ".join(
                f"{k} {v:,.0f}" for k, v in sorted(found.items(), key=lambda kv: -kv[1]))])
    rows += [[f"unreachable: {url}", err] for url, err in metrics.get("errors", {}).items()]
    return rows


def _table(rows: list[list[Any]], head: list[str], empty: str = "none") -> str:
    """A table, or one line saying there is nothing: empty tables are left out."""
    esc = html.escape
    if not rows:
        return f'<p class="none">{esc(empty)}</p>'
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def render_html(results: dict[str, Any]) -> str:
    esc = html.escape
    gen = results.get("generator", {})
    lat = results.get("latency_ms", {})
    slo = results.get("slo")
    verdict = ""
    if slo:
        ok = slo["ok"]
        verdict = (f'<p class="{"ok" if ok else "bad"}">SLO {esc(slo["spec"])}: {"met" if ok else "VIOLATED"}</p>'
                   + _table([[v["clause"], v["actual"], v["limit"], "ok" if v["ok"] else "violated"]
                             for v in slo["checks"]], ["clause", "actual", "limit", "verdict"]))
    overview = _table([
        ["scenario", results.get("scenario")], ["rate (events/s)", results.get("rate")],
        ["duration (s)", results.get("duration_s")], ["engine app id", results.get("app_id")],
        ["events sent / acknowledged", f"{gen.get('sent', 0):,} / {gen.get('acked', 0):,}"],
        ["send errors", gen.get("errors", 0)],
        ["generator processes", gen.get("processes")],
        ["generator lateness p99 / max (ms)",
         f"{gen.get('lateness_ms', {}).get('p99', 0)} / {gen.get('lateness_ms', {}).get('max', 0)}"],
        ["seconds a generator fell behind", len(gen.get("behind", []))],
        ["all sent events processed", results.get("drained")],
        ["drain time after the last send (s)", results.get("drain_s")],
        ["dead letters", results.get("deadletters", {}).get("count", 0)],
        ["peak consumer lag", results.get("peak_lag")],
        ["workers started: peak memory (MB), mean CPU under load (%)",
         f"{results.get('workers', {}).get('rss_mb_peak', '-')}, "
         f"{results.get('workers', {}).get('cpu_pct_mean_under_load', '-')}"],
    ], ["figure", "value"])
    stats = ["count", "p50", "p90", "p99", "p99.9", "max"]
    latency = _table([[s, *[lat[s].get(k, "") for k in stats]] for s in lat if lat[s].get("count")],
                     ["series (ms)", *stats], "No output was measured.")
    dl = results.get("deadletters", {}).get("reasons", {})
    alerts = results.get("alerts", {})
    metrics = results.get("metrics") or {}
    metrics_html = ""
    if metrics:
        # A summary; every series is still in results.json for whoever needs one.
        metrics_html = "<h2>What the workers report</h2>" + _table(
            worker_summary(metrics, results.get("duration_s")), ["figure", "value"],
            "the workers exposed no creditstream metrics")
    body = "".join(f"<div>{c}</div>" for c in charts(results))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>creditstream load run {esc(str(results.get('run')))}</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1200px}}.none{{color:#666}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.ok{{color:#2ca02c}}.bad{{color:#d62728;font-weight:bold}}
</style></head><body>
<h1>Load run {esc(str(results.get('run')))}</h1><p>{esc(str(results.get('started_at')))}</p>
{verdict}<h2>Overview</h2>{overview}<h2>End-to-end latency</h2>{latency}
<h2>Plots</h2>{body}
<h2>Dead letters by reason</h2>{_table([[k, v] for k, v in dl.items()], ["reason", "count"], "No dead letters.")}
<h2>Alerts by code</h2>{_table([[k, v] for k, v in alerts.items()], ["code", "count"], "No alerts.")}
{metrics_html}
</body></html>
"""


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and report.html into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "results.json"
    js.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    page = out_dir / "report.html"
    page.write_text(render_html(results))
    return js, page

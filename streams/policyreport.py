"""The policy diff as one self-contained HTML page: inline SVG plots, inline CSS, nothing
fetched (a committee reads it offline, and a page that loads nothing leaks nothing)."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

BEFORE, AFTER = "#7f8c9a", "#1f6fb2"
W = 720


def _money(x: str | Decimal) -> str:
    return f"{Decimal(x):,.0f}"


def _svg(height: int, body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
            f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
            f'<title>{escape(title)}</title><rect width="{W}" height="{height}" fill="white"/>{body}</svg>')


def distribution_svg(report: dict[str, Any]) -> str:
    """Borrowers per bucket of relative limit change (old limit = 100%)."""
    dist = report["distribution"]
    n, h, left, bottom = len(dist), 220, 40, 50
    top = max(dist.values()) or 1
    bw = (W - left - 10) / n
    parts = [f'<text x="{left}" y="14" font-size="13">Borrowers by change of limit ({escape(report["from"])} '
             f'&#8594; {escape(report["to"])})</text>']
    for i, (name, count) in enumerate(dist.items()):
        bh = (h - bottom - 30) * count / top
        x, y = left + i * bw, h - bottom - bh
        colour = "#b03a2e" if name.startswith(("<", "-")) else "#999" if name == "0%" else "#2e8b57"
        parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" height="{bh:.1f}" fill="{colour}"/>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{count}</text>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{h - bottom + 14}" text-anchor="end" '
                     f'transform="rotate(-35 {x + bw / 2:.1f} {h - bottom + 14})">{escape(name)}</text>')
    parts.append(f'<line x1="{left}" y1="{h - bottom}" x2="{W - 10}" y2="{h - bottom}" stroke="#333"/>')
    return _svg(h, "".join(parts), "distribution of limit changes")


def _legend(x: float, y: float, before: str, after: str) -> str:
    return (f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{BEFORE}"/>'
            f'<text x="{x + 14}" y="{y}">{escape(before)}</text>'
            f'<rect x="{x + 110}" y="{y - 9}" width="10" height="10" fill="{AFTER}"/>'
            f'<text x="{x + 124}" y="{y}">{escape(after)}</text>')


def daily_svg(report: dict[str, Any], currency: str) -> str:
    """Total limit at the end of each day under both versions."""
    a = report["daily_total"][report["from"]].get(currency, {})
    b = report["daily_total"][report["to"]].get(currency, {})
    days = sorted(set(a) | set(b))
    h, left, right, top, bottom = 240, 90, 20, 30, 40
    parts = [f'<text x="{left}" y="16" font-size="13">Total limit per day, {escape(currency)}</text>',
             _legend(W - 260, 16, report["from"], report["to"])]
    if days:
        def series(s: dict[str, str]) -> list[Decimal]:
            last, out = Decimal(0), []
            for d in days:
                last = Decimal(s.get(d, last))
                out.append(last)
            return out
        sa, sb = series(a), series(b)
        lo, hi = min(sa + sb), max(sa + sb)
        hi = hi if hi > lo else lo + 1
        def xy(i: int, v: Decimal) -> str:
            x = left + (W - left - right) * (i / max(1, len(days) - 1))
            y = top + (h - top - bottom) * float((hi - v) / (hi - lo))
            return f"{x:.1f},{y:.1f}"
        for s, colour in ((sa, BEFORE), (sb, AFTER)):
            pts = " ".join(xy(i, v) for i, v in enumerate(s))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for v in (lo, hi):
            y = top + (h - top - bottom) * float((hi - v) / (hi - lo))
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_money(v)}</text>')
        parts.append(f'<text x="{left}" y="{h - bottom + 16}">{days[0]}</text>'
                     f'<text x="{W - right}" y="{h - bottom + 16}" text-anchor="end">{days[-1]}</text>')
    parts.append(f'<line x1="{left}" y1="{h - bottom}" x2="{W - right}" y2="{h - bottom}" stroke="#333"/>')
    return _svg(h, "".join(parts), f"total limit per day, {currency}")


def exposure_svg(report: dict[str, Any], kind: str) -> str:
    """Exposure (limits) per lender or per program, before and after, as paired bars."""
    rows = report["exposure"][kind]
    row_h, left, top = 34, 190, 30
    h = top + row_h * len(rows) + 10
    peak = max([Decimal(v["before"]) for v in rows.values()] + [Decimal(v["after"]) for v in rows.values()]
               + [Decimal(1)])
    span = W - left - 130
    parts = [f'<text x="10" y="16" font-size="13">Exposure per {kind}</text>',
             _legend(W - 260, 16, report["from"], report["to"])]
    for i, (name, v) in enumerate(rows.items()):
        y = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 18}" text-anchor="end">{escape(name)}</text>')
        for j, (side, colour) in enumerate((("before", BEFORE), ("after", AFTER))):
            width = span * float(Decimal(v[side]) / peak)
            parts.append(f'<rect x="{left}" y="{y + 3 + j * 14}" width="{width:.1f}" height="12" fill="{colour}"/>'
                         f'<text x="{left + width + 4:.1f}" y="{y + 13 + j * 14}">{_money(v[side])}</text>')
    return _svg(h, "".join(parts), f"exposure per {kind}")


def svgs(report: dict[str, Any]) -> dict[str, str]:
    """Every plot of the report by file name (docs/policy-lab.md shows them)."""
    out = {"distribution.svg": distribution_svg(report)}
    for ccy in sorted(report["daily_total"][report["from"]]):
        out[f"daily-{ccy}.svg"] = daily_svg(report, ccy)
    out["exposure-lender.svg"] = exposure_svg(report, "lender")
    out["exposure-program.svg"] = exposure_svg(report, "program")
    return out


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def html(report: dict[str, Any]) -> str:
    r = report
    t = r["total_limit"]
    summary = _table(["", "value"], [
        ["from (champion)", r["from"]], ["to (candidate)", r["to"]], ["history", f"{r['events']:,} events to "
                                                                       f"{r['history_end']}"],
        ["compared since", r["since"] or "the start of the history"], ["borrowers", f"{r['borrowers']:,}"],
        ["borrowers whose limit, status or reasons change", f"{r['borrowers_changed']:,}"],
        ["total limit before", _money(t["before"])], ["total limit after", _money(t["after"])],
        ["change", _money(t["change"])]])
    codes = _table(["reason code", "borrowers gaining it", "borrowers losing it"], [
        [c, r["codes"]["appeared"].get(c, 0), r["codes"]["disappeared"].get(c, 0)]
        for c in sorted(set(r["codes"]["appeared"]) | set(r["codes"]["disappeared"]))]) \
        if r["codes"]["appeared"] or r["codes"]["disappeared"] else "<p>No reason code appears or disappears.</p>"
    crossings = _table(["borrower", "crosses", "limit before", "limit after"], [
        [c["borrower_id"], ", ".join(c["crossed"]), _money(c["before"]), _money(c["after"])]
        for c in r["crossings"]]) if r["crossings"] else "<p>No borrower crosses a freeze or a cap.</p>"
    changes = _table(["borrower", "program", "before", "after", "change", "%", "why (by component)",
                      "reasons gained", "reasons lost", "status"], [
        [c["borrower_id"], c["program_id"], _money(c["before"]), _money(c["after"]), _money(c["change"]),
         c["change_pct"], "; ".join(f"{k} {_money(v)}" for k, v in c["by_kind"].items()),
         ", ".join(c["codes_appeared"]), ", ".join(c["codes_disappeared"]),
         c["status_before"] if c["status_before"] == c["status_after"] else
         f"{c['status_before']} -> {c['status_after']}"] for c in r["changes"]])
    gaps = r.get("widest_gaps", [])
    widest = _table(["borrower", "widest gap", "when", "limit then", "under the candidate", "still at the end",
                     "frozen under one version from"], [
        [w["borrower_id"], _money(w["gap"]), w["at"], _money(w["before"]), _money(w["after"]),
         "yes" if w["at_end"] else "no", w["frozen_under_one_at"] or ""] for w in gaps[:50]]) \
        if gaps else "<p>The two versions never differ.</p>"
    plots = "".join(f"<figure>{svg}</figure>" for svg in svgs(r).values())
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f2f2f2}"
             "figure{margin:1em 0}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Policy diff "
            f"{escape(r['from'])} to {escape(r['to'])}</title><style>{style}</style></head><body>"
            f"<h1>Policy {escape(r['from'])} &#8594; {escape(r['to'])}</h1>{summary}{plots}"
            f"<h2>Borrowers crossing a freeze or a cap</h2>{crossings}"
            f"<h2>Reason codes that appear or disappear</h2>{codes}"
            f"<h2>Borrowers whose limits differed at some point ({r.get('borrowers_diverged_at_some_point', 0)}; "
            f"widest gap first)</h2>{widest}"
            f"<h2>Largest changes ({r['changes_listed']} of {r['borrowers_changed']})</h2>{changes}"
            "</body></html>\n")

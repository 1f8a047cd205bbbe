"""The reconciliation report as files, read back from the `reconciliation`
table: CSV (every row and column, written by DuckDB), a standalone HTML page
(the status counts, an inline SVG bar chart and a table of the most urgent
rows, bounded so it stays readable at a million counters; no external
assets) and a Markdown summary for the asset's metadata. Keys never reach
here: causes are scrubbed where they are made."""

from __future__ import annotations

import html
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from stripemeter_assets.reconcile.compare import STATUSES
from stripemeter_assets.warehouse import literal, query, render_sql, run_script

_STATUS_COLOURS = {"ok": "#2e7d32", "drift": "#c62828", "pending": "#f9a825", "unmapped": "#757575",
                   "stripe_error": "#6a1b9a", "late_pending": "#ef6c00"}
MAX_BARS = 40
MAX_HTML_ROWS = 500
MAX_MD_ROWS = 20


def period_label(period_start: datetime) -> str:
    """`2025-03` for a calendar month; the start to the second for a subscription's period."""
    if period_start == period_start.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        return f"{period_start:%Y-%m}"
    return f"{period_start:%Y-%m-%dT%H%M%S}"


def status_counts(conn: duckdb.DuckDBPyConnection, period_start: datetime) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(conn.execute("SELECT status, count(*) FROM reconciliation WHERE period_start = ? GROUP BY 1",
                               [period_start]).fetchall())
    return counts


def _label(r: dict[str, Any]) -> str:
    return f"{r['tenant_id']}/{r['customer_ref']}/{r['metric']}"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return str(value)


def _pct(value: Decimal | None) -> str:
    return "" if value is None else f"{value * 100:.2f} %"


def _rows(conn: duckdb.DuckDBPyConnection, period_start: datetime, *, limit: int,
          notable: bool = False) -> list[dict[str, Any]]:
    return query(conn, "reconcile/report_rows.sql", period_start=period_start, limit=limit, notable=notable)


def write_csv(conn: duckdb.DuckDBPyConnection, period_start: datetime, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    run_script(conn, "reconcile/macros.sql")
    conn.execute(render_sql("reconcile/report_csv.sql", path=literal(str(tmp))), {"period_start": period_start})
    tmp.replace(path)
    return path


def drift_svg(rows: list[dict[str, Any]], epsilon: Decimal) -> str:
    """Horizontal bars of relative drift of the most urgent mapped counters
    (largest first), capped at 100 %, with the ε line; self-contained SVG."""
    bars = sorted((r for r in rows if r["relative_drift"] is not None),
                  key=lambda r: (-r["relative_drift"], _label(r)))[:MAX_BARS]
    label_w, bar_w, row_h, top = 260, 360, 20, 24
    height = top + row_h * max(len(bars), 1) + 10
    width = label_w + bar_w + 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Relative drift per counter" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
             f'font-size="12">',
             f'<text x="0" y="14" font-weight="bold">Relative drift |local − Stripe| / |local| '
             f'(ε = {_pct(epsilon)})</text>']
    if not bars:
        parts.append(f'<text x="0" y="{top + 14}">no mapped counters</text>')
    for i, r in enumerate(bars):
        y = top + i * row_h
        frac = min(float(r["relative_drift"]), 1.0)
        w = max(frac * bar_w, 1 if frac > 0 else 0)
        colour = _STATUS_COLOURS.get(r["status"], "#1565c0")
        label = html.escape(_label(r))
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
                     f'<title>{label}: {_pct(r["relative_drift"])} ({r["status"]})</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{_pct(r["relative_drift"])}</text>')
    eps_x = label_w + min(float(epsilon), 1.0) * bar_w
    parts.append(f'<line x1="{eps_x:.1f}" y1="{top}" x2="{eps_x:.1f}" y2="{height - 6}" stroke="#000" '
                 f'stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(conn: duckdb.DuckDBPyConnection, path: Path, *, period_start: datetime, epsilon: Decimal,
               checked_at: datetime, csv_name: str) -> Path:
    counts = status_counts(conn, period_start)
    total = sum(counts.values())
    rows = _rows(conn, period_start, limit=MAX_HTML_ROWS)
    e = html.escape
    head = ("<th>tenant</th><th>customer</th><th>metric</th><th>Stripe customer</th><th>meter</th>"
            "<th>local</th><th>pushed</th><th>Stripe</th><th>drift</th><th>relative</th><th>status</th><th>cause</th>")
    body = [
        f'<tr class="status-{e(r["status"])}"><td>{e(r["tenant_id"])}</td><td>{e(r["customer_ref"])}</td>'
        f"<td>{e(r['metric'])}</td><td>{e(r['stripe_customer'] or '')}</td><td>{e(r['event_name'] or '')}</td>"
        f'<td class="num">{_cell(r["local_total"])}</td><td class="num">{_cell(r["pushed_total"])}</td>'
        f'<td class="num">{_cell(r["stripe_total"])}</td><td class="num">{_cell(r["drift"])}</td>'
        f'<td class="num">{_pct(r["relative_drift"])}</td><td><span class="badge">{e(r["status"])}</span></td>'
        f"<td>{e(r['cause'])}</td></tr>"
        for r in rows]
    shown = (f"All {total} counter(s)." if len(rows) == total else
             f"The {len(rows)} most urgent of {total} counters (drift and errors first, the largest relative "
             f"drift first); every row is in {e(csv_name)} and the warehouse's <code>reconciliation</code> table.")
    badges = " ".join(f'<span class="badge s-{s}">{s}: {counts.get(s, 0)}</span>' for s in STATUSES)
    style = "\n".join([
        "body{font-family:sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin-top:1em}",
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}",
        "th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}",
        ".badge{padding:1px 6px;border-radius:8px;background:#eee}",
        *(f"tr.status-{s} .badge,.s-{s}{{background:{c};color:#fff}}" for s, c in _STATUS_COLOURS.items()),
    ])
    checked = checked_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>stripemeter reconciliation {period_label(period_start)}</title>
<style>{style}</style></head>
<body>
<h1>Pre-invoice reconciliation — {period_label(period_start)}</h1>
<p>Checked at {checked}. Totals in Stripe units (floor(unit_scale × value)); tolerance ε = {_pct(epsilon)}.</p>
<p>{badges}</p>
<figure>{drift_svg(rows, epsilon)}</figure>
<p>{shown}</p>
<table id="reconciliation"><thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    return path


def markdown_summary(conn: duckdb.DuckDBPyConnection, *, period_start: datetime, epsilon: Decimal,
                     corrections: int) -> str:
    counts = status_counts(conn, period_start)
    lines = [f"### Reconciliation {period_label(period_start)}", "",
             f"{sum(counts.values())} counter(s); ε = {_pct(epsilon)}; {corrections} under-report(s) auto-corrected.",
             "", "| status | counters |", "|---|---:|"]
    lines += [f"| {s} | {counts.get(s, 0)} |" for s in STATUSES]
    notable = _rows(conn, period_start, limit=MAX_MD_ROWS + 1, notable=True)
    if notable:
        lines += ["", "| tenant | customer | metric | local | Stripe | drift | status | cause |",
                  "|---|---|---|---:|---:|---:|---|---|"]
        for r in notable[:MAX_MD_ROWS]:
            cause = r["cause"].replace("|", "\\|")
            lines.append(f"| {r['tenant_id']} | {r['customer_ref']} | {r['metric']} | {_cell(r['local_total'])} | "
                         f"{_cell(r['stripe_total'])} | {_pct(r['relative_drift'])} | {r['status']} | {cause} |")
        notable_total = sum(n for s, n in counts.items() if s != "ok")
        if notable_total > MAX_MD_ROWS:
            lines.append(f"\n… and {notable_total - MAX_MD_ROWS} more in the CSV.")
    return "\n".join(lines)

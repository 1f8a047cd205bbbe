"""The reconciliation report as files: CSV (every column), a standalone HTML
page (a readable table and an inline SVG bar chart of relative drift, no
external assets) and a Markdown summary for the asset's metadata. Keys never
reach here: causes are scrubbed where they are made."""

from __future__ import annotations

import csv
import html
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from stripemeter_assets.reconcile.compare import STATUSES, Row, summary_counts

COLUMNS = ("tenant_id", "customer_ref", "metric", "period_start", "period_end", "stripe_customer", "event_name",
           "meter_formula", "unit_scale", "local_value", "local_total", "pushed_total", "stripe_total", "drift",
           "relative_drift", "status", "cause", "corrected")
_STATUS_COLOURS = {"ok": "#2e7d32", "drift": "#c62828", "pending": "#f9a825", "unmapped": "#757575",
                   "stripe_error": "#6a1b9a", "late_pending": "#ef6c00"}
MAX_BARS = 40
MAX_MD_ROWS = 20


def period_label(period_start: datetime) -> str:
    """`2025-03` for a calendar month; the start to the second for a subscription's period."""
    if period_start == period_start.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        return f"{period_start:%Y-%m}"
    return f"{period_start:%Y-%m-%dT%H%M%S}"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _pct(value: Decimal | None) -> str:
    return "" if value is None else f"{value * 100:.2f} %"


def write_csv(rows: list[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_cell(getattr(r, c)) for c in COLUMNS])
    tmp.replace(path)
    return path


def drift_svg(rows: list[Row], epsilon: Decimal) -> str:
    """Horizontal bars of relative drift per mapped counter (largest first),
    capped at 100 %, with the ε line; self-contained SVG."""
    bars = sorted((r for r in rows if r.relative_drift is not None),
                  key=lambda r: (-r.relative_drift, r.label))[:MAX_BARS]
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
        frac = min(float(r.relative_drift), 1.0)
        w = max(frac * bar_w, 1 if frac > 0 else 0)
        colour = _STATUS_COLOURS.get(r.status, "#1565c0")
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{html.escape(r.label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
                     f'<title>{html.escape(r.label)}: {_pct(r.relative_drift)} ({r.status})</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{_pct(r.relative_drift)}</text>')
    eps_x = label_w + min(float(epsilon), 1.0) * bar_w
    parts.append(f'<line x1="{eps_x:.1f}" y1="{top}" x2="{eps_x:.1f}" y2="{height - 6}" stroke="#000" '
                 f'stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(rows: list[Row], path: Path, *, period_start: datetime, epsilon: Decimal, checked_at: datetime) -> Path:
    counts = summary_counts(rows)
    e = html.escape
    head = ("<th>tenant</th><th>customer</th><th>metric</th><th>Stripe customer</th><th>meter</th>"
            "<th>local</th><th>pushed</th><th>Stripe</th><th>drift</th><th>relative</th><th>status</th><th>cause</th>")
    body = []
    for r in sorted(rows, key=lambda r: (r.status == "ok", r.tenant_id, r.customer_ref, r.metric)):
        body.append(
            f'<tr class="status-{e(r.status)}"><td>{e(r.tenant_id)}</td><td>{e(r.customer_ref)}</td>'
            f"<td>{e(r.metric)}</td><td>{e(r.stripe_customer or '')}</td><td>{e(r.event_name or '')}</td>"
            f'<td class="num">{_cell(r.local_total)}</td><td class="num">{_cell(r.pushed_total)}</td>'
            f'<td class="num">{_cell(r.stripe_total)}</td><td class="num">{_cell(r.drift)}</td>'
            f'<td class="num">{_pct(r.relative_drift)}</td><td><span class="badge">{e(r.status)}</span></td>'
            f"<td>{e(r.cause)}</td></tr>")
    badges = " ".join(f'<span class="badge s-{s}">{s}: {counts.get(s, 0)}</span>' for s in STATUSES)
    style = "\n".join([
        "body{font-family:sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin-top:1em}",
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}",
        "th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}",
        ".badge{padding:1px 6px;border-radius:8px;background:#eee}",
        *(f"tr.status-{s} .badge,.s-{s}{{background:{c};color:#fff}}" for s, c in _STATUS_COLOURS.items()),
    ])
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>stripemeter reconciliation {period_label(period_start)}</title>
<style>{style}</style></head>
<body>
<h1>Pre-invoice reconciliation — {period_label(period_start)}</h1>
<p>Checked at {_cell(checked_at)}. Totals in Stripe units (floor(unit_scale × value)); tolerance ε = {_pct(epsilon)}.</p>
<p>{badges}</p>
<figure>{drift_svg(rows, epsilon)}</figure>
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


def markdown_summary(rows: list[Row], *, period_start: datetime, epsilon: Decimal, corrections: int) -> str:
    counts = summary_counts(rows)
    lines = [f"### Reconciliation {period_label(period_start)}", "",
             f"{len(rows)} counter(s); ε = {_pct(epsilon)}; {corrections} under-report(s) auto-corrected.", "",
             "| status | counters |", "|---|---:|"]
    lines += [f"| {s} | {counts.get(s, 0)} |" for s in STATUSES]
    notable = [r for r in rows if r.status != "ok" or r.corrected]
    if notable:
        lines += ["", "| tenant | customer | metric | local | Stripe | drift | status | cause |",
                  "|---|---|---|---:|---:|---:|---|---|"]
        for r in sorted(notable, key=lambda r: (-(r.relative_drift or 0), r.label))[:MAX_MD_ROWS]:
            cause = r.cause.replace("|", "\\|")
            lines.append(f"| {r.tenant_id} | {r.customer_ref} | {r.metric} | {_cell(r.local_total)} | "
                         f"{_cell(r.stripe_total)} | {_pct(r.relative_drift)} | {r.status} | {cause} |")
        if len(notable) > MAX_MD_ROWS:
            lines.append(f"\n… and {len(notable) - MAX_MD_ROWS} more in the CSV.")
    return "\n".join(lines)

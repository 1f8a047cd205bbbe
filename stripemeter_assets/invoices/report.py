"""The invoice reconciliation as a page people read: total money at stake first, then the
worst rows, then the counts per status; and the same summary in Markdown."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from stripemeter_assets.pricing import format_money

from .compare import AT_RISK, STATUSES, Row

WORST = 20


def totals_at_stake(rows: list[Row]) -> dict[str, Decimal]:
    """Money at stake per currency, over the rows at risk (not ok, not pending)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.status in AT_RISK and r.currency:
            totals[r.currency] += r.money_at_stake
    return dict(sorted(totals.items()))


def worst(rows: list[Row], n: int = WORST) -> list[Row]:
    return sorted((r for r in rows if r.money_at_stake > 0 or r.status in AT_RISK),
                  key=lambda r: (-r.money_at_stake, r.tenant_id, r.customer_ref, r.metric))[:n]


def _money(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return "—"
    return f"{format_money(amount, currency)} {currency}" if currency else f"{amount:f}"


def _total_text(rows: list[Row]) -> str:
    totals = totals_at_stake(rows)
    return ", ".join(f"{format_money(v, c)} {c}" for c, v in totals.items()) or "0.00"


def markdown_summary(rows: list[Row], *, label: str) -> str:
    counts = Counter(r.status for r in rows)
    lines = [f"**Invoice reconciliation {label}: money at stake {_total_text(rows)}**", "",
             " · ".join(f"{s}: {counts.get(s, 0)}" for s in STATUSES), ""]
    top = worst(rows, 5)
    if top:
        lines += ["| customer | metric | period | status | at stake | cause |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.tenant_id}/{r.customer_ref} | {r.metric} | {r.period_start:%Y-%m-%d %H:%M:%S} | {r.status} | "
                  f"{_money(r.money_at_stake, r.currency)} | {r.cause} |" for r in top]
    return "\n".join(lines)


def write_html(rows: list[Row], path: Path, *, label: str, checked_at: datetime) -> Path:
    esc = html.escape
    counts = Counter(r.status for r in rows)
    body_rows = "".join(
        f"<tr class='{esc(r.status)}'><td>{esc(r.tenant_id)}</td><td>{esc(r.customer_ref)}</td><td>{esc(r.metric)}</td>"
        f"<td>{r.period_start:%Y-%m-%d %H:%M:%S} → {r.period_end:%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{esc(r.status)}</td><td class='num'>{esc(_money(r.money_at_stake, r.currency))}</td>"
        f"<td class='num'>{r.local_total:f}</td><td class='num'>{esc(_money(r.local_amount, r.currency))}</td>"
        f"<td class='num'>{'—' if r.stripe_quantity is None else f'{r.stripe_quantity:f}'}</td>"
        f"<td class='num'>{esc(_money(r.stripe_amount, r.currency))}</td>"
        f"<td>{esc(r.invoice_status or '')} {esc(r.invoice or '')}</td><td>{esc(r.cause)}</td></tr>"
        for r in worst(rows))
    status_cells = "".join(f"<li><b>{esc(s)}</b> {counts.get(s, 0)}</li>" for s in STATUSES)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice reconciliation {esc(label)}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
#money-at-stake {{ font-size: 2.4em; font-weight: 700; margin: .2em 0; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3em .5em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.invoice_drift, tr.not_invoiced, tr.no_subscription {{ background: #fff1f0; }}
ul.statuses {{ list-style: none; padding: 0; display: flex; gap: 1.5em; }}
</style></head><body>
<h1>Invoice reconciliation {esc(label)}</h1>
<p>Money at stake (what Stripe will not bill, or bills differently, in the invoice currency)</p>
<div id="money-at-stake">{esc(_total_text(rows))}</div>
<ul class="statuses">{status_cells}</ul>
<h2>Worst rows</h2>
<table id="worst"><thead><tr><th>tenant</th><th>customer</th><th>metric</th><th>period</th><th>status</th>
<th>at stake</th><th>local qty</th><th>local amount</th><th>Stripe qty</th><th>Stripe amount</th><th>invoice</th>
<th>cause</th></tr></thead><tbody>{body_rows or "<tr><td colspan='12'>nothing at stake</td></tr>"}</tbody></table>
<p><small>{len(rows)} counters checked at {checked_at:%Y-%m-%d %H:%M:%S} UTC</small></p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path

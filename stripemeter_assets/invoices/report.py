"""The invoice reconciliation as a page people read: total money at stake first, then the
worst rows, then the counts per status; and the same summary in Markdown."""

from __future__ import annotations

import html
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from stripemeter_assets.pricing import format_money
from stripemeter_assets.warehouse import query

from .compare import AT_RISK, NOT_READ, STATUSES, Row

WORST = 20


def totals_at_stake(conn: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Decimal]:
    """Money at stake per currency, over the run's rows at risk (not ok, not pending)."""
    return {r["currency"]: r["total"]
            for r in query(conn, "invoices/at_stake.sql", run_id=run_id, at_risk=list(AT_RISK))}


def counts(conn: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    found = dict(conn.execute("SELECT status, count(*) FROM invoice_reconciliation WHERE run_id = ? GROUP BY 1",
                              [run_id]).fetchall())
    return {s: found.get(s, 0) for s in STATUSES}


def worst(conn: duckdb.DuckDBPyConnection, run_id: str, n: int = WORST) -> list[Row]:
    return [Row(**r) for r in query(conn, "invoices/worst.sql", run_id=run_id, at_risk=list(AT_RISK), limit=n)]


def _money(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return "—"
    return f"{format_money(amount, currency)} {currency}" if currency else f"{amount:f}"


def _total_text(totals: dict[str, Decimal]) -> str:
    return ", ".join(f"{format_money(v, c)} {c}" for c, v in totals.items()) or "0.00"


def _not_read_note(by_status: dict[str, int]) -> str:
    n = by_status[NOT_READ]
    return (f"{n} counter(s) not compared: their account's Stripe was not read (no key), so what it bills "
            "them is unknown and not counted above.") if n else ""


def markdown_summary(conn: duckdb.DuckDBPyConnection, run_id: str, *, label: str) -> str:
    by_status = counts(conn, run_id)
    lines = [f"**Invoice reconciliation {label}: money at stake {_total_text(totals_at_stake(conn, run_id))}**", "",
             " · ".join(f"{s}: {by_status[s]}" for s in STATUSES), ""]
    if note := _not_read_note(by_status):
        lines += [note, ""]
    top = worst(conn, run_id, 5)
    if top:
        lines += ["| customer | metric | period | status | at stake | cause |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.tenant_id}/{r.customer_ref} | {r.metric} | {r.period_start:%Y-%m-%d %H:%M:%S} | {r.status} | "
                  f"{_money(r.money_at_stake, r.currency)} | {r.cause} |" for r in top]
    return "\n".join(lines)


def write_html(conn: duckdb.DuckDBPyConnection, run_id: str, path: Path, *, label: str,
               checked_at: datetime) -> Path:
    esc = html.escape
    by_status = counts(conn, run_id)
    body_rows = "".join(
        f"<tr class='{esc(r.status)}'><td>{esc(r.tenant_id)}</td><td>{esc(r.customer_ref)}</td><td>{esc(r.metric)}</td>"
        f"<td>{r.period_start:%Y-%m-%d %H:%M:%S} → {r.period_end:%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{esc(r.status)}</td><td class='num'>{esc(_money(r.money_at_stake, r.currency))}</td>"
        f"<td class='num'>{r.local_total:f}</td><td class='num'>{esc(_money(r.local_amount, r.currency))}</td>"
        f"<td class='num'>{'—' if r.stripe_quantity is None else f'{r.stripe_quantity:f}'}</td>"
        f"<td class='num'>{esc(_money(r.stripe_amount, r.currency))}</td>"
        f"<td>{esc(r.invoice_status or '')} {esc(r.invoice or '')}</td><td>{esc(r.cause)}</td></tr>"
        for r in worst(conn, run_id))
    status_cells = "".join(f"<li><b>{esc(s)}</b> {by_status[s]}</li>" for s in STATUSES)
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
<div id="money-at-stake">{esc(_total_text(totals_at_stake(conn, run_id)))}</div>
<ul class="statuses">{status_cells}</ul>
<p id="not-read">{esc(_not_read_note(by_status))}</p>
<h2>Worst rows</h2>
<table id="worst"><thead><tr><th>tenant</th><th>customer</th><th>metric</th><th>period</th><th>status</th>
<th>at stake</th><th>local qty</th><th>local amount</th><th>Stripe qty</th><th>Stripe amount</th><th>invoice</th>
<th>cause</th></tr></thead><tbody>{body_rows or "<tr><td colspan='12'>nothing at stake</td></tr>"}</tbody></table>
<p><small>{sum(by_status.values())} counters checked at {checked_at:%Y-%m-%d %H:%M:%S} UTC</small></p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path

"""`GET /widget/{customerRef}?token=…`: the customer's embeddable usage page.

Server-rendered HTML (no script), so it works in any iframe and shows the
numbers as of the analyst snapshot: usage to date per metric, a daily bar
chart, the projected cost. The token names exactly one (tenant, customer);
any other customer in the path is refused, and nothing else is read.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from stripemeter_assets import settings
from stripemeter_assets.api import snapshot
from stripemeter_assets.api.state import ApiState
from stripemeter_assets.api.token import InvalidToken, read_token

router = APIRouter(tags=["widget"])
# May be framed by any site; it shows only what the token grants.
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *",
            "Cache-Control": "no-store"}


def _refuse(status: int, message: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>stripemeter</title><p id=error>{escape(message)}</p>",
                        status_code=status, headers=_HEADERS)


@router.get("/widget/{customer_ref}", response_class=HTMLResponse)
async def widget(customer_ref: str, request: Request, token: Annotated[str, Query()] = ""):
    state: ApiState = request.app.state.api
    if state.widget_secret is None:
        return _refuse(503, "the widget is not configured (STRIPEMETER_WIDGET_SECRET)")
    try:
        grant = read_token(state.widget_secret, token, settings.now())
    except InvalidToken as exc:
        return _refuse(401, f"invalid token: {exc}")
    if grant.customer != customer_ref:
        return _refuse(403, "this token is for another customer")
    page = await run_in_threadpool(_render, state, grant.tenant, grant.customer)
    return HTMLResponse(page, headers=_HEADERS)


def _render(state: ApiState, tenant: str, customer: str) -> str:
    with snapshot.open_snapshot(state.analytics_path) as snap:
        usage = snapshot.usage(snap, tenant, customer)
        days = snapshot.daily(snap, tenant, customer)
        projection = {row["metric"]: row for row in snapshot.projection(snap, tenant, customer)}
        as_of = snapshot.iso(snap.as_of)
    sections = [_metric_section(row, [d for d in days if d["metric"] == row["metric"]], projection.get(row["metric"]))
                for row in usage]
    body = "".join(sections) or "<p id=empty>No usage in the current period yet.</p>"
    totals = _projected_totals(projection.values())
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width">
<title>Usage for {escape(customer)}</title>
<style>
body{{font:14px system-ui,sans-serif;margin:12px;color:#222}}
section{{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}}
h2{{font-size:15px;margin:4px 0}} .num{{font-weight:600}} .muted{{color:#777;font-size:12px}}
svg rect{{fill:#635bff}}
</style></head>
<body data-customer="{escape(customer)}">
<h1 style="font-size:17px">Usage this period</h1>
{body}
{totals}
<p class=muted>As of <time id=as-of datetime="{escape(as_of)}">{escape(as_of)}</time></p>
</body></html>"""


def _metric_section(row: dict[str, Any], days: list[dict[str, Any]], proj: dict[str, Any] | None) -> str:
    metric = escape(row["metric"])
    cost = ""
    if proj and proj.get("priced"):
        cost = (f'<p>Cost to date <span class="num cost-to-date">{escape(str(proj["costToDate"]))}</span> '
                f'{escape(proj["currency"] or "")}')
        if proj.get("projectedCost") is not None:
            cost += (f' · projected <span class="num projected-cost">{escape(str(proj["projectedCost"]))}</span> '
                     f'{escape(proj["currency"] or "")} <span class=muted>(estimate)</span>')
        cost += "</p>"
    return (f'<section class=metric data-metric="{metric}"><h2>{metric}</h2>'
            f'<p>Usage to date <span class="num usage">{escape(row["value"])}</span> '
            f'<span class=muted>({escape(row["aggregation"])}, period {escape(row["periodStart"][:10])} – '
            f'{escape(row["periodEnd"][:10])})</span></p>{cost}{_chart(days)}</section>')


def _chart(days: list[dict[str, Any]]) -> str:
    if not days:
        return ""
    values = [Decimal(d["value"]) for d in days]
    top = max(max(values), Decimal(1))
    width, height, gap = 12, 60, 2
    bars = []
    for i, (day, value) in enumerate(zip(days, values)):
        h = int(height * max(value, Decimal(0)) / top)
        bars.append(f'<rect class=day data-day="{escape(day["day"])}" data-value="{escape(day["value"])}" '
                    f'x="{i * (width + gap)}" y="{height - h}" width="{width}" height="{h}">'
                    f'<title>{escape(day["day"])}: {escape(day["value"])}</title></rect>')
    return (f'<svg class=chart role=img aria-label="daily usage" width="{len(days) * (width + gap)}" '
            f'height="{height}">{"".join(bars)}</svg>')


def _projected_totals(rows) -> str:
    by_currency: dict[str, Decimal] = {}
    for row in rows:
        if row.get("priced") and row.get("projectedCost") is not None:
            by_currency[row["currency"]] = by_currency.get(row["currency"], Decimal(0)) + Decimal(row["projectedCost"])
    if not by_currency:
        return ""
    parts = ", ".join(f'<span class="num projected-total" data-currency="{escape(c)}">{escape(str(v))}</span> '
                      f'{escape(c)}' for c, v in sorted(by_currency.items()))
    return f"<p>Projected cost this period: {parts} <span class=muted>(estimate)</span></p>"

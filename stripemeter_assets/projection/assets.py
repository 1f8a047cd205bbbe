"""`cost_projection`: usage to date, projected usage and their cost for each billing period."""

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.partitions import period_partitions
from stripemeter_assets.periods.lookup import period_starts
from stripemeter_assets.pricing import ScenarioError, format_money
from stripemeter_assets.projection.costs import config_price_book
from stripemeter_assets.projection.project import project_periods
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.warehouse import query, transaction

TOP_CUSTOMERS = 10


@dg.asset(
    deps=["period_usage"],
    partitions_def=period_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="reports",
    kinds={"duckdb"},
    description="Per (tenant, customer, metric, billing period): usage to date, elapsed fraction of the period, "
                "projected usage (sum/count: to_date / elapsed_fraction; max/last: the current value; an estimate, "
                "NULL before 10 % of the period) and the cost of both through the pricing library, on the "
                "customer's own billing period and its subscription item's Stripe price (else the config's "
                "`prices:`, `prices_by_tenant:` overrides). Unpriced metrics are flagged `priced = false`.",
)
def cost_projection(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    now = settings.now()
    try:
        prices = config_price_book(warehouse.config())
    except ScenarioError as exc:
        raise dg.Failure(description=f"invalid price config: {exc}") from exc
    start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    with warehouse.connect() as conn:
        periods = period_starts(conn, window.start, window.end)
        with transaction(conn):
            elapsed = project_periods(conn, warehouse.config(), prices, periods, now)
        [summary] = query(conn, "projection/customers.sql", start=start, end=end)
        totals = query(conn, "projection/totals.sql", start=start, end=end)
        top = query(conn, "projection/top.sql", start=start, end=end, limit=TOP_CUSTOMERS)
    return dg.MaterializeResult(metadata={
        "period_starts": len(periods),
        "elapsed_fraction": dg.MetadataValue.json(elapsed),
        "customers": summary["customers"],
        "counters": summary["counters"],
        "projected_cost": dg.MetadataValue.json(
            {t["currency"]: format_money(t["projected_cost"], t["currency"])
             for t in totals if t["projected_cost"] is not None}),
        "cost_to_date": dg.MetadataValue.json(
            {t["currency"]: format_money(t["cost_to_date"], t["currency"]) for t in totals}),
        "unpriced_metrics": ", ".join(summary["unpriced_metrics"] or []) or "none",
        "top_customers": dg.MetadataValue.md(_top_table(top)),
    })


def _top_table(top: list[dict]) -> str:
    if not top:
        return "_no priced usage in this period_"
    lines = ["| tenant | customer | currency | cost to date | projected cost (estimate) |",
             "|---|---|---|---:|---:|"]
    for row in top:
        projected = row["projected_cost"]
        lines.append(
            f"| {_cell(row['tenant_id'])} | {_cell(row['customer_ref'])} | {row['currency']} "
            f"| {format_money(row['cost_to_date'], row['currency'])} "
            f"| {format_money(projected, row['currency']) if projected is not None else '—'} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

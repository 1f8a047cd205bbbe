"""`invoice_reconciliation` and its blocking money-at-stake check."""

from decimal import Decimal

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.partitions import period_partitions
from stripemeter_assets.periods.assets import reader_factory
from stripemeter_assets.push.client import scrub
from stripemeter_assets.reconcile.assets import fail_on_too_large
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource

from . import report
from .compare import AT_RISK
from .run import reconcile_invoices


@dg.asset(
    deps=["stripe_push", "billing_periods"],
    partitions_def=period_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="stripe",
    kinds={"stripe", "duckdb"},
    description="Per (tenant, customer, metric, subscription item, billing period overlapping the days): the local "
                "total priced on the item's Stripe price against the invoice preview (open period), the draft "
                "(in grace) or the finalized invoice's line; status ok, invoice_drift, not_invoiced, "
                "no_subscription, pending or not_read (no Stripe key for the account), and the money at stake in "
                "the invoice currency. Writes table "
                "`invoice_reconciliation` and invoice-reconciliation-<days>.html under STRIPEMETER_REPORTS.",
)
def invoice_reconciliation(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                           stripe: StripeResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    now = settings.now()
    label = f"{window.start:%Y-%m-%d}" if (window.end - window.start).days <= 1 else \
        f"{window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
    run_id = context.run_id
    with warehouse.connect() as conn:
        calls, too_large = reconcile_invoices(conn, warehouse.config(), start=window.start, end=window.end, now=now,
                                   run_id=run_id, reader_for=reader_factory(stripe))
        html_path = report.write_html(conn, run_id, settings.reports_dir() / f"invoice-reconciliation-{label}.html",
                                      label=label, checked_at=now)
        totals = report.totals_at_stake(conn, run_id)
        summary = report.markdown_summary(conn, run_id, label=label)
        by_status = report.counts(conn, run_id)
    metadata = {
        "summary": dg.MetadataValue.md(scrub(summary)),
        "money_at_stake": dg.MetadataValue.json({c: str(v) for c, v in totals.items()}),
        **{f"rows_{s}": n for s, n in by_status.items()},
        "stripe_calls": calls,
        "report": dg.MetadataValue.path(str(html_path)),
    }
    fail_on_too_large(too_large, metadata)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=invoice_reconciliation, blocking=True,
                description="Fails (and blocks the pre-invoice run) when the money at stake of any row of the run "
                            "(invoice_drift, not_invoiced, no_subscription) exceeds `invoice_tolerance` (default "
                            "0.01) in its currency.")
def invoice_money_at_stake_within_tolerance(context: dg.AssetCheckExecutionContext,
                                            warehouse: WarehouseResource) -> dg.AssetCheckResult:
    tolerance = Decimal(warehouse.config().invoice_tolerance)
    with warehouse.connect() as conn:
        rows = conn.execute(
            "SELECT tenant_id, customer_ref, metric, period_start, status, money_at_stake, currency, cause "
            "FROM invoice_reconciliation WHERE run_id = ? AND status IN ? AND money_at_stake > ? "
            "ORDER BY money_at_stake DESC, tenant_id, customer_ref, metric",
            [context.run.run_id, list(AT_RISK), tolerance]).fetchall()
        totals = dict(conn.execute(
            "SELECT coalesce(currency, '?'), sum(money_at_stake) FROM invoice_reconciliation WHERE run_id = ? "
            "AND status IN ? GROUP BY ALL", [context.run.run_id, list(AT_RISK)]).fetchall())
    examples = "; ".join(f"{t}/{c}/{m} {p:%Y-%m-%d %H:%M:%S}: {s} {v.normalize():f} {cur} ({cause})"
                         for t, c, m, p, s, v, cur, cause in rows[:5])
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rows_over_tolerance": len(rows), "tolerance": float(tolerance),
                  "money_at_stake": dg.MetadataValue.json({k: str(v) for k, v in totals.items()}),
                  "examples": scrub(examples) or "none"},
        description=None if not rows else f"{len(rows)} row(s) with money at stake above {tolerance}",
    )

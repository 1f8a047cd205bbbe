"""`reconciliation_report`: pre-invoice reconciliation of a billing period
against Stripe's meter event summaries, and its blocking check."""

from datetime import timedelta
from decimal import Decimal

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.partitions import period_partitions
from stripemeter_assets.periods.lookup import period_starts
from stripemeter_assets.push.client import scrub
from stripemeter_assets.push.pacing import Pacer
from stripemeter_assets.reconcile import report
from stripemeter_assets.reconcile.compare import DRIFT
from stripemeter_assets.reconcile.run import ReconcileOptions, reconcile_period
from stripemeter_assets.reconcile.stripe_totals import StripeTotals
from stripemeter_assets.resources import StripeResource, WarehouseResource


class ReconcileConfig(dg.Config):
    """Unset fields fall back to the YAML config (`auto_correct`,
    `stripe.summary_settle_minutes`; defaults true, 60 min)."""

    auto_correct: bool | None = None
    settle_seconds: int | None = None


def _options(config: ReconcileConfig, yaml_config: settings.Config) -> ReconcileOptions:
    auto = config.auto_correct if config.auto_correct is not None else yaml_config.auto_correct
    settle = (timedelta(seconds=config.settle_seconds) if config.settle_seconds is not None
              else yaml_config.summary_settle)
    return ReconcileOptions(epsilon=Decimal(yaml_config.drift_epsilon), settle=settle, auto_correct=auto)


@dg.asset(
    deps=["stripe_push"],
    partitions_def=period_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="stripe",
    kinds={"stripe", "duckdb"},
    description="Per (tenant, customer, metric, period): local total, pushed total and Stripe's meter event "
                "summary total (in Stripe's scaled units), absolute and relative drift, a status (ok, drift, "
                "pending, unmapped, stripe_error, late_pending) and its likely cause. Under-reports are re-sent "
                "through the push outbox when auto_correct is on; over-reports are only reported. Writes table "
                "`reconciliation` and reconciliation-<period>.csv/.html under STRIPEMETER_REPORTS.",
)
def reconciliation_report(context: dg.AssetExecutionContext, config: ReconcileConfig, warehouse: WarehouseResource,
                          stripe: StripeResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    now = settings.now()
    yaml_config = warehouse.config()
    options = _options(config, yaml_config)
    push_options = stripe.push_options()
    totals = StripeTotals(stripe.resolved_api_base(), pacer=Pacer(push_options.pacing, push_options.rate_fraction),
                          retry=push_options.retry, timeout=stripe.timeout_seconds)
    gateways = stripe.gateways()
    keys = stripe.key_status()
    out_dir = settings.reports_dir()
    markdown, files, counts_total, corrections, pushed, too_large = [], [], {}, 0, 0, []
    with warehouse.connect() as conn:
        for period in period_starts(conn, window.start, window.end):
            result = reconcile_period(conn, config=yaml_config, period=period, now=now, run_id=context.run_id,
                                      keys=keys, totals=totals, gateways=gateways, push_options=push_options,
                                      options=options, log=context.log)
            label = report.period_label(result.period_start)
            csv_path = report.write_csv(conn, result.period_start, out_dir / f"reconciliation-{label}.csv")
            html_path = report.write_html(conn, out_dir / f"reconciliation-{label}.html",
                                          period_start=result.period_start, epsilon=options.epsilon, checked_at=now,
                                          csv_name=csv_path.name)
            files += [str(csv_path), str(html_path)]
            markdown.append(report.markdown_summary(conn, period_start=result.period_start,
                                                    epsilon=options.epsilon, corrections=result.corrections))
            for status, n in result.counts.items():
                counts_total[status] = counts_total.get(status, 0) + n
            corrections += result.corrections
            too_large += result.too_large
            if result.push_report is not None:
                pushed += result.push_report.acknowledged
    metadata = {
        "summary": dg.MetadataValue.md(scrub("\n\n".join(markdown))),
        **{f"counters_{status}": n for status, n in counts_total.items()},
        "auto_correct": options.auto_correct,
        "under_reports_corrected": corrections,
        "correction_intents_acknowledged": pushed,
        "stripe_summary_calls": totals.calls,
        "drift_epsilon": float(options.epsilon),
        "reports": dg.MetadataValue.json(files),
    }
    fail_on_too_large(too_large, metadata)
    return dg.MaterializeResult(metadata=metadata)


def fail_on_too_large(labels: list[str], metadata: dict) -> None:
    """Fails a reconciliation run that left counters out (`frame.too_large`):
    every other row is stored and reported by now; these need an operator."""
    if labels:
        raise dg.Failure(
            description=scrub(f"{len(labels)} counter(s) too large to reconcile in Stripe's units (above "
                              f"DECIMAL(38, 9) once scaled), left out: {', '.join(labels[:10])}"),
            metadata={**metadata, "counters_too_large": len(labels)})


@dg.asset_check(asset=reconciliation_report, blocking=True,
                description="Fails (and blocks the pre-invoice run) when any mapped counter of the period is in "
                            "status `drift`: Stripe's total differs from the local one by more than ε.")
def reconciliation_within_epsilon(context: dg.AssetCheckExecutionContext,
                                  warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        rows = conn.execute(
            "SELECT tenant_id, customer_ref, metric, strftime(period_start, '%Y-%m') AS period, local_total, "
            "stripe_total, relative_drift, cause FROM reconciliation WHERE run_id = ? AND status = ? "
            "ORDER BY relative_drift DESC, tenant_id, customer_ref, metric",
            [context.run.run_id, DRIFT]).fetchall()
        checked = conn.execute("SELECT count(*) FROM reconciliation WHERE run_id = ?",
                               [context.run.run_id]).fetchone()[0]
    examples = "; ".join(f"{t}/{c}/{m} {p}: local {lt.normalize():f} vs Stripe {st.normalize():f} ({cause})"
                         for t, c, m, p, lt, st, _, cause in rows[:5])
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"counters_checked": checked, "counters_drift": len(rows),
                  "max_relative_drift": float(rows[0][6]) if rows else 0.0,
                  "examples": scrub(examples) or "none"},
        description=None if not rows else f"{len(rows)} counter(s) drift beyond ε",
    )

"""`billing_periods`: the customers' billing periods, read from Stripe."""

from datetime import datetime, timedelta

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.push.pacing import Pacer
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource
from stripemeter_assets.warehouse import transaction

from .build import ensure_calendar_periods, read_stripe
from .stripe_read import BillingReader

# Calendar months are ensured for every day of usage in the ledger.
LEDGER_FLOOR = datetime(1970, 1, 1)


def reader_factory(stripe: StripeResource):
    options = stripe.push_options()
    pacer = Pacer(options.pacing, options.rate_fraction)

    def reader_for(api_key: str, mode: str, account: str | None) -> BillingReader:
        return BillingReader(api_key, mode, account, api_base=stripe.resolved_api_base(), pacer=pacer,
                             retry=options.retry, timeout=stripe.timeout_seconds)

    return reader_for


@dg.asset(
    deps=["usage_events"],
    pool="duckdb",
    group_name="counters",
    kinds={"stripe", "duckdb"},
    description="Per (tenant, customer, metric): the billing periods Stripe invoices (the subscription item on "
                "the mapped meter's price: its current period and its recent invoices' periods, source `stripe`), "
                "or UTC calendar months for customers without one (source `calendar`, reported no_subscription).",
)
def billing_periods(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                    stripe: StripeResource) -> dg.MaterializeResult:
    now = settings.now()
    config = warehouse.config()
    with warehouse.connect() as conn, transaction(conn):
        report = read_stripe(conn, config, now=now, reader_for=reader_factory(stripe))
        ensure_calendar_periods(conn, LEDGER_FLOOR, now + timedelta(days=1), now)
        by_source = dict(conn.execute("SELECT source, count(*) FROM billing_periods GROUP BY source").fetchall())
        no_subscription = conn.execute(
            "SELECT count(DISTINCT (tenant_id, metric, customer_ref)) FROM billing_periods WHERE source = 'calendar'"
        ).fetchone()[0]
    metadata = {
        "accounts_read": report.accounts_read,
        "stripe_calls": report.stripe_calls,
        "stripe_periods": by_source.get("stripe", 0),
        "calendar_periods": by_source.get("calendar", 0),
        "counters_without_subscription": no_subscription,
        "accounts_unread": dg.MetadataValue.json(report.unread),
    }
    if report.failed:
        # The accounts read are committed; these keep their last periods until Stripe answers.
        raise dg.Failure(description=f"billing periods not read for {report.failed}", metadata=metadata)
    for line in report.unread:
        context.log.warning(f"billing periods not read from Stripe for {line}; calendar months are used")
    return dg.MaterializeResult(metadata=metadata)

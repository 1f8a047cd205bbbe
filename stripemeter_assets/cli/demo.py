"""`stripemeter demo`: the whole pipeline on the embedded defaults, pushing to
the bundled Stripe emulator (never to Stripe: the API base is the emulator's
and the keys are the demo's own test-mode placeholders).

The emulator gets what a real Stripe account would have: the config's meters,
the ledger's customers, a metered price per meter and subscriptions (some
anchored mid-month at 13:42:11, one customer per account left without one),
on the platform (1 h invoice grace) and on the Connect account of the config
(48 h). The demo ends with the invoice reconciliation: money at stake."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import stripe

from stripemeter_assets import settings
from stripemeter_assets.cli.gen_events import GenSpec, generate
from stripemeter_assets.pricing import format_money
from stripemeter_assets.push import targets
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import PLATFORM, meter_formula
from stripemeter_assets.cli.runner import CatchUpReport, RunOutcome, catch_up, execute_request, save_cursor, tick_sensor
from stripemeter_assets.sensors import RANGE_END, RANGE_START
from stripemeter_assets.stripe_emulator import EmulatorServer
from stripemeter_assets.warehouse import connect

# Test-mode placeholders the emulator accepts; they open nothing at Stripe.
DEMO_KEYS = {"STRIPE_API_KEY": "sk_test_stripemeter_demo", "STRIPE_TEST_API_KEY": "sk_test_stripemeter_shadow"}
INVOICE_CHECK_STEP = "invoice_reconciliation_invoice_money_at_stake_within_tolerance"
# Metered prices of the demo's meters, in Stripe's shapes (amounts in cents; storage_peak
# counts milli-GB, the metric's unit_scale).
DEMO_PRICES = {
    "api_calls": {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": [
        {"up_to": 10000, "unit_amount": 1}, {"up_to": "inf", "unit_amount_decimal": "0.8"}]},
    "seats": {"unit_amount": 1200},
    "storage_peak": {"unit_amount_decimal": "0.002"},
}


def _accounts(config: settings.Config, conn) -> dict[str, tuple[set[str], set[str]]]:
    """account -> (meter event names, Stripe customers) the ledger and config put there."""
    conn.execute("CREATE OR REPLACE TEMP TABLE demo_counters AS SELECT DISTINCT tenant_id, metric, customer_ref "
                 "FROM events")
    targets.load(conn, config, KeyStatus.from_env(), "demo_counters")
    out: dict[str, tuple[set[str], set[str]]] = {}
    for account, event_name, customer in conn.execute(
            "SELECT m.account, m.event_name, c.stripe_customer FROM demo_counters "
            "JOIN counter_meters m USING (tenant_id, metric) JOIN counter_customers c USING (customer_ref) "
            "WHERE m.event_name IS NOT NULL").fetchall():
        events, customers = out.setdefault(account, (set(), set()))
        events.add(event_name)
        customers.add(customer)
    return out


def _seed_emulator(emulator: EmulatorServer, config: settings.Config, now: datetime) -> str:
    """Meters, customers, prices and subscriptions per account, created through the real SDK
    where Stripe has an API for them (customer ids, meters and the grace period, which Stripe
    sets in its Dashboard, through the emulator's hooks)."""
    mapping = config.stripe
    # Seeding is the account's setup, not the pipeline under test: no rate limits while it runs.
    emulator.set_rate_limit(stripe_limits=False)
    for meter in mapping.meters:  # shadow meters live in test mode like the rest of the demo
        emulator.create_meter(meter.event_name, formula=meter_formula(config.metric(meter.metric).aggregation))
    with connect(settings.warehouse_path()) as conn:
        accounts = _accounts(config, conn)
    lines = []
    start = now - timedelta(days=25)
    for account, (event_names, customers) in sorted(accounts.items()):
        acct = None if account == PLATFORM else account
        if acct is not None:
            for meter in mapping.meters:
                emulator.create_meter(meter.event_name, formula=meter_formula(config.metric(meter.metric).aggregation),
                                      account=acct)
        grace = int(config.invoice_grace(acct) / timedelta(hours=1))
        emulator.set_invoice_grace(grace, account=acct)
        for customer in sorted(customers):
            emulator.create_customer(customer, account=acct)
        client = stripe.StripeClient(DEMO_KEYS["STRIPE_API_KEY"], base_addresses={"api": emulator.url},
                                     stripe_account=acct, max_network_retries=0)
        meters = {m.event_name: m for m in client.v1.billing.meters.list({"limit": 100}).data}
        emulator.set_clock(int(start.timestamp()))
        product = client.v1.products.create({"name": "stripemeter demo"})
        prices = [client.v1.prices.create({
            "currency": "usd", "product": product.id, "nickname": name,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meters[name].id},
            **DEMO_PRICES.get(name, {"unit_amount": 1})}) for name in sorted(event_names)]
        subscribed = sorted(customers)[1:]  # the first customer has no subscription
        for i, customer in enumerate(subscribed):
            params = {"customer": customer, "items": [{"price": p.id} for p in prices]}
            if i % 2:  # every other one anchored mid-month, at 13:42:11
                anchor = (start + timedelta(days=5)).replace(hour=13, minute=42, second=11, microsecond=0)
                params["billing_cycle_anchor"] = int(anchor.timestamp())
            client.v1.subscriptions.create(params)
        emulator.set_clock(int(now.timestamp()) if settings.frozen_now() else None)
        lines.append(f"{account}: {len(customers)} customers, {len(subscribed)} subscribed, {grace} h invoice grace")
    emulator.set_rate_limit()  # Stripe's limits again for the push and the reconciliation
    return "; ".join(lines)


def _blocked_by_invoice_check(instance: dg.DagsterInstance, run: RunOutcome) -> bool:
    """The run's only failure is the invoice money-at-stake check: a finding to show, not a crash."""
    failed = {e.dagster_event.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
              if e.dagster_event}
    return not run.success and failed == {INVOICE_CHECK_STEP}


def invoice_summary() -> str:
    with connect(settings.warehouse_path()) as conn:
        totals = conn.execute(
            "SELECT currency, sum(money_at_stake) FROM invoice_reconciliation WHERE currency IS NOT NULL "
            "AND status IN ('invoice_drift', 'not_invoiced', 'no_subscription') GROUP BY ALL ORDER BY 1").fetchall()
        counts = conn.execute("SELECT status, count(*) FROM invoice_reconciliation GROUP BY ALL ORDER BY 1").fetchall()
        worst = conn.execute(
            "SELECT tenant_id, customer_ref, metric, strftime(period_start, '%Y-%m-%d %H:%M:%S'), status, "
            "money_at_stake, currency, cause FROM invoice_reconciliation WHERE money_at_stake > 0 "
            "ORDER BY money_at_stake DESC LIMIT 5").fetchall()
    money = ", ".join(f"{format_money(v, c)} {c}" for c, v in totals) or "0.00"
    lines = [f"invoice reconciliation: money at stake {money}",
             "  " + ", ".join(f"{s} {n}" for s, n in counts)]
    lines += [f"  {t}/{c} {m} period {p}: {s} {v.normalize():f} {cur or ''} ({cause})"
              for t, c, m, p, s, v, cur, cause in worst]
    return "\n".join(lines)


def run_demo(defs: dg.Definitions, instance: dg.DagsterInstance) -> CatchUpReport:
    config_file = Path(settings.config_path())
    if not config_file.exists():
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(settings.bundled("stripemeter.yaml"))
        print(f"wrote the sample config to {config_file}")
    landing = Path(settings.landing_url())
    if not landing.exists() or not any(landing.iterdir()):
        paths = generate(landing, GenSpec(), now=settings.now())
        print(f"generated {len(paths)} sample landing files in {landing}")
    settings.use_environment({"STRIPEMETER_SETTLE_SECONDS": "0"}, only_unset=True)
    now = settings.now().astimezone(UTC)
    report = CatchUpReport()
    with EmulatorServer(port=0) as emulator:
        settings.use_environment({"STRIPE_API_BASE": emulator.url, **DEMO_KEYS})
        # Ingest first: the emulator's customers and subscriptions are the ledger's.
        requests, cursor = tick_sensor(defs, instance, "landing_sensor")
        report.runs += [execute_request(defs, instance, r) for r in requests]
        save_cursor(instance, "landing_sensor", cursor)
        seeded = _seed_emulator(emulator, settings.load_config(), now)
        print(f"stripe emulator on {emulator.url}: {seeded}")
        caught_up = catch_up(defs, instance, settle=False)  # billing periods, then the counters on them
        report.runs += caught_up.runs
        report.released += caught_up.released
        with connect(settings.warehouse_path()) as conn:
            first, last = conn.execute("SELECT strftime(min(day), '%Y-%m-%d'), strftime(max(day), '%Y-%m-%d') "
                                       "FROM daily_usage").fetchone()
        settle = execute_request(defs, instance, dg.RunRequest(
            job_name="pre_invoice_job", tags={RANGE_START: first, RANGE_END: max(last, now.strftime("%Y-%m-%d"))}))
        if _blocked_by_invoice_check(instance, settle):
            print("pre_invoice_job: blocked by the invoice money-at-stake check (as it should be: the demo has "
                  "customers without a subscription)")
            settle = RunOutcome(settle.job, settle.run_id, True, settle.partitions)
        report.runs.append(settle)
        report.runs.append(execute_request(defs, instance, dg.RunRequest(job_name="snapshot_job")))
        connect_accounts = settings.load_config().stripe.accounts or {}
        received = sum(len(emulator.meter_events(account=a)) for a in {None, *connect_accounts.values()})
    print(f"the emulator accepted {received} meter events")
    print(invoice_summary())
    return report


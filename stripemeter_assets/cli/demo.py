"""`stripemeter demo`: the whole pipeline on the embedded defaults, pushing to
the bundled Stripe emulator (never to Stripe: the API base is the emulator's
and the keys are the demo's own test-mode placeholders)."""

from pathlib import Path

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.cli.gen_events import GenSpec, generate
from stripemeter_assets.push.mapping import meter_formula
from stripemeter_assets.cli.runner import CatchUpReport, catch_up, settle_periods
from stripemeter_assets.stripe_emulator import EmulatorServer
from stripemeter_assets.warehouse import connect

# Test-mode placeholders the emulator accepts; they open nothing at Stripe.
DEMO_KEYS = {"STRIPE_API_KEY": "sk_test_stripemeter_demo", "STRIPE_TEST_API_KEY": "sk_test_stripemeter_shadow"}


def _seed_emulator(emulator: EmulatorServer, config: settings.Config) -> int:
    """Creates the meters the config maps and the customers the ledger holds."""
    mapping = config.stripe
    for meter in mapping.meters:
        emulator.create_meter(meter.event_name, formula=meter_formula(config.metric(meter.metric).aggregation))
    with connect(settings.warehouse_path()) as conn:
        refs = [r[0] for r in conn.execute("SELECT DISTINCT customer_ref FROM period_usage").fetchall()]
    customers = {c for c in (mapping.customer_for(ref) for ref in refs) if c}
    for customer in sorted(customers):
        emulator.create_customer(customer)
    return len(customers)


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
    report = catch_up(defs, instance, settle=False)
    with EmulatorServer(port=0) as emulator:
        settings.use_environment({"STRIPE_API_BASE": emulator.url, **DEMO_KEYS})
        customers = _seed_emulator(emulator, settings.load_config())
        print(f"stripe emulator on {emulator.url}: {customers} customers, meters from the config")
        with connect(settings.warehouse_path()) as conn:
            periods = [r[0] for r in conn.execute(
                "SELECT DISTINCT strftime(period_start, '%Y-%m-%d') FROM period_usage ORDER BY 1").fetchall()]
        report.runs.extend(settle_periods(defs, instance, periods))
        received = len(emulator.meter_events())
    print(f"the emulator accepted {received} meter events")
    return report

"""Push fixtures: the warehouse, config and frozen clock of `tests/conftest.py`
(`env`), a real Stripe emulator on 127.0.0.1 with its clock frozen at the
same instant, and a `Push` helper that writes period counters and
materializes `stripe_push` through Dagster."""

from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import pytest
import stripe

from stripemeter_assets.push.assets import stripe_push
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource
from stripemeter_assets.stripe_emulator import EmulatorServer
from tests.conftest import BASE_CONFIG, NOW

TEST_KEY = "sk_test_pushsuite"
LIVE_KEY = "sk_live_pushsuite"
MARCH = datetime(2025, 3, 1)
MARCH_START = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp())
APRIL_START = int(datetime(2025, 4, 1, tzinfo=UTC).timestamp())
PARTITION = "2025-03-01"

DEFAULT_METERS = [
    {"tenant": "*", "metric": "api_calls", "event_name": "api_calls"},
    {"tenant": "*", "metric": "requests", "event_name": "requests"},
    {"tenant": "*", "metric": "storage_gb", "event_name": "storage_peak"},
    {"tenant": "*", "metric": "seats", "event_name": "seats"},
    {"tenant": "*", "metric": "cpu_hours", "event_name": "cpu_hours"},
]
METER_FORMULAS = {"api_calls": "sum", "requests": "sum", "storage_peak": "last", "seats": "last", "cpu_hours": "sum"}


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


class Push:
    def __init__(self, env, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch):
        self.env = env
        self.emu = emu
        self.monkeypatch = monkeypatch
        self.meter_ids: dict[tuple, str] = {}
        self.configure()

    # -- setup ----------------------------------------------------------------
    def configure(self, meters=None, customers=None, accounts=None, metrics=None) -> None:
        config = {**BASE_CONFIG, "metrics": {**BASE_CONFIG["metrics"],
                                             "cpu_hours": {"aggregation": "sum", "unit_scale": 1000},
                                             **(metrics or {})}}
        config["stripe"] = {"meters": DEFAULT_METERS if meters is None else meters,
                            "customers": customers or {}, "accounts": accounts or {}}
        self.env.write_config(config)

    def stripe_scope(self, *, live: bool = False, account: str | None = None, customers=("cus_A", "cus_B")) -> None:
        """Customers and meters on the emulator for one (mode, account)."""
        for customer in customers:
            self.emu.create_customer(customer, livemode=live, account=account)
        for event_name, formula in METER_FORMULAS.items():
            meter = self.emu.create_meter(event_name, formula=formula, livemode=live, account=account)
            self.meter_ids[(live, account, event_name)] = meter["id"]

    def use_key(self, name: str, key: str | None) -> None:
        if key is None:
            self.monkeypatch.delenv(name, raising=False)
        else:
            self.monkeypatch.setenv(name, key)

    def set_now(self, epoch_s: int) -> None:
        """Moves both clocks: STRIPEMETER_NOW and the emulator's."""
        self.env.set_now(iso(epoch_s))
        self.emu.set_clock(epoch_s)

    def usage(self, value, *, metric="api_calls", customer="cus_A", tenant="acme", period=MARCH,
              aggregation=None, count=1) -> None:
        """Sets one period counter in period_usage, as period_usage would."""
        aggregation = aggregation or BASE_CONFIG["metrics"].get(metric, {}).get("aggregation", "sum")
        end = period.replace(year=period.year + period.month // 12, month=period.month % 12 + 1)
        self.env.sql("DELETE FROM period_usage WHERE tenant_id = ? AND metric = ? AND customer_ref = ? "
                     "AND period_start = ?", [tenant, metric, customer, period])
        self.env.sql("INSERT INTO period_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                     [tenant, metric, customer, period, end, aggregation, Decimal(str(value)), count, period])

    # -- running --------------------------------------------------------------
    def run(self, partition: str = PARTITION, *, expect_success: bool = True, **stripe_config):
        options = {"pacing": False, "backoff_base_seconds": 0.001, "backoff_max_seconds": 0.01, **stripe_config}
        result = dg.materialize(
            [stripe_push], partition_key=partition, raise_on_error=False,
            resources={"warehouse": WarehouseResource(), "stripe": StripeResource(**options)},
        )
        assert result.success is expect_success, self.failure_text(result)
        return result

    @staticmethod
    def failure_text(result) -> str:
        return "\n".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)

    @staticmethod
    def metadata(result) -> dict:
        if result.success:
            [mat] = result.asset_materializations_for_node("stripe_push")
            meta = mat.metadata
        else:
            [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
            meta = failure.step_failure_data.user_failure_data.metadata
        return {k: v.value for k, v in meta.items()}

    # -- looking --------------------------------------------------------------
    def client(self, *, live: bool = False, account: str | None = None) -> stripe.StripeClient:
        return stripe.StripeClient(LIVE_KEY if live else TEST_KEY, base_addresses={"api": self.emu.url},
                                   stripe_account=account, max_network_retries=0)

    def settle(self) -> None:
        """Lets Stripe's eventually consistent summaries catch up (the emulator's lag)."""
        self.emu.advance_clock(self.emu.state.summary_lag_seconds)

    def stripe_total(self, event_name="api_calls", customer="cus_A", *, live=False, account=None,
                     start=MARCH_START, end=APRIL_START) -> int:
        """Stripe's own total once settled, through the SDK's event summaries."""
        self.settle()
        page = self.client(live=live, account=account).v1.billing.meters.event_summaries.list(
            self.meter_ids[(live, account, event_name)], {"customer": customer, "start_time": start, "end_time": end})
        return sum(item.aggregated_value for item in page.data)

    def event_posts(self) -> list[dict]:
        return [r for r in self.emu.requests() if r["method"] == "POST" and r["path"] == "/v1/billing/meter_events"]

    def events(self, *, live=False, account=None, event_name=None) -> list[dict]:
        return [e for e in self.emu.meter_events(livemode=live, account=account)
                if event_name is None or e["event_name"] == event_name]

    def pushes(self, where: str = "TRUE") -> list[dict]:
        with_cols = self.env.sql(f"SELECT * FROM stripe_pushes WHERE {where} ORDER BY created_at, revision")
        cols = [r[0] for r in self.env.sql("SELECT column_name FROM (DESCRIBE stripe_pushes)")]
        return [dict(zip(cols, row)) for row in with_cols]


@pytest.fixture
def emu(env):
    with EmulatorServer(now=NOW) as server:
        yield server


@pytest.fixture
def push(env, emu, monkeypatch) -> Push:
    monkeypatch.setenv("STRIPE_API_BASE", emu.url)
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
    for alias in ("STRIPE_SECRET_KEY", "STRIPE_TEST_SECRET_KEY"):
        monkeypatch.delenv(alias, raising=False)
    p = Push(env, emu, monkeypatch)
    p.stripe_scope()
    return p


def client_delete_customer(push: Push, customer: str, *, live: bool = False, account: str | None = None) -> None:
    """Deletes a customer on Stripe, through the SDK."""
    push.client(live=live, account=account).v1.customers.delete(customer)

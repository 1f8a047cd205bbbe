"""Reconciliation fixtures: the push suite's emulator, warehouse, config and
frozen clock (`tests/push/conftest.py`), plus a helper that materializes
`stripe_push` → `reconciliation_report` (with its blocking check) through
Dagster, the real stripe SDK and the emulator."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from stripemeter_assets.push.assets import stripe_push
from stripemeter_assets.reconcile.assets import reconciliation_report, reconciliation_within_epsilon
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource
from tests.push.conftest import PARTITION, emu, push  # noqa: F401  (fixtures reused)

NOW_S = int(datetime(2025, 3, 20, 12, tzinfo=UTC).timestamp())
SETTLED_S = NOW_S + 61 * 60  # past the 60 min settle delay of Stripe's summaries (stripe.summary_settle_minutes)


class Recon:
    def __init__(self, push, reports: Path):
        self.push = push
        self.env = push.env
        self.emu = push.emu
        self.reports = reports

    @staticmethod
    def resources(**stripe_config) -> dict:
        options = {"pacing": False, "backoff_base_seconds": 0.001, "backoff_max_seconds": 0.01, **stripe_config}
        return {"warehouse": WarehouseResource(), "stripe": StripeResource(**options)}

    def run(self, partition: str = PARTITION, *, expect_success: bool = True, with_push: bool = True,
            run_config: dict | None = None, **stripe_config):
        assets = [stripe_push, reconciliation_report, reconciliation_within_epsilon] if with_push else [
            reconciliation_report, reconciliation_within_epsilon]
        result = dg.materialize(
            assets, partition_key=partition, raise_on_error=False,
            resources=self.resources(**stripe_config), run_config=run_config or {},
        )
        assert result.success is expect_success, self.push.failure_text(result)
        return result

    def rows(self, where: str = "TRUE") -> list[dict]:
        cur = self.env.sql(f"SELECT * FROM reconciliation WHERE {where} ORDER BY tenant_id, customer_ref, metric")
        cols = [r[0] for r in self.env.sql("SELECT column_name FROM (DESCRIBE reconciliation)")]
        return [dict(zip(cols, row)) for row in cur]

    def by_counter(self) -> dict[tuple[str, str], dict]:
        return {(r["customer_ref"], r["metric"]): r for r in self.rows()}

    @staticmethod
    def metadata(result) -> dict:
        [mat] = result.asset_materializations_for_node("reconciliation_report")
        return {k: v.value for k, v in mat.metadata.items()}

    @staticmethod
    def check(result) -> dg.AssetCheckEvaluation:
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    def meter_posts(self) -> list[dict]:
        return self.push.event_posts()


@pytest.fixture
def recon(push, tmp_path, monkeypatch) -> Recon:  # noqa: F811
    reports = tmp_path / "reports"
    monkeypatch.setenv("STRIPEMETER_REPORTS", str(reports))
    return Recon(push, reports)

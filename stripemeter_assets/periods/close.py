"""When a billing period closes: at `period_end + G`, G the invoice finalization grace
period of the Stripe account the counter goes to (DESIGN §3 "Closed periods").

Stripe finalizes the period's invoice then; usage it receives later is on no invoice, so a
change after that is never pushed into the period (it is carried forward), whatever the
lateness window L. This module is the rule's one home in Python; `sql/periods/macros.sql`
(`sm_closes_at`) is its twin for SQL, fed by `load_period_grace`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache

import duckdb

from stripemeter_assets.push.mapping import PLATFORM
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import run_script

_MICROSECOND = timedelta(microseconds=1)
log = logging.getLogger("stripemeter")


@cache
def _report_lateness_beyond_grace(findings: tuple[str, ...]) -> None:
    log.warning("lateness window longer than the invoice grace period (valid: late data still folds into the "
                "local counters; after period_end + G it is carried forward, never pushed into the closed "
                "period): %s", "; ".join(findings))


class Grace:
    """The grace period G of each (tenant, metric)'s Stripe account, and the close rule."""

    def __init__(self, config: Config):
        self.config = config
        self.mapping = config.stripe
        self._cache: dict[tuple[str, str], timedelta] = {}
        findings = tuple(config.lateness_beyond_grace())
        if findings:
            _report_lateness_beyond_grace(findings)  # once per process and config

    def account(self, tenant: str, metric: str) -> str:
        """The account a (tenant, metric) counter is billed on (`platform` when unmapped)."""
        meter = self.mapping.meter_for(tenant, metric)
        if meter is None:
            return (self.mapping.accounts or {}).get(tenant) or PLATFORM
        return self.mapping.account_for(tenant, meter)

    def of(self, tenant: str, metric: str) -> timedelta:
        key = (tenant, metric)
        if key not in self._cache:
            account = self.account(tenant, metric)
            self._cache[key] = self.config.invoice_grace(None if account == PLATFORM else account)
        return self._cache[key]

    def closes_at(self, tenant: str, metric: str, period_end: datetime) -> datetime:
        return period_end + self.of(tenant, metric)

    def is_closed(self, tenant: str, metric: str, period_end: datetime, now: datetime) -> bool:
        return now >= self.closes_at(tenant, metric, period_end)


def load_period_grace(conn: duckdb.DuckDBPyConnection, config: Config, pairs: list[tuple[str, str]]) -> None:
    """TEMP `period_grace(tenant_id, metric, grace_us)` for `pairs`, and the SQL macros."""
    run_script(conn, "periods/macros.sql")
    conn.execute("CREATE OR REPLACE TEMP TABLE period_grace (tenant_id VARCHAR, metric VARCHAR, grace_us BIGINT, "
                 "PRIMARY KEY (tenant_id, metric))")
    grace = Grace(config)
    rows = [(t, m, int(grace.of(t, m) / _MICROSECOND)) for t, m in sorted(set(pairs))]
    if rows:
        conn.executemany("INSERT INTO period_grace VALUES (?, ?, ?)", rows)

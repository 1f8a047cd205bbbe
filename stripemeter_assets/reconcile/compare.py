"""Statuses, drift and causes: pure functions, no I/O.

Everything is compared in the units Stripe holds: the push's scaled integer
units (`floor(unit_scale × value)`), so a fractional metric never shows a
rounding "drift" the push itself could not avoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from stripemeter_assets.push.meter_errors import cause as error_cause

OK = "ok"
DRIFT = "drift"
PENDING = "pending"
UNMAPPED = "unmapped"
STRIPE_ERROR = "stripe_error"
LATE_PENDING = "late_pending"
STATUSES = (OK, DRIFT, PENDING, UNMAPPED, STRIPE_ERROR, LATE_PENDING)

DEFAULT_EPSILON = Decimal("0.005")
DEFAULT_SETTLE = timedelta(minutes=60)  # stripe.summary_settle_minutes


@dataclass
class Row:
    """One counter of the period, as it goes into `reconciliation`."""

    tenant_id: str
    customer_ref: str
    metric: str
    period_start: datetime
    period_end: datetime
    unit_scale: int
    local_value: Decimal
    local_total: int
    stripe_customer: str | None = None
    event_name: str | None = None
    account: str | None = None
    mode: str | None = None
    shadow: bool = False
    meter_id: str | None = None
    meter_formula: str | None = None
    pushed_total: int | None = None
    stripe_total: int | None = None
    stripe_error: str | None = None
    pending_intents: int = 0
    last_acked_at: datetime | None = None
    latest_status: str | None = None
    failed_error: str | None = None
    rejected_error: str | None = None  # the latest error report naming one of its intents
    verifying: str | None = None       # codes of error reports that did not name every failure
    too_old: bool = False
    late_pending: int = 0
    window_start: int | None = None
    window_end: int | None = None
    drift: Decimal | None = None
    relative_drift: Decimal | None = None
    status: str = OK
    cause: str = ""
    corrected: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def mapped(self) -> bool:
        return self.stripe_customer is not None and self.event_name is not None

    @property
    def label(self) -> str:
        return f"{self.tenant_id}/{self.customer_ref}/{self.metric}"


def drift(local: int, stripe: int | None) -> tuple[Decimal | None, Decimal | None]:
    """(|local − stripe|, |local − stripe| / |local|); relative is 1 (100 %)
    when local is 0 and Stripe is not, 0 when both are 0."""
    if stripe is None:
        return None, None
    absolute = Decimal(abs(local - stripe))
    if local == 0:
        return absolute, Decimal(0) if absolute == 0 else Decimal(1)
    return absolute, absolute / Decimal(abs(local))


def classify(row: Row, *, epsilon: Decimal, now: datetime, settle: timedelta) -> Row:
    """Sets drift, relative_drift, status and cause. Precedence: unmapped,
    stripe_error, pending (in flight / settling), late_pending, then drift
    against ε (ok / drift)."""
    row.drift, row.relative_drift = drift(row.local_total, row.stripe_total)
    if not row.mapped:
        row.status, row.cause = UNMAPPED, unmapped_cause("meter" if row.event_name is None else "customer")
        return row
    if row.latest_status in NOT_IN_STRIPE and row.pending_intents == 0:
        row.status, row.cause = STRIPE_ERROR, not_in_stripe_cause(row)
        return row
    if row.stripe_error is not None:
        row.status, row.cause = STRIPE_ERROR, summary_error_cause(row.stripe_error)
        return row
    if row.pending_intents:
        row.status, row.cause = PENDING, f"intents in flight: {row.pending_intents} push intent(s) not acknowledged yet"
        return row
    within = row.drift is not None and row.relative_drift is not None and row.relative_drift <= epsilon
    if row.last_acked_at is not None and now - row.last_acked_at < settle and not within:
        row.status, row.cause = PENDING, (
            f"intents in flight: acknowledged {int((now - row.last_acked_at).total_seconds())} s ago, "
            f"inside the {int(settle.total_seconds())} s settle delay of Stripe's summaries")
        return row
    if row.late_pending:
        row.status = LATE_PENDING
        row.cause = (f"late events beyond the window: {row.late_pending} late event(s) not applied yet, "
                     f"the local total will change")
        if not within:
            row.cause += f"; meanwhile {direction(row)}"
        return row
    if within:
        row.status, row.cause = OK, "within tolerance" if row.drift else "matches Stripe"
        if row.verifying:
            row.cause += f"; verified against Stripe's error report ({row.verifying}) that named no event of it"
        return row
    row.status, row.cause = DRIFT, direction(row)
    if row.verifying:
        codes = ", ".join(f"{c} ({error_cause(c)})" for c in row.verifying.split(", "))
        row.cause = (f"Stripe's error report counted failed events it did not name ({codes}); its settled total "
                     f"shows them: {row.cause}")
    if row.too_old:
        row.cause += "; the period is older than Stripe accepts (35 days), so it was not pushed"
    return row


def unmapped_cause(what: str) -> str:
    """`what`: meter (no meter for the (tenant, metric)) or customer (no Stripe customer for the ref)."""
    missing = "meter for this (tenant, metric)" if what == "meter" else "customer for this customer_ref"
    return f"unmapped {what}: no Stripe {missing} in the config's stripe: section; nothing is pushed"


def summary_error_cause(error: str) -> str:
    return f"Stripe summaries call failed: {error}"


NOT_IN_STRIPE = ("failed", "rejected_by_stripe", "refused_meter_config", "refused_unknown_customer")


def not_in_stripe_cause(row: Row) -> str:
    error = row.failed_error or "no detail"
    parts = []
    if row.rejected_error:
        code = row.rejected_error.split(":", 1)[0]
        parts.append(f"Stripe dropped pushed usage after answering 200: error report {code} ({error_cause(code)}); "
                     "not counted as pushed, pushed again once the cause is fixed")
    if row.latest_status == "failed":
        parts.append(f"Stripe rejected events: {error}")
    elif row.latest_status != "rejected_by_stripe":
        parts.append(f"not sent ({row.latest_status}): {error}")
    return "; ".join(parts)


def direction(row: Row) -> str:
    assert row.stripe_total is not None
    gap = row.local_total - row.stripe_total
    if gap > 0:
        return f"under-report: Stripe holds {gap} unit(s) less than the local total"
    return f"over-report: Stripe holds {-gap} unit(s) more than the local total (alert only, never corrected)"


def is_under_report(row: Row) -> bool:
    """An under-report auto-correct may re-send: drift beyond ε, Stripe
    below local, nothing in flight or settling."""
    return row.status == DRIFT and row.stripe_total is not None and row.stripe_total < row.local_total

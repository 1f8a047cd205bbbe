"""Planning: which push intents the current counters call for.

Pure functions over what the outbox loaded (counters, push state, intents
in flight, open carry-forwards); no I/O. The rules (DESIGN §3, §4):

- sum/count counters push `floor(scale × total) − pushed_total − in_flight`
  (signed), so Σ pushed equals the scaled total exactly, whatever the number
  of increments: rounding never accumulates.
- max/last counters push the scaled value when it differs from the latest
  pushed or in-flight value, with a timestamp later than any earlier push.
- A closed period (now ≥ period_end + the account's invoice grace period,
  `periods.close`) is held at its total at close (current value minus the
  changes recorded in `period_adjustments`); those changes travel as
  `carry_forward` intents into the customer's period containing now.
- Event timestamps lie inside their period, ≥ 5 min before now and within
  Stripe's 35 days (less a margin for retries); an older period is
  `skipped_too_old`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from stripemeter_assets.periods.close import Grace
from stripemeter_assets.periods.lookup import PeriodIndex
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import SUM_AGGREGATIONS, StripeMapping, Target, meter_formula
from stripemeter_assets.settings import Config, epoch, naive

SETTLE_SECONDS = 5 * 60                  # event timestamps at least this far before now
MAX_AGE_SECONDS = 35 * 86_400            # Stripe refuses older meter events
AGE_MARGIN_SECONDS = 3_600               # room for a retry later in the run, and clock skew
IDENTIFIER_PREFIX = "smp_"

# Statuses that bind (the intent was, or may have been, sent) and those a
# later plan simply replaces.
BINDING = ("pending", "acknowledged", "failed")
NON_BINDING = ("planned", "skipped_too_old", "refused_shadow", "refused_meter_config", "refused_unknown_customer")


@dataclass(frozen=True)
class CounterKey:
    account: str
    mode: str
    tenant_id: str
    customer_ref: str
    metric: str
    period_start: datetime  # naive UTC


@dataclass(frozen=True)
class CounterRow:
    """A period counter as stored in period_usage, with the changes recorded
    after its period closed."""

    tenant_id: str
    metric: str
    customer_ref: str
    period_start: datetime
    period_end: datetime
    aggregation: str
    value: Decimal
    since_close: Decimal = Decimal(0)


@dataclass
class PushState:
    stripe_customer: str
    event_name: str
    pushed_total: int = 0
    carried_in: int = 0
    last_value: int | None = None
    last_ts: int | None = None
    revision: int = 0


@dataclass
class InFlight:
    """Pending intents of one counter: already on their way."""

    delta_sum: int = 0
    carry_sum: int = 0
    latest_value: int | None = None  # value intents: the one with the greatest revision
    max_ts: int | None = None
    max_revision: int = 0


@dataclass(frozen=True)
class OpenAdjustment:
    tenant_id: str
    metric: str
    customer_ref: str
    origin_period: datetime
    aggregation: str
    delta: Decimal
    recorded_at: datetime
    run_id: str


@dataclass
class Intent:
    identifier: str
    account: str
    mode: str
    shadow: bool
    tenant_id: str
    customer_ref: str
    stripe_customer: str
    metric: str
    event_name: str
    meter_id: str | None
    meter_formula: str
    unit_scale: int
    period_start: datetime
    period_end: datetime
    revision: int
    kind: str                      # delta | value | carry_forward
    origin_period: datetime | None
    value: int
    target_total: int
    event_ts: int
    status: str
    adjustments: tuple[OpenAdjustment, ...] = ()
    attempts: int = 0
    created_at: datetime | None = None
    last_error: str | None = None

    @property
    def key(self) -> CounterKey:
        return CounterKey(self.account, self.mode, self.tenant_id, self.customer_ref, self.metric, self.period_start)

    @property
    def stripe_account(self) -> str | None:
        return None if self.account == "platform" else self.account


@dataclass
class Plan:
    intents: list[Intent] = field(default_factory=list)
    unmapped: list[tuple[str, str, str]] = field(default_factory=list)   # (tenant, metric, customer_ref)
    deferred: int = 0              # not pushable yet (period began < 5 min ago, or ts would not grow)
    carry_unmapped: int = 0        # open adjustments of unmapped counters
    carry_not_summable: int = 0    # open adjustments of max/last counters: nothing to carry
    settled: list[tuple[OpenAdjustment, datetime]] = field(default_factory=list)  # floor(scale·Δ) = 0

    def count(self, status: str, kind: str | None = None) -> int:
        return sum(1 for i in self.intents if i.status == status and (kind is None or i.kind == kind))


def intent_identifier(account: str, mode: str, tenant: str, customer_ref: str, metric: str,
                      period_start: datetime, revision: int) -> str:
    """Deterministic: one (counter, revision) names exactly one push. Fields
    joined with U+001F, which none of them can contain ambiguously."""
    parts = (account, mode, tenant, customer_ref, metric, period_start.strftime("%Y-%m-%dT%H:%M:%SZ"), str(revision))
    return IDENTIFIER_PREFIX + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def scaled(value: Decimal, scale: int) -> int:
    """floor(scale × value): Stripe takes whole numbers only."""
    return int((Decimal(value) * scale).to_integral_value(rounding=ROUND_FLOOR))


def mode_for(target: Target, keys: KeyStatus) -> str:
    return mode_of(target.shadow, keys)


def mode_of(shadow: bool, keys: KeyStatus) -> str:
    """A shadow mapping is pushed in test mode only; the others in the primary key's mode."""
    return "test" if shadow else (keys.primary_mode or "live")


def status_for(target: Target, keys: KeyStatus, dry_run: bool) -> str:
    if target.shadow:
        if not keys.test_present:
            return "refused_shadow"  # never fall back to the live key
        return "planned" if dry_run else "pending"
    return "planned" if dry_run or not keys.primary_present else "pending"


class _Planner:
    def __init__(self, config: Config, mapping: StripeMapping, keys: KeyStatus, now: datetime, dry_run: bool,
                 states: dict[CounterKey, PushState], in_flight: dict[CounterKey, InFlight], periods: PeriodIndex):
        self.config = config
        self.periods = periods
        self.grace = Grace(config)
        self.mapping = mapping
        self.keys = keys
        self.now = naive(now)
        self.now_s = epoch(self.now)
        self.dry_run = dry_run
        self.states = states
        self.in_flight = in_flight
        self.next_rev: dict[CounterKey, int] = {}
        self.plan = Plan()

    def _revision(self, key: CounterKey) -> int:
        if key not in self.next_rev:
            state = self.states.get(key)
            fl = self.in_flight.get(key)
            self.next_rev[key] = max(state.revision if state else 0, fl.max_revision if fl else 0)
        self.next_rev[key] += 1
        return self.next_rev[key]

    def _intent(self, target: Target, key: CounterKey, *, metric: str, period_end: datetime, aggregation: str,
                kind: str, value: int, target_total: int, event_ts: int, status: str,
                origin: datetime | None = None, adjustments: tuple[OpenAdjustment, ...] = ()) -> Intent:
        revision = self._revision(key)
        return Intent(
            identifier=intent_identifier(key.account, key.mode, key.tenant_id, key.customer_ref, key.metric,
                                         key.period_start, revision),
            account=key.account, mode=key.mode, shadow=target.shadow, tenant_id=key.tenant_id,
            customer_ref=key.customer_ref, stripe_customer=target.stripe_customer, metric=metric,
            event_name=target.event_name, meter_id=target.meter_id, meter_formula=meter_formula(aggregation),
            unit_scale=self.config.metric(metric).unit_scale, period_start=key.period_start, period_end=period_end,
            revision=revision, kind=kind, origin_period=origin, value=value, target_total=target_total,
            event_ts=event_ts, status=status, adjustments=adjustments, created_at=self.now,
        )

    def _timestamp(self, period_start: datetime, period_end: datetime, after: int | None) -> tuple[int | None, bool]:
        """(event ts, too_old): the latest allowed second of the period, moved
        past `after`; None when no allowed second exists yet. Only the period's
        whole minutes are used: meter event summaries are minute-aligned, so a
        period edge at 13:42:11 shares its minute with the neighbouring period."""
        latest_ok = self.now_s - SETTLE_SECONDS
        first = -(-epoch(period_start) // 60) * 60
        end = epoch(period_end) // 60 * 60
        ts = min(end - 1, latest_ok)
        if ts < first:
            return None, False
        if ts < self.now_s - MAX_AGE_SECONDS + AGE_MARGIN_SECONDS:
            return ts, True
        if after is not None and ts <= after:
            ts = after + 1
            if ts > latest_ok or ts >= end:
                return None, False
        return ts, False

    def counter(self, row: CounterRow, target: Target | None, key: CounterKey | None) -> None:
        if target is None or key is None:
            self.plan.unmapped.append((row.tenant_id, row.metric, row.customer_ref))
            return
        scale = self.config.metric(row.metric).unit_scale
        closed = self.grace.is_closed(row.tenant_id, row.metric, naive(row.period_end), self.now)
        # A closed period keeps its total at close; later changes are carried forward.
        value = Decimal(row.value) - (Decimal(row.since_close) if closed else 0)
        state = self.states.get(key)
        fl = self.in_flight.get(key) or InFlight()
        status = status_for(target, self.keys, self.dry_run)
        if row.aggregation in SUM_AGGREGATIONS:
            total = scaled(value, scale)
            pushed = (state.pushed_total if state else 0) + fl.delta_sum
            delta = total - pushed
            if delta == 0:
                return
            ts, too_old = self._timestamp(key.period_start, naive(row.period_end), None)
            kind, amount, target_total = "delta", delta, total
        else:
            current = scaled(value, scale)
            previous = fl.latest_value if fl.latest_value is not None else (state.last_value if state else None)
            if current == previous or (previous is None and current == 0):
                return
            after = max((t for t in (state.last_ts if state else None, fl.max_ts) if t is not None), default=None)
            ts, too_old = self._timestamp(key.period_start, naive(row.period_end), after)
            kind, amount, target_total = "value", current, current
        if ts is None:
            self.plan.deferred += 1
            return
        self.plan.intents.append(self._intent(
            target, key, metric=row.metric, period_end=naive(row.period_end), aggregation=row.aggregation, kind=kind,
            value=amount, target_total=target_total, event_ts=ts, status="skipped_too_old" if too_old else status))

    def carry_forwards(self, adjustments: list[OpenAdjustment]) -> None:
        groups: dict[tuple, list[OpenAdjustment]] = defaultdict(list)
        for adj in adjustments:
            groups[(adj.tenant_id, adj.metric, adj.customer_ref, naive(adj.origin_period))].append(adj)
        for (tenant, metric, customer_ref, origin), group in sorted(groups.items()):
            # Into the customer's own open period (its subscription's, else the calendar month).
            current, current_end = self.periods.containing((tenant, metric, customer_ref), self.now)
            if any(a.aggregation not in SUM_AGGREGATIONS for a in group):
                self.plan.carry_not_summable += len(group)
                continue
            target = self.mapping.target(tenant, metric, customer_ref)
            if target is None:
                self.plan.carry_unmapped += len(group)
                continue
            status = status_for(target, self.keys, self.dry_run)
            value = scaled(sum((Decimal(a.delta) for a in group), Decimal(0)), self.config.metric(metric).unit_scale)
            if value == 0:
                if status == "pending":
                    self.plan.settled.extend((a, current) for a in group)
                continue
            ts, _ = self._timestamp(current, current_end, None)
            if ts is None:
                self.plan.deferred += 1
                continue
            key = CounterKey(target.account, mode_for(target, self.keys), tenant, customer_ref, metric, current)
            state = self.states.get(key)
            fl = self.in_flight.get(key) or InFlight()
            carried = (state.carried_in if state else 0) + fl.carry_sum + value
            self.plan.intents.append(self._intent(
                target, key, metric=metric, period_end=current_end, aggregation=group[0].aggregation,
                kind="carry_forward", value=value, target_total=carried, event_ts=ts, status=status, origin=origin,
                adjustments=tuple(group)))


def plan(*, counters: list[CounterRow], states: dict[CounterKey, PushState], in_flight: dict[CounterKey, InFlight],
         adjustments: list[OpenAdjustment], config: Config, mapping: StripeMapping, keys: KeyStatus,
         now: datetime, dry_run: bool = False, vanished: Iterable[CounterKey] = (),
         period_index: PeriodIndex | None = None) -> Plan:
    """The intents for `counters`, for the counters of the `vanished` push
    records (no period_usage row any more: they count zero) and for the open
    carry-forwards."""
    index = period_index or PeriodIndex()
    planner = _Planner(config, mapping, keys, now, dry_run, states, in_flight, index)
    for row in counters:
        target = mapping.target(row.tenant_id, row.metric, row.customer_ref)
        key = None if target is None else CounterKey(target.account, mode_for(target, keys), row.tenant_id,
                                                     row.customer_ref, row.metric, naive(row.period_start))
        planner.counter(row, target, key)
    for key in vanished:
        target = mapping.target(key.tenant_id, key.metric, key.customer_ref)
        if target is None or (target.account, mode_for(target, keys)) != (key.account, key.mode):
            continue  # a push record of an earlier mapping: not this counter's target any more
        planner.counter(vanished_counter(key, index, config), target, key)
    planner.carry_forwards(adjustments)
    return planner.plan


def vanished_counter(key: CounterKey, index: PeriodIndex, config: Config) -> CounterRow:
    """A counter with a push record but no period_usage row now counts zero, over its own period."""
    end = index.end_of((key.tenant_id, key.metric, key.customer_ref), key.period_start)
    return CounterRow(key.tenant_id, key.metric, key.customer_ref, key.period_start, end,
                      config.metric(key.metric).aggregation, Decimal(0))



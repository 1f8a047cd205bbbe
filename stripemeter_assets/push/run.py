"""One push run (DESIGN §4), in protocol order:

0. Stripe's meter error reports are pulled and applied (`meter_errors`):
   intents Stripe dropped after its 200 stop counting as pushed;
1. intents still `pending` from earlier runs are sent again first, with
   their own identifiers; those older than 23 h are first checked against
   Stripe's event summaries (Stripe forgets identifiers after 24 h, so a
   blind re-send could double);
2. the plan for the periods (and open carry-forwards) is computed, counting
   pending intents as in flight, and written in one transaction before
   anything is sent;
3. new intents are sent; every outcome is stored (acknowledged with the new
   pushed total in one transaction; failures; attempts);
4. the caller fails the run when anything is left unacknowledged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stripemeter_assets.push import meter_errors, outbox, planner
from stripemeter_assets.push.client import GatewayFactory, KeyStatus, PushCallError, scrub
from stripemeter_assets.push.mapping import StripeMapping
from stripemeter_assets.push.outbox import Intent, Outcome
from stripemeter_assets.push.pacing import Pacer, RetryPolicy
from stripemeter_assets.settings import epoch, naive
from stripemeter_assets.push.sender import Sender
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import transaction

MAX_SUBSET_SEARCH = 16  # old pending intents of one window we try to match against Stripe's total
MAX_ERRORS_REPORTED = 5
EXAMPLES = 5  # counters named in the report, per kind (unmapped, too large)


@dataclass(frozen=True)
class PushOptions:
    dry_run: bool = False
    pacing: bool = True
    rate_fraction: float = 0.8
    retry: RetryPolicy = RetryPolicy()
    workers: int = 4
    reconcile_after: timedelta = timedelta(hours=23)


@dataclass
class PushReport:
    dry_run: bool = False             # nothing of the primary mappings is sent (option, or no STRIPE_API_KEY)
    dry_run_option: bool = False
    modes: list[str] = field(default_factory=list)
    resent: int = 0                   # pending intents of earlier runs sent again
    reconciled: int = 0               # acknowledged from Stripe's summaries, without a send
    sent: int = 0                     # intents at least one call was made for
    acknowledged: int = 0
    failed: int = 0
    refused_meter_config: int = 0     # checked before sending: the meter cannot bill this counter
    refused_unknown_customer: int = 0 # checked before sending: Stripe has no such customer
    planned: int = 0
    refused_shadow: int = 0
    skipped_too_old: int = 0
    deferred: int = 0
    pending_left: int = 0
    carry_forwards_planned: int = 0
    carry_forwards_pushed: int = 0
    carry_forwards_unmapped: int = 0
    carry_forwards_not_summable: int = 0
    unmapped_count: int = 0
    unmapped: list[tuple[str, str, str]] = field(default_factory=list)  # the first EXAMPLES
    too_large_count: int = 0          # units beyond a meter event's whole number: not pushed
    too_large: list[tuple[str, str, str]] = field(default_factory=list)  # the first EXAMPLES
    accounts_skipped: list[str] = field(default_factory=list)  # "mode/account: reason", breaker open
    error_reports: int = 0            # Stripe meter error reports pulled in this run
    rejected_by_stripe: int = 0       # intents Stripe's reports named: no longer counted as pushed
    under_verification: int = 0       # intents of a window whose report did not name every failure
    stripe_calls: int = 0
    retries: int = 0
    shadow: str = "no shadow mappings"
    errors: list[str] = field(default_factory=list)

    def absorb(self, outcomes: list[Outcome], intents: dict[str, Intent], *, reconciled: bool = False) -> None:
        for o in outcomes:
            self.sent += o.attempts > 0
            if o.outcome == "acknowledged":
                if reconciled:
                    self.reconciled += 1
                else:
                    self.acknowledged += 1
                self.carry_forwards_pushed += intents[o.identifier].kind == "carry_forward"
            elif o.outcome == "failed":
                self.failed += 1
            elif o.outcome == "refused_meter_config":
                self.refused_meter_config += 1
            elif o.outcome == "refused_unknown_customer":
                self.refused_unknown_customer += 1
            if o.outcome != "acknowledged" and o.note and len(self.errors) < MAX_ERRORS_REPORTED:
                self.errors.append(scrub(f"{o.identifier}: {o.note}"))

    @property
    def incomplete(self) -> bool:
        """Something billable is not (yet) in Stripe. Intents left pending
        count unless sending was switched off on purpose (`dry_run` option)."""
        return (self.failed > 0 or self.refused_meter_config > 0 or self.refused_unknown_customer > 0
                or self.too_large_count > 0 or (self.pending_left > 0 and not self.dry_run_option))

    def summary(self) -> str:
        too_large = (f"{self.too_large_count} counter(s) too large for a meter event, not pushed "
                     f"({', '.join('/'.join(c) for c in self.too_large)}); " if self.too_large_count else "")
        return scrub(f"{too_large}{self.pending_left} intent(s) left pending, {self.failed} failed, "
                     f"{self.refused_meter_config + self.refused_unknown_customer} refused before sending; "
                     f"first errors: {'; '.join(self.errors) or 'none'}")

    def metadata(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "modes": ", ".join(self.modes) or "none",
            "intents_resent": self.resent,
            "intents_sent": self.sent,
            "intents_acknowledged": self.acknowledged,
            "intents_acknowledged_by_reconciliation": self.reconciled,
            "intents_planned": self.planned,
            "intents_failed": self.failed,
            "intents_refused_meter_config": self.refused_meter_config,
            "intents_refused_unknown_customer": self.refused_unknown_customer,
            "intents_refused_shadow": self.refused_shadow,
            "intents_skipped_too_old": self.skipped_too_old,
            "intents_pending_left": self.pending_left,
            "counters_deferred": self.deferred,
            "accounts_skipped": scrub("; ".join(self.accounts_skipped)) or "none",
            "stripe_error_reports": self.error_reports,
            "intents_rejected_by_stripe": self.rejected_by_stripe,
            "intents_under_verification": self.under_verification,
            "stripe_calls": self.stripe_calls,
            "retries": self.retries,
            "unmapped_counters": self.unmapped_count,
            "unmapped_examples": ", ".join("/".join(u) for u in self.unmapped) or "none",
            "counters_too_large": self.too_large_count,
            "too_large_examples": ", ".join("/".join(c) for c in self.too_large) or "none",
            "carry_forwards_pushed": self.carry_forwards_pushed,
            "carry_forwards_planned": self.carry_forwards_planned,
            "carry_forwards_unmapped": self.carry_forwards_unmapped,
            "carry_forwards_not_summable": self.carry_forwards_not_summable,
            "shadow": self.shadow,
            "errors": scrub("; ".join(self.errors)) or "none",
        }


class NotSettled(Exception):
    """Stripe's summary for a window cannot be trusted yet."""


class _Run:
    def __init__(self, conn: duckdb.DuckDBPyConnection, gateways: GatewayFactory, options: PushOptions,
                 now: datetime, log: logging.Logger | Any, settle: timedelta):
        self.conn = conn
        self.settle = settle
        self.gateways = gateways
        self.options = options
        self.now = naive(now)
        self.log = log
        self.report = PushReport()
        self.pacer = Pacer(options.pacing, options.rate_fraction)
        self.sender = Sender(gateways, pacer=self.pacer, policy=options.retry, workers=options.workers)
        self.intents: dict[str, Intent] = {}
        self._meter_ids: dict[tuple, str | None] = {}

    def store(self, outcomes: list[Outcome], *, reconciled: bool = False) -> None:
        with transaction(self.conn):
            outbox.record_outcomes(self.conn, outcomes)
        self.report.absorb(outcomes, self.intents, reconciled=reconciled)

    def send(self, intents: list[Intent]) -> None:
        for i in intents:
            self.intents[i.identifier] = i
        if intents:
            self.sender.send(intents, self.store)

    # -- step 0 -------------------------------------------------------------
    def pull_error_reports(self) -> None:
        """What Stripe reported about events it had answered 200 for, before
        anything is re-sent or planned (rejected intents are planned again)."""
        pulled = meter_errors.pull_error_reports(self.conn, self.gateways, self.pacer, self.now)
        self.report.error_reports = pulled.reports
        self.report.rejected_by_stripe = pulled.rejected
        self.report.under_verification = pulled.verifying
        self.report.errors.extend(pulled.failures[:MAX_ERRORS_REPORTED])
        if pulled.rejected or pulled.verifying:
            self.log.warning(f"stripe_push: Stripe's error reports rejected {pulled.rejected} acknowledged "
                             f"intent(s) and put {pulled.verifying} under verification")

    # -- step 1 -------------------------------------------------------------
    def resend_pending(self) -> None:
        pending = outbox.load_pending(self.conn)
        if not pending:
            return
        for i in pending:
            self.intents[i.identifier] = i
        to_send = self.check_old(pending)
        self.report.resent += len(to_send)
        self.log.info(f"stripe_push: re-sending {len(to_send)} pending intent(s) from earlier runs")
        self.send(to_send)

    def check_old(self, pending: list[Intent]) -> list[Intent]:
        """Intents older than `reconcile_after` are re-sent only when Stripe's
        summary for their counter window shows they were not delivered."""
        cutoff = self.now - self.options.reconcile_after
        old = {i.identifier for i in pending if i.created_at is not None and naive(i.created_at) <= cutoff}
        if not old:
            return pending
        groups: dict[tuple, list[Intent]] = defaultdict(list)
        for i in pending:
            # One Stripe window: (mode, account, customer, meter, period), whichever tenant or key.
            groups[(i.mode, i.account, i.stripe_customer, i.event_name, i.period_start)].append(i)
        keep: list[Intent] = []
        checked: list[Outcome] = []
        for group in groups.values():
            old_here = [i for i in group if i.identifier in old]
            if not old_here:
                keep.extend(group)
                continue
            if len(old_here) < len(group):
                # Younger intents are re-sent now (their identifiers dedupe); the
                # old ones are checked once those are acknowledged and settled.
                checked += [Outcome(i.identifier, "pending", note="not re-sent: waiting for younger intents of its "
                                    "window to be acknowledged before reading Stripe's summary") for i in old_here]
                keep.extend(i for i in group if i.identifier not in old)
                continue
            try:
                delivered = self._delivered(group, old_here)
            except NotSettled as exc:
                checked += [Outcome(i.identifier, "pending", note=f"not re-sent: {exc}") for i in old_here]
                continue
            except PushCallError as exc:
                checked += [Outcome(i.identifier, "pending", note=f"not re-sent: could not check Stripe: {exc}")
                            for i in old_here]
                keep.extend(i for i in group if i.identifier not in old)
                continue
            if delivered is None:
                checked += [Outcome(i.identifier, "pending", note="not re-sent: Stripe's total matches no single "
                                    "combination of the pending intents; needs an operator") for i in old_here]
                keep.extend(i for i in group if i.identifier not in old)
                continue
            for i in group:
                if i.identifier in delivered:
                    checked.append(Outcome(i.identifier, "acknowledged", acked_at=self.now,
                                           note="acknowledged from Stripe's event summaries (older than 23 h)"))
                else:
                    keep.append(i)
        if checked:
            self.store(checked, reconciled=True)
        return keep

    def _delivered(self, group: list[Intent], old_here: list[Intent]) -> set[str] | None:
        first = group[0]
        gateway = self.gateways(first.mode, first.stripe_account, first.shadow)
        if gateway is None:
            raise PushCallError("abort", "no key of this intent's mode is configured")
        meter_key = (first.mode, first.account, first.event_name)
        if meter_key not in self._meter_ids:
            meter_id = first.meter_id
            if meter_id is None:
                self.pacer.acquire(first.mode, "general", first.stripe_account)
                meter_id = gateway.meter_id_for(first.event_name)
            self._meter_ids[meter_key] = meter_id
        meter_id = self._meter_ids[meter_key]
        if meter_id is None:
            raise PushCallError("fatal", f"no active meter for event_name {first.event_name!r}")
        start, end = naive(first.period_start), naive(first.period_end)
        acked_sum, last_acked = outbox.acked_in_window(self.conn, mode=first.mode, account=first.account,
                                                       stripe_customer=first.stripe_customer,
                                                       event_name=first.event_name, start_ts=epoch(start),
                                                       end_ts=epoch(end))
        if last_acked is not None and self.now - naive(last_acked) < self.settle:
            # A lagging summary would make delivered usage look missing.
            raise NotSettled(f"Stripe's summary is trusted only {self.settle} after the window's latest "
                             f"acknowledgement ({last_acked:%Y-%m-%d %H:%M} UTC)")
        self.pacer.acquire(first.mode, "general", first.stripe_account)
        stripe_total = gateway.summary_total(meter_id, first.stripe_customer, epoch(start), epoch(end))
        if first.meter_formula == "last":
            latest = max(group, key=lambda i: (i.event_ts, i.revision))
            # The latest value being there settles every earlier one as well.
            return {i.identifier for i in old_here} if stripe_total == latest.value else set()
        return _delivered_subset(old_here, stripe_total - acked_sum)

    # -- steps 2 and 3 --------------------------------------------------------
    def plan_and_send(self, config: Config, keys: KeyStatus, periods: list[datetime], run_id: str) -> None:
        with transaction(self.conn):
            tally = planner.plan(self.conn, config=config, keys=keys, periods=periods, now=self.now,
                                 dry_run=self.options.dry_run, run_id=run_id)
            outbox.write_plan(self.conn, periods=periods, now=self.now)
        r = self.report
        r.planned = tally.planned
        r.refused_shadow = tally.refused_shadow
        r.skipped_too_old = tally.skipped_too_old
        r.carry_forwards_planned = tally.carry_forwards
        r.carry_forwards_unmapped = tally.carry_unmapped
        r.carry_forwards_not_summable = tally.carry_not_summable
        r.deferred = tally.deferred
        r.unmapped_count, r.unmapped = planner.plan_rows(self.conn, "unmapped", EXAMPLES)
        r.too_large_count, r.too_large = planner.plan_rows(self.conn, "too_large", EXAMPLES)
        new = planner.new_pending(self.conn)
        self.log.info(f"stripe_push: {len(new)} new intent(s), {r.planned} planned (dry-run), "
                      f"{r.refused_shadow} refused (shadow), {r.skipped_too_old} too old, {r.unmapped_count} unmapped")
        if not self.options.dry_run:
            self.send(new)


def _subset_sums(intents: list[Intent]) -> dict[int, tuple[Intent, ...]]:
    """Every reachable sum of a subset of `intents`, with one subset giving it."""
    sums: dict[int, tuple[Intent, ...]] = {0: ()}
    for intent in intents:
        for total, subset in list(sums.items()):
            sums.setdefault(total + intent.value, subset + (intent,))
    return sums


def _delivered_subset(olds: list[Intent], gap: int) -> set[str] | None:
    """Old intents to count as delivered, given `gap` = Stripe's settled
    total minus what we acknowledged (the window has no younger pending
    intent). Only the delivered *sum* matters: any subset reaching `gap` is
    acknowledged and the others re-sent, which leaves Stripe's total exact.
    None when no subset explains it."""
    if len(olds) > MAX_SUBSET_SEARCH:
        return None
    sums = _subset_sums(olds)
    return {i.identifier for i in sums[gap]} if gap in sums else None


def shadow_status(mapping: StripeMapping, keys: KeyStatus) -> str:
    if not any(m.shadow for m in mapping.meters):
        return "no shadow mappings"
    if keys.test_rejected:
        return "refused: STRIPE_TEST_API_KEY is not a test-mode key; shadow mappings are not pushed (fail closed)"
    if not keys.test_present:
        return "refused: STRIPE_TEST_API_KEY is not set; shadow mappings are not pushed (fail closed)"
    return "test mode"


def run_push(conn: duckdb.DuckDBPyConnection, *, config: Config, periods: list[datetime], now: datetime,
             run_id: str, gateways: GatewayFactory, keys: KeyStatus, options: PushOptions,
             log: logging.Logger | Any) -> PushReport:
    """Push the periods' counters and the open carry-forwards; returns the
    report (the caller fails the run when `report.incomplete`)."""
    mapping = config.stripe
    dry_run = options.dry_run or not keys.primary_present
    run = _Run(conn, gateways, options, now, log, config.summary_settle)
    run.report.dry_run = dry_run
    run.report.dry_run_option = options.dry_run
    run.report.shadow = shadow_status(mapping, keys)
    run.report.modes = sorted({m for m in (keys.primary_mode if keys.primary_present else None,
                                           "test" if keys.test_present else None) if m})
    if not options.dry_run:
        run.pull_error_reports()
        run.sender.preflight.trust(outbox.verified_customers(conn))
        run.resend_pending()
    run.plan_and_send(config, keys, periods, run_id)
    run.report.pending_left = outbox.count_pending(conn)
    run.report.stripe_calls = gateways.calls.count
    run.report.retries = run.sender.retries
    run.report.accounts_skipped = [f"{mode}/{account}: {reason}"
                                   for (mode, account), reason in sorted(run.sender.skipped_accounts().items())]
    return run.report

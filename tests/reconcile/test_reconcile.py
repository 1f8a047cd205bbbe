"""Pre-invoice reconciliation end to end: real Dagster runs of `stripe_push`
→ `reconciliation_report` (+ blocking check), the real stripe SDK, the
emulator and DuckDB."""

from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg

from stripemeter_assets.invoices.assets import invoice_money_at_stake_within_tolerance, invoice_reconciliation
from stripemeter_assets.schedules import periods_due, pre_invoice_job, pre_invoice_schedule
from stripemeter_assets.sensors import RANGE_END, RANGE_START
from stripemeter_assets.reconcile.compare import Row, classify, drift
from stripemeter_assets.reconcile.stripe_totals import aligned_window
from tests.browser import CHROMIUM, dump_dom
from tests.push.conftest import MARCH_START
from tests.reconcile.conftest import NOW_S, SETTLED_S


def _settle(recon):
    recon.push.set_now(SETTLED_S)


def _second_read(recon):
    """One settle delay (60 min) after the first read."""
    recon.push.set_now(SETTLED_S + 61 * 60)


def test_clean_push_is_all_ok_and_a_rerun_sends_nothing(recon):
    recon.push.usage(5, customer="cus_A")
    recon.push.usage(3, customer="cus_B")
    recon.push.usage(7, metric="requests", customer="cus_A", aggregation="count")
    recon.push.usage("12.3456", metric="cpu_hours", customer="cus_A")  # unit_scale 1000
    recon.push.usage(4, metric="storage_gb", customer="cus_B", aggregation="max")
    recon.push.run()
    _settle(recon)

    result = recon.run()

    rows = recon.by_counter()
    assert {k: r["status"] for k, r in rows.items()} == {
        ("cus_A", "api_calls"): "ok", ("cus_B", "api_calls"): "ok", ("cus_A", "requests"): "ok",
        ("cus_A", "cpu_hours"): "ok", ("cus_B", "storage_gb"): "ok"}
    cpu = rows[("cus_A", "cpu_hours")]
    assert (cpu["local_value"], cpu["local_total"], cpu["pushed_total"], cpu["stripe_total"]) == (
        Decimal("12.3456"), Decimal(12345), Decimal(12345), Decimal(12345))
    assert all(r["drift"] == 0 and r["relative_drift"] == 0 for r in rows.values())
    assert recon.check(result).passed
    meta = recon.metadata(result)
    assert meta["counters_ok"] == 5 and meta["under_reports_corrected"] == 0
    assert "Reconciliation 2025-03" in meta["summary"]
    assert (recon.reports / "reconciliation-2025-03.csv").read_text().count("\n") == 6
    assert (recon.reports / "reconciliation-2025-03.html").exists()

    posts_before = len(recon.meter_posts())
    recon.run()
    assert len(recon.meter_posts()) == posts_before  # nothing new: nothing sent
    assert len(recon.rows()) == 5  # the period's rows were replaced, not appended


def test_events_lost_on_stripe_are_an_under_report_and_get_re_sent(recon):
    recon.push.usage(5)
    recon.push.run()
    recon.push.usage(12)
    recon.push.run()
    lost = recon.push.events(event_name="api_calls")[1]  # the +7 delta
    assert lost["value"] == 7
    assert recon.emu.delete_meter_event(lost["identifier"]) == 1
    _settle(recon)
    posts_before = len(recon.meter_posts())

    recon.run()   # one read could be a lagging summary: not trusted alone

    [row] = recon.rows()
    assert row["status"] == "pending" and "not trusted yet" in row["cause"] and not row["corrected"]
    assert len(recon.meter_posts()) == posts_before
    _second_read(recon)

    result = recon.run()   # a read 60 min later agrees: re-sent

    [row] = recon.rows()
    assert row["corrected"] and row["status"] == "pending"   # the re-send itself is not settled yet
    assert row["cause"].startswith("under-report corrected: re-sent 7 unit(s)")
    assert recon.push.stripe_total() == 12
    assert recon.check(result).passed
    [correction] = recon.env.sql("SELECT old_pushed, new_pushed, missing FROM reconciliation_corrections")
    assert correction == (12, 5, 7)
    # The re-send went through the outbox: a new revision, a new identifier, acknowledged.
    resend = recon.push.pushes("value = 7 AND revision = 3")
    assert len(resend) == 1 and resend[0]["status"] == "acknowledged"
    assert resend[0]["identifier"] != lost["identifier"]
    assert recon.env.sql("SELECT pushed_total FROM stripe_push_state") == [(12,)]

    posts_before = len(recon.meter_posts())
    recon.push.set_now(SETTLED_S + 130 * 60)
    recon.run()
    assert len(recon.meter_posts()) == posts_before
    [row] = recon.rows()
    assert row["status"] == "ok" and not row["corrected"] and row["stripe_total"] == row["local_total"] == 12


def test_auto_correct_off_reports_the_under_report_and_blocks(recon):
    recon.push.usage(10)
    recon.push.run()
    [event] = recon.push.events(event_name="api_calls")
    recon.emu.delete_meter_event(event["identifier"])
    _settle(recon)
    posts_before = len(recon.meter_posts())
    recon.run(run_config={"ops": {"reconciliation_report": {"config": {"auto_correct": False}}}})
    _second_read(recon)

    result = recon.run(expect_success=False,
                       run_config={"ops": {"reconciliation_report": {"config": {"auto_correct": False}}}})

    [row] = recon.rows()
    assert row["status"] == "drift" and row["cause"].startswith("under-report")
    assert row["relative_drift"] == 1 and row["stripe_total"] == 0
    assert len(recon.meter_posts()) == posts_before
    assert not recon.check(result).passed


def test_extra_stripe_usage_is_an_over_report_left_alone_and_the_check_fails_the_run(recon):
    recon.push.usage(100)
    recon.push.run()
    recon.emu.add_meter_event("api_calls", "cus_A", 2, timestamp=MARCH_START + 3600)
    _settle(recon)
    posts_before = len(recon.meter_posts())

    result = recon.run(expect_success=False)

    [row] = recon.rows()
    assert row["status"] == "drift" and row["cause"].startswith("over-report")
    assert (row["local_total"], row["stripe_total"], row["drift"]) == (100, 102, 2)
    assert row["relative_drift"] == Decimal("0.02")
    assert len(recon.meter_posts()) == posts_before  # never "corrected"
    assert recon.push.stripe_total() == 102
    evaluation = recon.check(result)
    assert not evaluation.passed and evaluation.metadata["counters_drift"].value == 1
    assert any(e.is_failure for e in result.all_events)


def test_drift_within_epsilon_is_ok(recon):
    recon.push.usage(1000)
    recon.push.run()
    recon.emu.add_meter_event("api_calls", "cus_A", 5, timestamp=MARCH_START + 3600)  # 0.5 % = ε
    _settle(recon)

    result = recon.run()

    [row] = recon.rows()
    assert row["status"] == "ok" and row["cause"] == "within tolerance"
    assert recon.check(result).passed


def test_unmapped_customer_and_metric(recon):
    recon.push.usage(5, customer="ext-unknown")          # no Stripe customer for this ref
    recon.push.usage(9, metric="credits", customer="cus_A")  # no meter for this metric
    recon.push.usage(2)
    recon.push.run()
    _settle(recon)

    result = recon.run()

    rows = recon.by_counter()
    assert rows[("ext-unknown", "api_calls")]["status"] == "unmapped"
    assert "customer" in rows[("ext-unknown", "api_calls")]["cause"]
    assert rows[("cus_A", "credits")]["status"] == "unmapped"
    assert "meter" in rows[("cus_A", "credits")]["cause"]
    assert rows[("cus_A", "credits")]["stripe_total"] is None
    assert rows[("cus_A", "api_calls")]["status"] == "ok"
    assert recon.check(result).passed  # unmapped counters never block


def test_pending_late_event_is_late_pending(recon):
    recon.push.usage(5)
    recon.push.run()
    recon.env.sql("INSERT INTO late_events VALUES ('acme', 'api_calls', 'cus_A', 'k-late', "
                  "TIMESTAMP '2025-03-02 10:00:00', INTERVAL 3 DAY, 'pending', 'b1', TIMESTAMP '2025-03-20 11:00:00', "
                  "NULL)")
    _settle(recon)

    recon.run()

    [row] = recon.rows()
    assert row["status"] == "late_pending" and "late events beyond the window" in row["cause"]


def test_fresh_acknowledgement_is_pending_inside_the_settle_delay(recon):
    recon.push.usage(5)
    recon.push.run()
    recon.emu.delete_meter_event(recon.push.events(event_name="api_calls")[0]["identifier"])
    # same frozen instant as the push: acknowledged 0 s ago
    posts_before = len(recon.meter_posts())

    recon.run(with_push=False)

    [row] = recon.rows()
    assert row["status"] == "pending" and "settle delay" in row["cause"]
    assert len(recon.meter_posts()) == posts_before  # not corrected while Stripe may still catch up


def test_summaries_failure_is_stripe_error(recon):
    recon.push.usage(5)
    recon.push.run()
    _settle(recon)
    recon.emu.inject_fault("api_error", method="GET", path_prefix="/v1/billing/meters/", count=50)

    recon.run(max_attempts=2)

    [row] = recon.rows()
    assert row["status"] == "stripe_error" and "summaries call failed" in row["cause"]
    assert "sk_test" not in row["cause"]


def test_usage_refused_before_sending_is_stripe_error(recon):
    recon.push.usage(5, customer="cus_NOPE")  # not a customer on Stripe: refused, never sent
    recon.push.run(expect_success=False)
    _settle(recon)

    recon.run(with_push=False)

    [row] = recon.rows()
    assert row["status"] == "stripe_error"
    assert "refused_unknown_customer" in row["cause"] and "cus_NOPE" in row["cause"]


def test_usage_stripe_dropped_after_its_200_is_stripe_error_with_the_code_and_cause(recon):
    recon.push.usage(5)
    recon.push.run()
    recon.push.client().v1.customers.delete("cus_A")   # deleted on Stripe after its first push
    recon.push.usage(8)
    recon.push.run()                                    # 200 for the +3, dropped by Stripe later
    _settle(recon)

    recon.push.run(expect_success=False)                # pulls Stripe's error report; the customer is unknown
    recon.run(with_push=False)

    [row] = recon.rows()
    assert row["status"] == "stripe_error"
    assert "meter_event_customer_not_found" in row["cause"]
    assert "the Stripe customer does not exist" in row["cause"]
    assert row["pushed_total"] == 5                     # the dropped 3 no longer count as pushed


def test_a_counter_too_large_for_stripe_units_fails_reconciliation_by_name_and_the_others_are_stored(recon):
    recon.push.usage(5)
    recon.push.run()
    _settle(recon)
    recon.push.usage("2e26", metric="cpu_hours", customer="cus_B")     # x1000 passes DECIMAL(38, 9)
    recon.push.usage("2e26", metric="cpu_hours", customer="ext-9")     # unmapped customer, same meter

    result = recon.run(with_push=False, expect_success=False)

    text = recon.push.failure_text(result)
    assert "1 counter(s) too large" in text and "acme/cus_B/cpu_hours 2025-03-01" in text
    # the unmapped one is reported as such, as the push reports it, with no total in Stripe's units
    assert {(r["customer_ref"], r["metric"]): (r["status"], r["local_total"]) for r in recon.rows()} == {
        ("cus_A", "api_calls"): ("ok", 5), ("ext-9", "cpu_hours"): ("unmapped", None)}
    assert (recon.reports / "reconciliation-2025-03.csv").exists()
    invoices = dg.materialize([invoice_reconciliation], partition_key="2025-03-01", raise_on_error=False,
                              resources=recon.resources())
    assert "too large" in recon.push.failure_text(invoices) and "acme/cus_B/cpu_hours" in recon.push.failure_text(invoices)
    assert recon.env.sql("SELECT customer_ref FROM invoice_reconciliation") == [("cus_A",)]


def test_a_lagging_summary_never_causes_a_second_send(recon):
    recon.emu.set_summary_lag(2 * 3600)                 # Stripe's summaries two hours behind
    recon.push.usage(5)
    recon.push.run()
    _settle(recon)                                      # acknowledged 61 min ago: past the settle delay
    posts_before = len(recon.meter_posts())

    recon.run()                                         # Stripe still shows 0

    [row] = recon.rows()
    assert row["stripe_total"] == 0 and row["status"] == "pending" and not row["corrected"]
    _second_read(recon)

    recon.run()                                         # 122 min later: the summary caught up

    [row] = recon.rows()
    assert row["status"] == "ok" and row["stripe_total"] == 5 and not row["corrected"]
    assert len(recon.meter_posts()) == posts_before     # nothing was ever sent twice
    assert len(recon.push.events()) == 1


def _html_text(path: Path) -> tuple[list[str], int, bool]:
    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.rows, self.in_table = [], 0, False
            self.cells: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "table" and dict(attrs).get("id") == "reconciliation":
                self.in_table = True
            if tag == "tr" and self.in_table:
                self.rows += 1

        def handle_data(self, data):
            if self.in_table and data.strip():
                self.cells.append(data.strip())

    p = P()
    p.feed(path.read_text())
    return p.cells, p.rows, "svg" in p.tags


def test_html_report_renders(recon):
    recon.push.usage(100)
    recon.push.usage(5, customer="ext-unknown")
    recon.push.run()
    recon.emu.add_meter_event("api_calls", "cus_A", 50, timestamp=MARCH_START + 3600)
    _settle(recon)
    recon.run(expect_success=False)
    html_path = recon.reports / "reconciliation-2025-03.html"

    if CHROMIUM:
        dom = dump_dom(html_path.as_uri(), timeout=60)
        assert '<table id="reconciliation">' in dom and "over-report" in dom and "<svg" in dom
    # Always also parsed with html.parser (no Chromium on this machine).
    cells, rows, has_svg = _html_text(html_path)
    assert rows == 3 and has_svg  # header + 2 counters
    assert "drift" in cells and "unmapped" in cells and "50.00 %" in cells
    assert "http" not in html_path.read_text().replace("http://www.w3.org/2000/svg", "")  # no external assets
    csv_text = (recon.reports / "reconciliation-2025-03.csv").read_text()
    assert csv_text.splitlines()[0].startswith("tenant_id,customer_ref,metric,period_start")


# -- pure pieces and definitions --------------------------------------------------

def test_relative_drift_rules():
    assert drift(0, 0) == (0, 0)
    assert drift(0, 3) == (3, 1)
    assert drift(200, 199) == (1, Decimal("0.005"))
    assert drift(5, None) == (None, None)


def test_windows_are_minute_aligned_and_clamped():
    start, end = aligned_window(datetime(2025, 3, 1), datetime(2025, 4, 1), datetime(2025, 3, 20, 12, 0, 30))
    assert start == MARCH_START and end % 60 == 0 and end == NOW_S + 60
    _, end = aligned_window(datetime(2025, 3, 1), datetime(2025, 4, 1), datetime(2025, 5, 1, tzinfo=UTC))
    assert end == int(datetime(2025, 4, 1, tzinfo=UTC).timestamp())


def test_classify_precedence():
    now = datetime(2025, 3, 20, 12)
    from datetime import timedelta
    row = Row("t", "c", "m", datetime(2025, 3, 1), datetime(2025, 4, 1), 1, Decimal(10), 10,
              stripe_customer="cus_A", event_name="m", stripe_total=4, pending_intents=1, late_pending=2)
    assert classify(row, epsilon=Decimal("0.005"), now=now, settle=timedelta(minutes=5)).status == "pending"
    row.pending_intents = 0
    assert classify(row, epsilon=Decimal("0.005"), now=now, settle=timedelta(minutes=5)).status == "late_pending"
    row.late_pending = 0
    assert classify(row, epsilon=Decimal("0.005"), now=now, settle=timedelta(minutes=5)).status == "drift"


def test_pre_invoice_job_and_schedule_definitions(env):
    from stripemeter_assets.counters.assets import daily_usage, period_usage
    from stripemeter_assets.ledger.assets import usage_events
    from stripemeter_assets.push.assets import stripe_push
    from stripemeter_assets.reconcile.assets import reconciliation_report, reconciliation_within_epsilon
    from stripemeter_assets.resources import LandingResource, WarehouseResource
    from stripemeter_assets.resources import StripeResource

    defs = dg.Definitions(
        assets=[usage_events, daily_usage, period_usage, stripe_push, reconciliation_report, invoice_reconciliation],
        asset_checks=[reconciliation_within_epsilon, invoice_money_at_stake_within_tolerance], jobs=[pre_invoice_job],
        schedules=[pre_invoice_schedule],
        resources={"warehouse": WarehouseResource(), "landing": LandingResource(), "stripe": StripeResource()})
    job = defs.resolve_job_def("pre_invoice_job")
    assert {n.name for n in job.graph.node_defs} >= {"period_usage", "stripe_push", "reconciliation_report",
                                                    "reconciliation_report_reconciliation_within_epsilon",
                                                    "invoice_reconciliation",
                                                    "invoice_reconciliation_invoice_money_at_stake_within_tolerance"}
    assert pre_invoice_schedule.cron_schedule == "0 6 * * *"
    assert pre_invoice_schedule.execution_timezone == "UTC"
    def due(when: datetime) -> list[str]:
        ctx = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
        return [r.partition_key or f"{r.tags[RANGE_START]}..{r.tags[RANGE_END]}"
                for r in pre_invoice_schedule.evaluate_tick(ctx).run_requests]

    # Day partitions: today (the open periods), and the days of periods still in their 1 h grace,
    # in one run: a period overlapping both days (anchored 15 March to 15 April) is settled once.
    assert due(datetime(2025, 4, 1, 0, 30, tzinfo=UTC)) == ["2025-03-31..2025-04-01"]
    assert due(datetime(2025, 4, 1, 6, tzinfo=UTC)) == ["2025-04-01"]  # March's invoice is final: closed
    assert periods_due(datetime(2025, 3, 20, 6, tzinfo=UTC), __import__("datetime").timedelta(hours=48)) == [
        datetime(2025, 3, 18), datetime(2025, 3, 19), datetime(2025, 3, 20)]


def test_pre_invoice_job_runs_counters_push_and_reconciliation_in_order(recon):
    from stripemeter_assets.counters.assets import daily_usage, period_usage
    from stripemeter_assets.push.assets import stripe_push
    from stripemeter_assets.reconcile.assets import reconciliation_report, reconciliation_within_epsilon
    from stripemeter_assets.resources import WarehouseResource
    from stripemeter_assets.resources import StripeResource
    from tests.conftest import event

    recon.env.drop_jsonl("a.jsonl", [event(quantity="2", idempotencyKey="k1"),
                                     event(quantity="3", ts="2025-03-11T09:00:00Z", idempotencyKey="k2")])
    recon.env.ingest()
    resources = {"warehouse": WarehouseResource(), "stripe": StripeResource(pacing=False)}
    for day in ("2025-03-10", "2025-03-11"):
        assert dg.materialize([daily_usage], partition_key=day, resources=resources).success
    defs = dg.Definitions(assets=[daily_usage, period_usage, stripe_push, reconciliation_report,
                                  invoice_reconciliation],
                          asset_checks=[reconciliation_within_epsilon, invoice_money_at_stake_within_tolerance],
                          jobs=[pre_invoice_job], resources=resources)

    result = defs.resolve_job_def("pre_invoice_job").execute_in_process(partition_key="2025-03-01")

    assert result.success
    order = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert order.index("period_usage") < order.index("stripe_push") < order.index("reconciliation_report")
    assert order.index("stripe_push") < order.index("invoice_reconciliation")
    assert recon.push.stripe_total() == 5
    # acknowledged this very instant: Stripe's summaries may still lag, so pending, never drift
    [row] = recon.rows()
    assert row["local_total"] == 5 and row["status"] in ("ok", "pending")


def test_a_report_that_names_no_failed_event_puts_the_window_under_verification_by_settled_summaries(recon):
    # About error reports, not pacing: its runs are unpaced, so Stripe's 25/s test-mode limit is off.
    recon.emu.set_rate_limit(stripe_limits=False)
    push = recon.push
    push.usage(5, customer="cus_A")
    push.usage(3, customer="cus_B")
    push.run()
    push.client().v1.customers.delete("cus_B")           # deleted on Stripe after its first push
    recon.emu.configure_error_reports(sample_limit=0)    # Stripe's report names none of the failures
    push.set_now(NOW_S + 2 * 60)
    push.usage(6, customer="cus_A")
    push.usage(4, customer="cus_B")
    push.run()                                           # 200 for both; cus_B's +1 is dropped later
    push.set_now(NOW_S + 7 * 60)

    meta = push.metadata(push.run())

    assert meta["intents_rejected_by_stripe"] == 0 and meta["intents_under_verification"] == 2
    assert recon.env.sql("SELECT count(*) FROM stripe_meter_errors WHERE identifier IS NULL") == [(1,)]
    recon.emu.create_customer("cus_B")                    # restored on Stripe
    _settle(recon)
    recon.run()                                          # first read: not trusted alone
    _second_read(recon)

    recon.run()

    rows = recon.by_counter()
    a, b = rows[("cus_A", "api_calls")], rows[("cus_B", "api_calls")]
    assert a["status"] == "ok"                           # its settled summary matched: verified
    assert b["corrected"] and "meter_event_customer_not_found" in b["cause"] and "did not name" in b["cause"]
    assert dict(recon.env.sql("SELECT status, count(*) FROM stripe_push_verifications GROUP BY ALL")) == {
        "verified": 1, "short": 1}
    assert recon.push.stripe_total(customer="cus_B") == 4 and recon.push.stripe_total(customer="cus_A") == 6


def test_report_of_a_large_period_shows_the_most_urgent_rows_and_keeps_every_row_in_the_csv(recon, monkeypatch):
    from stripemeter_assets.reconcile import report
    monkeypatch.setattr(report, "MAX_HTML_ROWS", 3)
    for i in range(6):
        recon.push.usage(i + 1, customer=f"ext-{i}")  # no Stripe customer: unmapped
    recon.push.usage(100)
    recon.push.run()
    recon.emu.add_meter_event("api_calls", "cus_A", 50, timestamp=MARCH_START + 3600)
    _settle(recon)
    result = recon.run(expect_success=False)

    cells, rows, _ = _html_text(recon.reports / "reconciliation-2025-03.html")
    assert rows == 1 + 3                               # header + the 3 most urgent of 7
    assert cells[12:15] == ["acme", "cus_A", "api_calls"] and "drift" in cells[12:24]  # the drift leads
    text = (recon.reports / "reconciliation-2025-03.html").read_text()
    assert "The 3 most urgent of 7 counters" in text and "reconciliation-2025-03.csv" in text
    csv_lines = (recon.reports / "reconciliation-2025-03.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 7 and sum(",unmapped," in line for line in csv_lines) == 6
    assert "7 counter(s)" in recon.metadata(result)["summary"]


def test_without_a_key_mapped_counters_are_stripe_errors_and_nothing_is_read(recon, monkeypatch):
    recon.push.usage(5)
    recon.push.usage(3, customer="ext-1")
    monkeypatch.delenv("STRIPE_API_KEY")
    requests_before = len(recon.emu.requests())
    result = recon.run(with_push=False)

    rows = recon.by_counter()
    assert rows[("cus_A", "api_calls")]["status"] == "stripe_error"
    assert rows[("cus_A", "api_calls")]["cause"] == ("Stripe summaries call failed: no Stripe key of mode 'live' "
                                                    "is configured")
    assert rows[("cus_A", "api_calls")]["local_total"] == 5 and rows[("cus_A", "api_calls")]["stripe_total"] is None
    assert rows[("ext-1", "api_calls")]["status"] == "unmapped"
    assert len(recon.emu.requests()) == requests_before and recon.metadata(result)["stripe_summary_calls"] == 0

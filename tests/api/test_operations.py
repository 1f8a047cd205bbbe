"""/metrics, /health and /docs against the real server."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from stripemeter_assets import settings
from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from stripemeter_assets.analytics.snapshot import publish_snapshot_from
from stripemeter_assets.warehouse import connect
from tests.api.conftest import auth, http
from tests.conftest import BASE_CONFIG, event


def scrape(server, key) -> dict[tuple[str, tuple], float]:
    text = http.get(server.url + "/metrics", headers=auth(key)).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_as_prometheus_text_and_move_when_events_arrive(env, keys, server, instance):
    before = scrape(server, keys["acme"])
    assert before.get(("stripemeter_api_events_accepted_total", ()), 0) == 0
    http.post(server.url + "/v1/events/ingest", headers=auth(keys["acme"]),
              json={"events": [event(quantity="1"), event(quantity="2", ts="2025-03-10T10:00:01Z"),
                                event(quantity="x")]})
    after = scrape(server, keys["acme"])
    assert after[("stripemeter_api_events_accepted_total", ())] == 2
    assert after[("stripemeter_api_events_rejected_total", (("reason", "invalid_quantity"),))] == 1
    ingest_route = (("method", "POST"), ("route", "/v1/events/ingest"), ("status", "200"))
    assert after[("stripemeter_api_requests_total", ingest_route)] == 1
    assert after[("stripemeter_api_request_seconds_count", (("method", "POST"), ("route", "/v1/events/ingest")))] == 1
    # No snapshot yet: no snapshot gauges, and the scrape still answers.
    assert ("stripemeter_ledger_events", ()) not in after

    env.drop_text("broken.parquet", "not parquet")  # rejected: it stays in the landing, seen by the ledger
    env.write_config({**BASE_CONFIG, "stripe": {"meters": [{"tenant": "*", "metric": "api_calls",
                                                             "event_name": "api_calls"}]}})
    assert not catch_up(defs, instance).failed
    gauges = scrape(server, keys["acme"])
    assert gauges[("stripemeter_ledger_events", ())] == 2
    assert gauges[("stripemeter_landing_backlog_files", ())] == 0
    assert gauges[("stripemeter_snapshot_age_seconds", ())] == 0  # as of the frozen now
    assert gauges[("stripemeter_late_events_pending", ())] == 0
    text = http.get(server.url + "/metrics", headers=auth(keys["acme"])).text
    for family in ("stripemeter_push_intents", "stripemeter_reconciliation_rows", "stripemeter_quarantine_rows"):
        assert f"# TYPE {family} gauge" in text
    # no key: the intents are planned (dry run), and published as a view over Parquet files
    assert gauges[("stripemeter_push_intents", (("status", "planned"),))] == env.sql(
        "SELECT count(*) FROM stripe_pushes WHERE status = 'planned'")[0][0] > 0
    # Bounded labels: no customer or tenant anywhere.
    assert not any(dict(labels).keys() & {"customer", "customer_ref", "tenant"} for _, labels in gauges)

    http.post(server.url + "/v1/events/ingest", headers=auth(keys["acme"]),
              json={"events": [event(quantity="5", ts="2025-03-12T00:00:00Z")]})
    assert scrape(server, keys["acme"])[("stripemeter_landing_backlog_files", ())] == 1


def test_ready_turns_503_when_the_snapshot_is_missing_or_stale(env, keys, server, instance):
    missing = http.get(server.url + "/health/ready")
    assert missing.status_code == 503
    assert "no analyst snapshot" in missing.json()["checks"]["snapshot"]

    assert not catch_up(defs, instance).failed
    fresh = http.get(server.url + "/health/ready")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["checks"] == {"landing": "ok", "snapshot": "ok", "instance": "ok"}

    with connect(str(env.warehouse)) as conn:
        publish_snapshot_from(conn, as_of=settings.now() - timedelta(hours=2))
    stale = http.get(server.url + "/health/ready")
    assert stale.status_code == 503
    assert "120 min old" in stale.json()["checks"]["snapshot"]
    assert stale.json()["checks"]["landing"] == "ok"


def test_openapi_docs_describe_the_routes(server):
    assert http.get(server.url + "/docs").status_code == 200
    paths = http.get(server.url + "/openapi.json").json()["paths"]
    assert {"/v1/events/ingest", "/v1/events", "/v1/usage/{customer_ref}", "/v1/usage/projection",
            "/v1/replay", "/v1/replay/{run_id}", "/health/ready", "/metrics"} <= set(paths)

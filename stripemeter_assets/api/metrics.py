"""`GET /metrics`: Prometheus text from prometheus-client.

Labels are bounded: route templates (never raw paths), methods, status codes,
quarantine reasons and statuses. No tenant or customer labels: a customer
label would grow a series per customer.
"""

from __future__ import annotations

import logging
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from stripemeter_assets.api.snapshot import SnapshotMissing, open_snapshot
from stripemeter_assets.ledger.landing import list_ready_files

log = logging.getLogger("stripemeter.api")


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter("stripemeter_api_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("stripemeter_api_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.accepted = Counter("stripemeter_api_events_accepted", "Events accepted and written to the landing",
                                registry=registry)
        self.rejected = Counter("stripemeter_api_events_rejected", "Events rejected, by the ingest's reason",
                                ["reason"], registry=registry)


class SnapshotCollector:
    """Gauges read from the analyst snapshot at scrape time."""

    def __init__(self, analytics_path: str, landing_url: str, now):
        self.analytics_path = analytics_path
        self.landing_url = landing_url
        self.now = now

    def collect(self):
        try:
            with open_snapshot(self.analytics_path) as snap:
                yield from self._from(snap)
        except SnapshotMissing:
            return
        except Exception:  # a scrape must never fail on a damaged snapshot; readiness reports it
            log.exception("metrics: reading the analyst snapshot failed")

    def _from(self, snap):
        age = GaugeMetricFamily("stripemeter_snapshot_age_seconds", "Age of the analyst snapshot (now - as_of)")
        age.add_metric([], max(0.0, (self.now() - snap.as_of).total_seconds()))
        yield age
        ledger = GaugeMetricFamily("stripemeter_ledger_events", "Events in the ledger (as of the snapshot)")
        ledger.add_metric([], snap.scalar("api/gauge_ledger.sql"))
        yield ledger
        yield _by("stripemeter_quarantine_rows", "Quarantined rows by reason", "reason",
                  snap.pairs("api/gauge_quarantine.sql"))
        late = GaugeMetricFamily("stripemeter_late_events_pending", "Late events beyond the window, not yet applied")
        late.add_metric([], snap.scalar("api/gauge_late_pending.sql"))
        yield late
        if snap.has_table("stripe_pushes"):
            yield _by("stripemeter_push_intents", "Stripe push intents by status", "status",
                      snap.pairs("api/gauge_push_status.sql"))
        yield _by("stripemeter_reconciliation_rows", "Reconciliation rows by status", "status",
                  snap.pairs("api/gauge_reconciliation.sql"))
        ready = [f.path for f in list_ready_files(self.landing_url, settle=0)]
        backlog = GaugeMetricFamily("stripemeter_landing_backlog_files",
                                    "Landing files not yet in the ledger as of the snapshot")
        backlog.add_metric([], snap.scalar("api/landing_backlog.sql", paths=ready) if ready else 0)
        yield backlog


def _by(name: str, doc: str, label: str, pairs) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value, count in pairs:
        family.add_metric([str(value)], count)
    return family


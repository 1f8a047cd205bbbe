"""Bearer keys: 401 without or with an unknown key, 403 for another tenant's
data, on every route but health; per-key rate limits."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.conftest import Server, auth, http
from tests.conftest import BASE_CONFIG, event

ROUTES = [
    ("POST", "/v1/events/ingest", {"json": {"events": [event()]}}),
    ("GET", "/v1/events", {"params": {"tenantId": "acme"}}),
    ("GET", "/v1/usage/cus_A", {"params": {"tenantId": "acme"}}),
    ("POST", "/v1/usage/projection", {"json": {"tenantId": "acme", "customerRef": "cus_A"}}),
    ("POST", "/v1/replay", {"json": {"tenantId": "acme", "start": "2025-03-01", "end": "2025-03-02"}}),
]


def test_every_route_needs_a_key_for_the_tenant(env, keys, server):
    for method, path, kwargs in ROUTES:
        def call(headers):
            return http.request(method, server.url + path, headers=headers, **kwargs)

        missing = call({})
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer", path
        assert call(auth("smk_not_a_configured_key")).status_code == 401, path
        assert call({"Authorization": "Basic " + keys["acme"]}).status_code == 401, path
        assert call(auth(keys["globex"])).status_code == 403, path
        assert not list(env.landing.glob("*.jsonl")), path  # a refused ingest writes nothing


def test_metrics_need_a_key_and_health_does_not(keys, server):
    assert http.get(server.url + "/metrics").status_code == 401
    assert http.get(server.url + "/metrics", headers=auth(keys["globex"])).status_code == 200
    assert http.get(server.url + "/health/live").status_code == 200
    assert http.get(server.url + "/health/ready").status_code in (200, 503)


def test_an_ingest_naming_another_tenant_anywhere_is_refused_whole(env, keys, server):
    answer = http.post(server.url + "/v1/events/ingest", headers=auth(keys["acme"]),
                       json={"events": [event(), event(tenant="globex")]})
    assert answer.status_code == 403
    assert not list(env.landing.glob("*.jsonl"))


def test_a_key_over_its_rate_gets_429_with_retry_after(env):
    key = "smk_rate_limited_" + "x" * 8
    env.write_config({**BASE_CONFIG, "api": {
        "keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenants": ["acme"]}],
        "rate_limit_per_second": 0.5, "rate_limit_burst": 3}})
    srv = Server(env)
    srv.start()
    try:
        codes = [http.get(srv.url + "/metrics", headers=auth(key)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = http.get(srv.url + "/metrics", headers=auth(key))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        # Health probes are never limited.
        assert http.get(srv.url + "/health/live").status_code == 200
    finally:
        srv.stop()


def test_the_key_never_reaches_the_server_log(env, keys, server):
    for _ in range(3):
        http.get(server.url + "/v1/events", params={"tenantId": "acme"}, headers=auth(keys["acme"]))
    server.stop()
    log = (env.root / "server.log").read_text()
    assert keys["acme"] not in log

"""The Python SDK over HTTP against the real `stripemeter serve`."""

from __future__ import annotations

import socket
import threading
from decimal import Decimal

import pytest

from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from stripemeter_assets.sdk import StripeMeterClient
from stripemeter_assets.sdk.http import ApiError

FAST_RETRY = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2}


class DroppingProxy:
    """A TCP proxy that, for its first `drops` connections, forwards the
    request to the server, reads the server's whole answer, and then closes
    the client's connection without passing the answer on: the request took
    effect, the client saw a dropped connection."""

    def __init__(self, target_port: int, drops: int):
        self.target_port = target_port
        self.drops = drops
        self.dropped = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            drop = self.dropped < self.drops
            if drop:
                self.dropped += 1
            client.settimeout(10)
            upstream.settimeout(10)
            request = _read_http_message(client)
            if request is None:
                return
            upstream.sendall(request)
            answer = _read_http_message(upstream)
            if not drop and answer is not None:
                client.sendall(answer)

    def close(self) -> None:
        self.sock.close()


def _read_http_message(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_track_flush_and_read_back_over_http(env, keys, server, instance):
    client = StripeMeterClient(api_url=server.url, api_key=keys["acme"], tenant_id="acme", customer_id="cus_A",
                               http_options=FAST_RETRY)
    client.track("api_calls", quantity=3, ts="2025-03-10T10:00:00Z")
    client.track("api_calls", quantity="1.25", ts="2025-03-11T10:00:00Z", meta={"endpoint": "/v1/search"})
    client.track_batch([{"metric": "storage_gb", "quantity": 9, "ts": "2025-03-12T00:00:00Z"}])
    assert "3 accepted" in client.flush()
    assert client.pending == 0 and client.last_rejected == []
    assert not catch_up(defs, instance).failed

    usage = client.get_usage()
    assert usage["asOf"] == "2025-03-20T12:00:00Z"
    assert {u["metric"]: u["value"] for u in usage["usage"]} == {"api_calls": "4.25", "storage_gb": "9"}
    assert client.get_projection()["projection"][0]["metric"] == "api_calls"
    client.close()


def test_a_flush_retried_after_a_dropped_connection_counts_once(env, keys, server, instance):
    proxy = DroppingProxy(server.port, drops=2)
    try:
        client = StripeMeterClient(api_url=f"http://127.0.0.1:{proxy.port}", api_key=keys["acme"],
                                   tenant_id="acme", customer_id="cus_A", http_options=FAST_RETRY)
        for i in range(10):
            client.track("api_calls", quantity=1, ts=f"2025-03-10T10:00:{i:02d}Z")
        client.flush()  # two attempts reach the server and lose their answer; the third gets one
        assert proxy.dropped == 2 and client.pending == 0
    finally:
        proxy.close()
    # The server took the request once (its Idempotency-Key replayed the first answer).
    assert len(list(env.landing.glob("*.jsonl"))) == 1
    assert not catch_up(defs, instance).failed
    assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(10, Decimal(10))]


def test_a_refused_key_raises_and_keeps_the_events(env, keys, server):
    client = StripeMeterClient(api_url=server.url, api_key=keys["globex"], tenant_id="acme", customer_id="cus_A",
                               http_options=FAST_RETRY)
    client.track("api_calls", quantity=1, ts="2025-03-10T10:00:00Z")
    with pytest.raises(ApiError) as raised:
        client.flush()
    assert raised.value.status == 403
    assert client.pending == 1  # nothing lost: still buffered for a later flush
    assert not list(env.landing.glob("*.jsonl"))


def test_an_unreachable_server_is_retried_then_reported(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = StripeMeterClient(api_url=f"http://127.0.0.1:{port}", api_key="k", tenant_id="acme",
                               customer_id="cus_A", http_options={**FAST_RETRY, "max_attempts": 3})
    client.track("api_calls", quantity=1, ts="2025-03-10T10:00:00Z")
    with pytest.raises(Exception, match="[Cc]onnect"):
        client.flush()
    assert client.pending == 1

"""A real `stripemeter serve` process on a free port, over the test's temp
landing, warehouse, snapshot and Dagster instance (the `env` fixture)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests import processes
from tests.conftest import BASE_CONFIG

WIDGET_SECRET = secrets.token_hex(16)
# Generous: the 2-core test machine is shared, and a first readiness check
# opens the Dagster instance.
http = httpx.Client(timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`stripemeter serve` as a child process; `kill()` is SIGKILL."""

    def __init__(self, env):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = processes.start(
            [sys.executable, "-m", "stripemeter_assets.cli", "serve", "--port", str(self.port)],
            env={**os.environ, "STRIPEMETER_WIDGET_SECRET": WIDGET_SECRET},
            stdout=subprocess.DEVNULL, stderr=open(self.env.root / "server.log", "ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + (self.env.root / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def kill(self) -> None:
        if self.proc:
            processes.kill(self.proc)

    def stop(self) -> None:
        if self.proc:
            processes.stop(self.proc, timeout=10)


@pytest.fixture
def keys(env):
    """Bearer keys made at run time (never committed): one for tenant acme,
    one for globex; config holds only their SHA-256."""
    made = {"acme": "smk_" + secrets.token_hex(16), "globex": "smk_" + secrets.token_hex(16)}
    env.write_config({**BASE_CONFIG, "api": {
        "keys": [{"sha256": hashlib.sha256(k.encode()).hexdigest(), "tenants": [t]} for t, k in made.items()],
        "rate_limit_per_second": 1000, "rate_limit_burst": 2000}})
    return made


@pytest.fixture
def server(env, keys):
    srv = Server(env)
    srv.start()
    yield srv
    srv.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

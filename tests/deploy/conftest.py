"""Production-deployment fixtures: a fresh database on the real PostgreSQL
server with a Dagster home holding `deploy/dagster.yaml`, and a real
S3-compatible server (moto in server mode) with a fresh bucket.

Landing, warehouse and config come from the shared `env` fixture
(tests/conftest.py), i.e. the same environment variables production uses."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import psycopg2
import pytest

from stripemeter_assets.cli.runner import save_cursor, tick_sensor

from tests import REPO_ROOT

DEPLOY_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
PG_HOST = os.environ.get("STRIPEMETER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("STRIPEMETER_TEST_PG_PORT", "5432"))


def _pg_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


def _admin_connection(user: str):
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="test", connect_timeout=5,
                            password=os.environ.get("STRIPEMETER_TEST_PG_PASSWORD", ""))
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


@pytest.fixture(scope="session")
def pg_user() -> str:
    """The role that creates the per-test databases. Skips only when nothing
    listens on the port; a server that answers but refuses us is an error."""
    if not _pg_answers():
        pytest.skip(f"no PostgreSQL server answers on {PG_HOST}:{PG_PORT}")
    override = os.environ.get("STRIPEMETER_TEST_PG_USER")
    candidates = [override] if override else ["postgres", "root"]
    errors = []
    for user in candidates:
        try:
            _admin_connection(user).close()
            return user
        except psycopg2.OperationalError as exc:
            errors.append(f"{user}: {exc}")
    raise RuntimeError(f"PostgreSQL on {PG_HOST}:{PG_PORT} refused every test role: {errors}")


@pytest.fixture
def pg_db(pg_user: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"stripemeter_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_connection(pg_user)
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        # FORCE ends connections a failed test may have left open (PostgreSQL 13+).
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class ProdHome:
    """A DAGSTER_HOME holding a copy of deploy/dagster.yaml, with the
    DAGSTER_PG_* variables pointing at a fresh database."""

    def __init__(self, path: Path, db: str, user: str):
        self.path = path
        self.db = db
        self.user = user

    def instance(self) -> dg.DagsterInstance:
        """A new instance loaded from the YAML, as each Dagster process does."""
        return dg.DagsterInstance.from_config(str(self.path))

    def sql(self, query: str) -> list[tuple]:
        """Read the Dagster tables in Postgres directly."""
        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=self.user, dbname=self.db)
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchall()
        finally:
            conn.close()


@pytest.fixture
def prod_home(env, pg_db: str, pg_user: str, monkeypatch: pytest.MonkeyPatch) -> ProdHome:
    home = env.root / "dagster_home_prod"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    for key, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_USER": pg_user,
        "DAGSTER_PG_PASSWORD": os.environ.get("STRIPEMETER_TEST_PG_PASSWORD", ""),
        "DAGSTER_PG_DB": pg_db,
    }.items():
        monkeypatch.setenv(key, value)
    return ProdHome(home, pg_db, pg_user)


@pytest.fixture
def prod_instance(prod_home: ProdHome) -> Iterator[dg.DagsterInstance]:
    instance = prod_home.instance()
    try:
        yield instance
    finally:
        instance.dispose()


# --- S3 -------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto in server mode on a free local port: a real HTTP S3 API.

    The endpoint reaches s3fs through `AWS_ENDPOINT_URL_S3`, which botocore
    reads whenever a client is made (fsspec's `FSSPEC_S3_ENDPOINT_URL` is read
    only when fsspec is imported, too early for a port chosen here)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "stripemeter-test")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "stripemeter-test")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(key, raising=False)
        try:
            yield endpoint
        finally:
            server.stop()


class Bucket:
    """A fresh bucket; `url` is the landing prefix inside it."""

    def __init__(self, endpoint: str):
        self.name = f"landing-{uuid.uuid4().hex[:12]}"
        self.prefix = "usage/in"
        self.url = f"s3://{self.name}/{self.prefix}"
        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.client.create_bucket(Bucket=self.name)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def put_raw(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def drop(self, name: str, body: bytes) -> str:
        """Publish atomically, as producers must: upload `.name.tmp` next to
        the final key, copy it to the final name, delete the temporary."""
        folder, _, base = name.rpartition("/")
        tmp = self.key(f"{folder}/.{base}.tmp" if folder else f".{base}.tmp")
        self.put_raw(tmp, body)
        self.client.copy_object(Bucket=self.name, Key=self.key(name),
                                CopySource={"Bucket": self.name, "Key": tmp})
        self.client.delete_object(Bucket=self.name, Key=tmp)
        return f"s3://{self.name}/{self.key(name)}"

    def head(self, name: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=self.key(name))

    def keys(self) -> list[str]:
        """Every key under the prefix, relative to it."""
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=self.prefix + "/")
        return [o["Key"].removeprefix(self.prefix + "/") for o in listing.get("Contents", [])]


@pytest.fixture
def bucket(s3_endpoint: str) -> Bucket:
    return Bucket(s3_endpoint)


def evaluate_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, name: str) -> list[dg.RunRequest]:
    """One headless tick of a sensor that advances its cursor at once."""
    requests, cursor = tick_sensor(defs, instance, name)
    save_cursor(instance, name, cursor)
    return requests

"""Synthetic landing files for demos, tests and benchmarks: several tenants,
customers and metrics, with a share of retried (duplicate) events, late
events and malformed rows, spread over JSONL, gzip JSONL, CSV and Parquet."""

import csv
import gzip
import io
import json
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from stripemeter_assets.warehouse import literal

METRICS = {"api_calls": "1", "storage_gb": "0.001", "seats": "1"}
FIELDS = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId", "meta"]


@dataclass(frozen=True)
class GenSpec:
    events: int = 20_000
    files: int = 8
    tenants: int = 3
    customers: int = 50
    days: int = 20                 # events spread over the days before `now`
    duplicate_share: float = 0.05  # retried events (same key, same payload)
    late_share: float = 0.02       # events dated well before the rest of their file
    malformed_share: float = 0.005
    seed: int = 7


def _event(rng: random.Random, spec: GenSpec, now: datetime, late: bool) -> dict:
    tenant = f"tenant_{rng.randrange(spec.tenants)}"
    metric = rng.choice(list(METRICS))
    if metric == "api_calls":
        quantity = str(rng.randint(1, 500))
    elif metric == "storage_gb":
        quantity = str(Decimal(rng.randint(1, 500_000)) * Decimal(METRICS[metric]))
    else:
        quantity = str(rng.randint(1, 40))
    back = timedelta(seconds=rng.uniform(3600, spec.days * 86400))
    if late:
        back += timedelta(days=rng.uniform(1, 5))
    event = {
        "tenantId": tenant,
        "metric": metric,
        "customerRef": f"cus_{tenant[-1]}{rng.randrange(spec.customers):05d}",
        "quantity": quantity,
        "ts": (now - back).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if rng.random() < 0.7:
        event["idempotencyKey"] = f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex}"
    if rng.random() < 0.2:
        event["meta"] = {"endpoint": rng.choice(["/v1/search", "/v1/items", "/v1/export"])}
    return event


def _malformed(rng: random.Random, event: dict) -> dict | str:
    kind = rng.randrange(5)
    bad = dict(event)
    if kind == 0:
        bad.pop("customerRef")
    elif kind == 1:
        bad["ts"] = "yesterday"
    elif kind == 2:
        bad["quantity"] = "lots"
    elif kind == 3:
        bad["ts"] = "2999-01-01T00:00:00Z"
    else:
        return '{"tenantId": "broken", '
    return bad


def _write(path: Path, rows: list, fmt: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    if fmt in ("jsonl", "jsonl.gz"):
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        data = gzip.compress(text.encode()) if fmt == "jsonl.gz" else text.encode()
        tmp.write_bytes(data)
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            if isinstance(r, str):
                buf.write(r.replace(",", ";") + "\n")
                continue
            writer.writerow({**r, "meta": json.dumps(r["meta"]) if "meta" in r else ""})
        tmp.write_text(buf.getvalue())
    else:
        clean = [r for r in rows if isinstance(r, dict)]
        con = duckdb.connect()
        con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity VARCHAR, "
                    "ts VARCHAR, idempotencyKey VARCHAR, resourceId VARCHAR, meta VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [[r.get(f) if f != "meta" else (json.dumps(r["meta"]) if "meta" in r else None)
                          for f in FIELDS] for r in clean])
        con.execute(f"COPY t TO {literal(str(tmp))} (FORMAT parquet)")
        con.close()
    os.replace(tmp, path)  # atomic publish: the landing scan ignores dot-files


def generate(landing: str | Path, spec: GenSpec = GenSpec(), now: datetime | None = None) -> list[Path]:
    """Writes `spec.files` files into `landing`; returns their paths."""
    rng = random.Random(spec.seed)
    now = now or datetime.now(UTC)
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    formats = ["jsonl", "jsonl.gz", "csv", "parquet"]
    per_file = max(1, spec.events // spec.files)
    previous: list[dict] = []
    written = []
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for i in range(spec.files):
        rows: list = []
        for _ in range(per_file):
            if previous and rng.random() < spec.duplicate_share:
                rows.append(dict(rng.choice(previous)))
                continue
            event = _event(rng, spec, now, late=rng.random() < spec.late_share)
            if rng.random() < spec.malformed_share:
                rows.append(_malformed(rng, event))
                continue
            rows.append(event)
            if "idempotencyKey" in event:
                previous.append(event)
        fmt = formats[i % len(formats)]
        path = landing / f"gen-{stamp}-{spec.seed}-{i:04d}.{fmt}"
        _write(path, rows, fmt)
        written.append(path)
    return written


def write_bulk_jsonl(path: str | Path, events: int, *, start: str = "2025-01-01", days: int = 30,
                     customers: int = 10_000, keyed_share: float = 0.5, seed: int = 0) -> None:
    """A large JSONL file written by DuckDB itself (fast enough for 10M rows):
    half the events carry an idempotencyKey, the rest get derived keys."""
    con = duckdb.connect()
    keyed = int(keyed_share * 100)
    con.execute(f"""
        COPY (
            SELECT 'tenant_' || (i % 5) AS tenantId,
                   ['api_calls', 'storage_gb', 'seats'][1 + (i % 3)::INT] AS metric,
                   'cus_' || lpad(((i * 7919 + {seed}) % {customers})::VARCHAR, 6, '0') AS customerRef,
                   ((i * 31) % 1000)::DECIMAL(18, 1) / 10 AS quantity,
                   strftime(TIMESTAMP '{start}' + INTERVAL (i % ({days} * 86400)) SECOND
                            + INTERVAL ((i * 13) % 1000000) MICROSECOND, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts,
                   CASE WHEN i % 100 < {keyed} THEN 'evt_{seed}_' || i END AS idempotencyKey
            FROM range({int(events)}) t(i)
        ) TO {literal(str(path))} (FORMAT json)
    """)
    con.close()

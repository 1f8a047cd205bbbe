"""The HTTP ingest API under a real HTTP load generator (`hey`), loopback only.

Starts `stripemeter serve` (uvicorn, one process) on a free 127.0.0.1 port
over a scratch landing folder, then:
  - batches of 500 events per POST /v1/events/ingest: events/s accepted and
    p50/p95/p99 request latency;
  - single-event requests: p50/p95/p99 latency;
and, as the baseline measured in the same run, the same work without HTTP:
the route's own check + durable landing write (fsync, rename) called in
process. Every request is checked to have answered 200 and every request's
landing file to exist. Bounded: a fixed number of requests per phase.

target: >= 50,000 events/s accepted in batches of 500; single-event p95 <= 25 ms
Run: python bench/api_ingest.py [--batch-requests 400] [--single-requests 2000] [--concurrency 8]
(needs `hey`: apt-get install hey)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stripemeter_assets import settings  # noqa: E402
from stripemeter_assets.api.ingest import check_events, parse_body, publish  # noqa: E402
from stripemeter_assets.sdk.writer import LandingWriter  # noqa: E402

NOW = "2025-03-20T12:00:00Z"


def events(n: int, offset: int = 0) -> list[dict]:
    return [{"tenantId": "acme", "metric": "api_calls", "customerRef": f"cus_{(offset + i) % 1000}",
             "quantity": (i % 7) + 1, "ts": f"2025-03-{1 + i % 19:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
             "idempotencyKey": f"bench-{offset + i}", "meta": {"endpoint": "/v1/search"}} for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hey(url: str, body: Path, key: str, requests: int, concurrency: int) -> dict:
    out = subprocess.run(["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST",
                          "-T", "application/json", "-H", f"Authorization: Bearer {key}", "-D", str(body), url],
                         capture_output=True, text=True, timeout=600).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {int(p): float(s) * 1000 for p, s in re.findall(r"(\d+)%% in ([\d.]+) secs".replace("%%", "%"), out)}
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = out.split("Error distribution:", 1)[1].strip() if "Error distribution:" in out else ""
    return {"rps": rps, "p50": pct[50], "p95": pct[95], "p99": pct[99], "codes": codes, "errors": errors}


def in_process(config, body: bytes, writer: LandingWriter, repeats: int) -> list[float]:
    """The route's work without HTTP: parse, check, durable write."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        publish(writer, check_events(parse_body(body), config))
        times.append(time.perf_counter() - start)
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-requests", type=int, default=400)
    parser.add_argument("--single-requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("hey"):
        print("hey not installed (apt-get install hey)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="api-bench-", dir=ROOT / "data"))
    key = "smk_" + secrets.token_hex(16)
    (root / "stripemeter.yaml").write_text(json.dumps({"api": {
        "keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenants": ["acme"]}],
        "rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000}}))
    (root / "dagster_home").mkdir()
    env = {**os.environ, "STRIPEMETER_LANDING": str(root / "landing"), "STRIPEMETER_CONFIG": str(root / "stripemeter.yaml"),
           "STRIPEMETER_WAREHOUSE": str(root / "warehouse.duckdb"), "STRIPEMETER_ANALYTICS": str(root / "a.duckdb"),
           "STRIPEMETER_NOW": NOW, "DAGSTER_HOME": str(root / "dagster_home")}
    batch_body, single_body = root / "batch.json", root / "single.json"
    batch_body.write_text(json.dumps({"events": events(500)}))
    single_body.write_text(json.dumps({"events": events(1)}))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "stripemeter_assets.cli", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1/events/ingest"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        warm = hey(url, single_body, key, 200, 4)
        batch = hey(url, batch_body, key, args.batch_requests, args.concurrency)
        single = hey(url, single_body, key, args.single_requests, 4)
        files = len(list((root / "landing").glob("*.jsonl")))
        # hey sends requests in whole rounds of its concurrency.
        expected = 200 + args.batch_requests // args.concurrency * args.concurrency + args.single_requests // 4 * 4
        ok = sum(int(n) for run in (warm, batch, single) for c, n in run["codes"].items() if c == "200")
        for run in (warm, batch, single):
            if run["errors"] or set(run["codes"]) - {"200"}:
                print(f"not 200: {run['codes']} {run['errors']}", file=sys.stderr)

        # Baseline: the same route work in this process, no HTTP.
        os.environ.update({k: v for k, v in env.items() if k.startswith("STRIPEMETER_")})
        config = settings.load_config()
        writer = LandingWriter(str(root / "baseline"))
        base_batch = in_process(config, batch_body.read_bytes(), writer, 100)
        base_single = in_process(config, single_body.read_bytes(), writer, 500)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ("batches of 500: events/s accepted (HTTP)", f"{batch['rps'] * 500:,.0f}",
         f"in-process baseline {500 / statistics.mean(base_batch):,.0f}", ">= 50,000"),
        ("batches of 500: p50 / p95 / p99 ms (HTTP)", f"{batch['p50']:.1f} / {batch['p95']:.1f} / {batch['p99']:.1f}",
         f"in-process {pct(base_batch, 50):.1f} / {pct(base_batch, 95):.1f} / {pct(base_batch, 99):.1f}", ""),
        ("single event: p50 / p95 / p99 ms (HTTP)", f"{single['p50']:.1f} / {single['p95']:.1f} / {single['p99']:.1f}",
         f"in-process {pct(base_single, 50):.1f} / {pct(base_single, 95):.1f} / {pct(base_single, 99):.1f}",
         "p95 <= 25"),
        ("single event: requests/s (HTTP)", f"{single['rps']:,.0f}", "", ""),
        ("requests answered 200 / landing files written", f"{ok} / {files}", f"of {expected}", "all"),
    ]
    print(f"api_ingest (hey, concurrency {args.concurrency} for batches, 4 for single events; "
          f"{os.cpu_count()} cores shared with the server)")
    for label, value, baseline, target in rows:
        print(f"{label:<48} {value:>24}   {baseline:<36} {target}")
    return 0 if ok == expected == files else 1


if __name__ == "__main__":
    sys.exit(main())

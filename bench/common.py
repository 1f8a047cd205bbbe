"""Shared helpers for the benchmarks in `bench/`.

- timing (`timed`, `Stopwatch`), best/spread summaries of repeated runs;
- peak RSS: `peak_rss_self_mb()` (this process) and `run_worker()`, which runs
  one measurement in a fresh subprocess and returns its result together with
  that child's own peak RSS (from `os.wait4`, i.e. the child's
  `RUSAGE_CHILDREN` entry, so earlier children never inflate it);
- `bench_dir()`: a scratch folder under `data/bench/` (gitignored), removed after;
- `Row` / `print_table()`: the metric | value | target table every script prints;
- `bench_args()`: the flags every script accepts (`--events`, `--repeat`, `--json`).

Each bench script runs measurements in subprocesses of itself
(`python bench/X.py --worker NAME --payload JSON`), so a measurement's peak RSS is
its own and every repeat starts from a cold DuckDB connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = ROOT / "data" / "bench"
PYTHON = sys.executable
MEMORY_LIMIT = "2GB"


# ---------------------------------------------------------------- timing

def now() -> float:
    return time.perf_counter()


@contextlib.contextmanager
def timed(into: dict, key: str) -> Iterator[None]:
    """Adds the elapsed seconds of the block to `into[key]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start


def summary(values: list[float]) -> dict:
    """Best (min), worst and relative spread of repeated timings."""
    best, worst = min(values), max(values)
    return {"best": best, "worst": worst, "runs": list(values),
            "spread": (worst - best) / best if best else 0.0}


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_runs(values: list[float]) -> str:
    """"1.23 s (best of 2, spread 4%)"."""
    s = summary(values)
    return f"{fmt_s(s['best'])} (best of {len(values)}, spread {s['spread'] * 100:.0f}%)"


def fmt_rate(count: int, seconds: float) -> str:
    rate = count / seconds if seconds else float("inf")
    return f"{rate / 1e6:.2f}M ev/s" if rate >= 1e6 else f"{rate / 1e3:.0f}k ev/s"


def fmt_mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def fmt_count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


# ---------------------------------------------------------------- memory

def peak_rss_self_mb() -> float:
    """Peak resident set of this process (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_children_mb() -> float:
    """Largest peak RSS among the children waited for so far."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# ---------------------------------------------------------------- workers

WORKERS: dict[str, Callable[..., dict]] = {}


def worker(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Registers `fn` as a measurement runnable in a subprocess by name."""
    WORKERS[fn.__name__] = fn
    return fn


def run_worker(script: str | Path, name: str, *, code: Path | None = None, **payload) -> dict:
    """Runs worker `name` of `script` in a fresh interpreter; returns its JSON
    result plus `peak_rss_mb` (the child's own ru_maxrss), `cpu_s` (its user +
    system CPU time: on a busy machine a steadier figure than wall time) and
    `process_wall_s` (interpreter start-up included). `code`: the project's
    code the worker imports (a `code_at` folder), else this checkout's."""
    cmd = [PYTHON, str(script), "--worker", name, "--payload", json.dumps(payload)]
    env = {**os.environ, "PYTHONPATH": str(code), CODE_ENV: str(code)} if code else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, env=env)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} of {script} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # whole child process, start-up included
    result["process_wall_s"] = wall
    return result


def maybe_run_worker(argv: list[str] | None = None) -> bool:
    """In a worker subprocess: runs the named worker, prints its JSON, returns True."""
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" not in argv:
        return False
    name = argv[argv.index("--worker") + 1]
    payload = json.loads(argv[argv.index("--payload") + 1]) if "--payload" in argv else {}
    result = WORKERS[name](**payload)
    sys.stdout.flush()
    print(json.dumps(result, default=str))
    return True


def repeat_worker(script: str | Path, name: str, repeat: int, before: Callable[[int], None] | None = None,
                  **payload) -> list[dict]:
    """`repeat` independent runs of a worker (`before(i)` prepares run i)."""
    results = []
    for i in range(repeat):
        if before:
            before(i)
        results.append(run_worker(script, name, **payload))
    return results


# ---------------------------------------------------------------- scratch space

CODE_ENV = "STRIPEMETER_BENCH_CODE"
CODE = Path(os.environ.get(CODE_ENV, ROOT))  # the code this process measures; bench scripts import from it


@contextlib.contextmanager
def code_at(rev: str) -> Iterator[Path]:
    """The project at git revision `rev` in a scratch folder, laid out as the
    installed package (sql/ and data/config/ inside it): the baseline a bench
    runs in the same run as today's code (`run_worker(..., code=path)`)."""
    with bench_dir("code") as path:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
        shutil.copytree(path / "sql", path / "stripemeter_assets" / "sql")
        shutil.copytree(path / "data" / "config", path / "stripemeter_assets" / "bundled")
        yield path


@contextlib.contextmanager
def bench_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder under data/bench/, removed afterwards unless `keep`."""
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix + "-", dir=BENCH_DATA))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def file_mb(path: str | Path) -> float:
    """Size of a file, or of a DuckDB database with its WAL."""
    path = Path(path)
    total = sum(p.stat().st_size for p in (path, Path(str(path) + ".wal")) if p.exists())
    return total / 2**20


# ---------------------------------------------------------------- output

@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: no target to meet


def status(row: Row) -> str:
    return "" if row.ok is None else ("ok" if row.ok else "MISSED")


def print_table(rows: list[Row], title: str | None = None, file=None) -> None:
    file = file or sys.stdout
    headers = ("metric", "value", "target", "")
    cells = [(r.metric, r.value, r.target, status(r)) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}", file=file)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip(), file=file)
    file.flush()


def write_json(path: str | None, rows: list[Row], extra: dict | None = None) -> None:
    if path:
        Path(path).write_text(json.dumps({"rows": [asdict(r) for r in rows], "load": load(),
                                          **(extra or {})}, indent=2, default=str))


def bench_args(doc: str, default_events: int, **extra: tuple) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=default_events,
                        help=f"events in the main data set (default {default_events:,})")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (default 2; best is reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (used by run_all.py)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder under data/bench/")
    for flag, (kwargs) in extra.items():
        parser.add_argument(flag, **kwargs)
    return parser


def log(msg: str) -> None:
    """Progress on stderr, so stdout stays the figures."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

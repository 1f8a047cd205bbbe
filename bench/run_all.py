"""Runs every benchmark script in bench/ and prints one table: metric | value | target.

Our scripts (ingest, counters, baseline_pandas, periods, projection) report through `--json`; the
others (pricing.py, push.py, and any new bench script) are run as plain
subprocesses and their output lines are read as "label   value" rows, with
the target taken from "target: ..." in their docstring. A missing or failing
script is reported in the table, never fatal. Each script's full output is
kept in data/bench/results/<script>.txt.

Run: python bench/run_all.py [--quick] [--only ingest,counters,...]
  --quick  scaled-down sizes, a few minutes in all (full size: 10M events, ~20 min on a busy 2-core machine)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import common
from common import Row, log

BENCH = Path(__file__).resolve().parent
RESULTS = common.BENCH_DATA / "results"
HELPERS = {"common.py", "run_all.py"}
ORDER = ["ingest.py", "counters.py", "baseline_pandas.py", "catchup.py", "pricing.py", "push.py", "push_steady.py",
         "reconcile.py", "periods.py", "projection.py", "landing.py", "snapshot.py"]

# Arguments per script: (full, quick). Scripts with --json report rows as JSON.
OURS = {
    "ingest.py": ([], ["--events", "500000", "--format-events", "100000", "--scale-events", "1000000"]),
    "counters.py": ([], ["--events", "1000000", "--late", "10000"]),
    "baseline_pandas.py": ([], ["--events", "200000"]),
    "periods.py": ([], ["--events", "1000000", "--customers", "2000"]),
    "projection.py": ([], ["--counters", "50000"]),
}
OTHERS = {
    "pricing.py": ([], ["20000"]),
    "push.py": ([], ["--counters", "500", "--paced", "40"]),
    "reconcile.py": ([], ["--customers", "500", "--counters", "50000"]),
    "catchup.py": ([], ["--events", "200000"]),
    "push_steady.py": ([], ["--counters", "50000"]),
    "landing.py": ([], ["--files", "20000"]),
    "snapshot.py": ([], ["--counters", "2000", "--repeat", "1"]),
}


def scripts() -> list[str]:
    """Every bench script: bench/*.py but the helpers (common.py, _*.py, this file)."""
    return sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS and not p.name.startswith("_"))


def docstring_target(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except SyntaxError:
        return ""
    m = re.search(r"target:\s*([^)\n]+)", doc, re.IGNORECASE)
    return m.group(1).strip().rstrip(".") if m else ""


_BOUND = re.compile(r"(at most|<=|≤|at least|>=|≥)\s*([\d.,]+)", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([\d.,]+)")
_LINE = re.compile(r"^(?P<metric>\S.*?)\s{2,}(?P<value>\S.*)$")


def check(value: str, target: str) -> bool | None:
    bound, number = _BOUND.search(target), _NUMBER.match(value)
    if not bound or not number:
        return None
    try:
        limit, got = float(bound.group(2).replace(",", "")), float(number.group(1).replace(",", ""))
    except ValueError:
        return None
    return got <= limit if bound.group(1).lower() in ("at most", "<=", "≤") else got >= limit


def text_rows(name: str, out: str, target: str) -> list[Row]:
    """Rows from a script's text output: "label   value" lines, or
    "label | value [| target]" table lines (header and rule lines skipped)."""
    rows = []
    for line in out.splitlines():
        if not line.strip() or set(line.strip()) <= set("-|+= "):
            continue
        if "|" in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0].lower() == "metric" or len(cells) < 2:
                continue
            row_target = cells[2] if len(cells) > 2 and cells[2] else target
            rows.append(Row(f"{name}: {cells[0]}", cells[1], row_target, check(cells[1], row_target)))
            continue
        m = _LINE.match(line.strip())
        if m and any(ch.isdigit() for ch in m["value"]):
            value = m["value"].strip()
            rows.append(Row(f"{name}: {m['metric'].strip()}", value, target, check(value, target)))
        elif line.strip():
            rows.append(Row(f"{name}: {line.strip()}", ""))
    return rows


def merge_runs(runs: list[list[Row]]) -> list[Row]:
    """Rows of repeated runs of one script: per metric, the best value (the
    lowest, or the highest when the target is "at least"), with the spread."""
    merged = []
    for i, row in enumerate(runs[0]):
        same = [r[i] for r in runs if i < len(r) and r[i].metric == row.metric]
        numbers = [(float(m.group(1).replace(",", "")), r) for r in same if (m := _NUMBER.match(r.value))]
        if len(numbers) < 2 or len({r.value for _, r in numbers}) == 1:
            merged.append(row)
            continue
        # Lower is better (times), unless the target says "at least" or the value is a rate.
        higher = bool(re.search(r"at least|>=|≥", row.target, re.IGNORECASE) or re.search(r"/s\b", row.value))
        best_value, best = (max if higher else min)(numbers, key=lambda x: x[0])
        lo, hi = min(v for v, _ in numbers), max(v for v, _ in numbers)
        spread = (hi - lo) / lo * 100 if lo else 0.0
        merged.append(Row(best.metric, f"{best.value} (best of {len(numbers)}, spread {spread:.0f}%)",
                          best.target, check(best.value, best.target)))
    return merged


def run(cmd: list[str], log_path: Path, timeout: float) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True, timeout=timeout)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -1, exc.stdout or "", (exc.stderr or "") + f"\ntimed out after {timeout:.0f} s"
        out = out.decode() if isinstance(out, bytes) else out
        err = err.decode() if isinstance(err, bytes) else err
    log_path.write_text(f"$ {' '.join(cmd)}\n\n--- stdout\n{out}\n--- stderr\n{err}")
    return code, out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes (a few minutes)")
    parser.add_argument("--only", help="comma-separated script names (without .py)")
    parser.add_argument("--timeout", type=float, default=3600, help="per script, seconds")
    parser.add_argument("--repeat", type=int, default=2, help="runs of the scripts that do not repeat themselves")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = ORDER + [s for s in scripts() if s not in ORDER]
    if args.only:
        keep = {s.strip().removesuffix(".py") + ".py" for s in args.only.split(",")}
        names = [s for s in names if s in keep]
    rows: list[Row] = []
    started = time.perf_counter()
    load_before = common.load()
    for name in names:
        if not (BENCH / name).exists():
            rows.append(Row(name, "absent (skipped)"))
            continue
        path = BENCH / name
        log_path = RESULTS / f"{name.removesuffix('.py')}.txt"
        log(f"running {name} ({'quick' if args.quick else 'full'}), {common.load()}")
        if name in OURS:
            json_path = RESULTS / f"{name.removesuffix('.py')}.json"
            json_path.unlink(missing_ok=True)
            extra = OURS[name][1 if args.quick else 0]
            code, out, took = run([common.PYTHON, str(path), *extra, "--json", str(json_path)], log_path, args.timeout)
            if code == 0 and json_path.exists():
                data = json.loads(json_path.read_text())
                rows += [Row(**r) for r in data["rows"]]
            else:
                rows.append(Row(f"{name}", f"FAILED (exit {code}); see {log_path.relative_to(common.ROOT)}", "", False))
        else:
            extra = OTHERS.get(name, ([], []))[1 if args.quick else 0]
            runs, took = [], 0.0
            for i in range(args.repeat):
                run_log = log_path.with_name(f"{log_path.stem}-{i + 1}.txt")
                code, out, t = run([common.PYTHON, str(path), *extra], run_log, args.timeout)
                if code == 2 and extra:  # it does not take these flags: its default arguments
                    extra = []
                    code, out, t = run([common.PYTHON, str(path)], run_log, args.timeout)
                took += t
                if code != 0:
                    where = run_log.relative_to(common.ROOT)
                    rows.append(Row(f"{name}", f"FAILED (exit {code}); see {where}", "", False))
                    break
                runs.append(text_rows(name.removesuffix(".py"), out, docstring_target(path)))
            if runs:
                rows += merge_runs(runs)
        log(f"{name} done in {took:.0f} s")
    total = time.perf_counter() - started
    title = (f"stripemeter benchmarks ({'quick' if args.quick else 'full'}; {total:.0f} s; "
             f"before: {load_before}; after: {common.load()})")
    common.print_table(rows, title)
    missed = [r for r in rows if r.ok is False]
    if missed:
        print(f"\n{len(missed)} row(s) missed their target.")
    print(f"Full outputs: {RESULTS.relative_to(common.ROOT)}/")


if __name__ == "__main__":
    main()
    sys.exit(0)

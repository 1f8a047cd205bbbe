"""Reliability fixtures: real child processes killed with SIGKILL, tmpfs
mounts for full or read-only disks, and the accounting invariants every
batch must keep whatever it was fed."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from stripemeter_assets.warehouse import connect

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STRIPEMETER = VENV_BIN / "stripemeter"
CHILD = Path(__file__).with_name("_child.py")


def child_env(**extra: str) -> dict[str, str]:
    """The current environment (the `env` fixture's variables included)."""
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


class Child:
    """A child process whose stdout lines are collected as they arrive, so
    the test can kill it when a given line (a phase marker) shows up."""

    def __init__(self, args: list[str], **env: str):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=child_env(**env), cwd=str(PROJECT), start_new_session=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, prefix: str, timeout: float = 60) -> bool:
        """True once a line starting with `prefix` was printed; False if the
        process ended first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(line.startswith(prefix) for line in self.lines):
                    return True
                if self.proc.poll() is not None and not self._reader.is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line {prefix!r} within {timeout}s; got {self.lines[-5:]}")
                self._cond.wait(min(left, 0.05))

    def kill9(self) -> bool:
        """SIGKILL the whole process group; True if it was still running."""
        alive = self.proc.poll() is None
        if alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return alive

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise
        self._reader.join(timeout=5)
        return self.proc.returncode, "\n".join(self.lines), err


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(STRIPEMETER), *args], capture_output=True, text=True, env=child_env(**env),
                          cwd=str(PROJECT), timeout=timeout)


# -- tmpfs ---------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m", options: str = ""):
    """A tmpfs mounted at `path` (root only); skips the test when mounting is
    not allowed here."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, f"sm-{uuid.uuid4().hex[:8]}", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


# -- invariants ----------------------------------------------------------------

TABLES = ("events", "quarantine", "landing_files", "watermarks", "late_events", "daily_usage", "period_usage")
_SCHEMA_SQL = ("SELECT table_name, column_name, data_type FROM duckdb_columns() "
               "WHERE NOT internal AND schema_name = 'main' AND database_name = current_database() ORDER BY ALL")


@functools.cache
def pristine_schema() -> list[tuple]:
    """Every column of a freshly created warehouse."""
    with connect(":memory:") as conn:
        return conn.execute(_SCHEMA_SQL).fetchall()


def assert_ledger_consistent(env) -> None:
    """What every batch must leave behind, whatever it was fed:
    - every table of the schema still exists, with its columns unchanged;
    - per loaded file, rows_total = loaded + duplicate + quarantined, the
      ledger holds exactly rows_loaded of its rows and quarantine exactly
      rows_quarantined;
    - every rejected file has an error and an `unparseable_file` entry;
    - no (tenant, idempotency key) twice in the ledger."""
    tables = {r[0] for r in env.sql("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
    assert set(TABLES) <= tables, f"tables missing: {set(TABLES) - tables}"
    assert env.sql(_SCHEMA_SQL) == pristine_schema(), "a table was altered"
    files = env.sql("""
        SELECT f.file_seq, f.path, f.status, f.error, f.rows_total, f.rows_loaded, f.rows_duplicate,
               f.rows_quarantined,
               (SELECT count(*) FROM events e WHERE e.source_file = f.path AND e.batch_id = f.batch_id),
               (SELECT count(*) FROM quarantine q WHERE q.source_file = f.path AND q.batch_id = f.batch_id
                                                  AND q.reason <> 'unparseable_file'),
               (SELECT count(*) FROM quarantine q WHERE q.source_file = f.path AND q.batch_id = f.batch_id
                                                  AND q.reason = 'unparseable_file')
        FROM landing_files f ORDER BY f.file_seq""")
    for seq, path, status, error, total, loaded, dup, quar, in_ledger, in_quarantine, unparseable in files:
        where = f"{path!r} ({status})"
        if status == "loaded":
            assert total == loaded + dup + quar, where
            assert in_ledger == loaded, where
            assert in_quarantine == quar, where
            assert unparseable == 0, where
        elif status == "rejected":
            assert error, where
            assert (total, loaded, dup, quar, in_ledger, in_quarantine, unparseable) == (0, 0, 0, 0, 0, 0, 1), where
        else:
            assert status == "skipped", where
            assert (loaded, in_ledger, in_quarantine) == (0, 0, 0), where
    assert env.sql("SELECT tenant_id, idempotency_key, count(*) FROM events GROUP BY ALL HAVING count(*) > 1") == []


def same_rows(actual: list[tuple], expected: list[tuple], what: str = "rows") -> None:
    """Equality of two large row lists with a short message (pytest's own
    diff of long lists is quadratic)."""
    if actual == expected:
        return
    a, e = set(actual), set(expected)
    raise AssertionError(f"{what} differ: {len(actual)} vs {len(expected)} rows; "
                         f"only in actual {sorted(a - e, key=repr)[:3]}, only in expected {sorted(e - a, key=repr)[:3]}")


def run_to_completion(args: list[str], instance, timeout: float = 120, wedge_after: float = 5.0,
                      **env: str) -> tuple[int, str, str]:
    """Runs a child to its end. Fails fast, instead of hanging, when one of
    its steps waits for the `duckdb` pool while the slot is held by a run
    that existed before it started (a run of a process already killed)."""
    earlier = set(instance.get_run_ids())
    child = Child(args, **env)
    blocked_since = None
    deadline = time.monotonic() + timeout
    try:
        while child.proc.poll() is None:
            info = instance.event_log_storage.get_concurrency_info("duckdb")
            stale = info.active_run_ids & earlier
            waiting = [p for p in info.pending_steps if p.run_id not in earlier]
            if stale and waiting:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > wedge_after:
                    runs = {r.run_id: f"{r.job_name} {r.status.value}" for r in instance.get_runs()}
                    raise AssertionError(
                        f"wedged: step {waiting[0].step_key} of run {waiting[0].run_id} "
                        f"({runs.get(waiting[0].run_id)}) has waited {wedge_after:.0f}s for the duckdb pool, "
                        f"whose only slot is still claimed by killed run(s) "
                        f"{[(r, runs.get(r)) for r in sorted(stale)]}")
            else:
                blocked_since = None
            if time.monotonic() > deadline:
                raise AssertionError(f"{args} did not finish within {timeout}s")
            time.sleep(0.25)
        return child.finish()
    finally:
        child.kill9()

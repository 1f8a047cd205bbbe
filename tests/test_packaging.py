"""The wheel is what a container installs: it must hold every SQL file, the
bundled defaults and every package, and run the demo outside the checkout
(the one end-to-end run of `stripemeter demo` in the suite)."""

import os
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import duckdb
import pytest

from stripemeter_assets import settings
from tests import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    [path] = out.glob("stripemeter-*.whl")
    return path


def test_every_package_of_the_source_tree_is_listed_for_the_wheel():
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO_ROOT).parts)
               for p in (REPO_ROOT / "stripemeter_assets").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert on_disk <= listed, f"add to pyproject's packages: {sorted(on_disk - listed)}"


def test_the_wheel_holds_every_sql_file_and_the_bundled_defaults(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sql = {f"stripemeter_assets/sql/{p.relative_to(REPO_ROOT / 'sql')}" for p in (REPO_ROOT / "sql").rglob("*.sql")}
    assert sql and sql <= names, sorted(sql - names)
    assert {"stripemeter_assets/bundled/stripemeter.yaml", "stripemeter_assets/bundled/dagster.yaml"} <= names


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # The dependencies come from this environment; the package itself only from the wheel.
    [purelib] = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.split()
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(purelib)
    deps = [p for p in site.getsitepackages() if "site-packages" in p]
    Path(purelib, "deps.pth").write_text("\n".join(deps) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPEMETER_", "DAGSTER_", "STRIPE_"))}
    env["PYTHONPATH"] = ""
    where = subprocess.run([str(py), "-c", "import stripemeter_assets; print(stripemeter_assets.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(purelib), where
    demo = subprocess.run([str(py), "-m", "stripemeter_assets.cli.commands", "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    # The demo (what `make demo` runs) end to end: the pipeline ran, pushed to the bundled emulator and
    # reconciled, and no key reached the output.
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "FAILED" not in demo.stdout
    assert "generated 8 sample landing files" in demo.stdout
    assert (work / "data" / "config" / "stripemeter.yaml").read_text() == settings.bundled("stripemeter.yaml")
    assert (work / "data" / "warehouse.duckdb").exists()
    assert any((work / "data" / "reports").iterdir())
    accepted = int(demo.stdout.split("the emulator accepted ")[1].split()[0])
    assert accepted > 0
    con = duckdb.connect(str(work / "data" / "analytics.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM stripe_pushes WHERE status = 'acknowledged'").fetchone()[0] == accepted
    statuses = dict(con.execute("SELECT status, count(*) FROM reconciliation GROUP BY ALL").fetchall())
    # Just pushed: Stripe's summaries are trusted only after stripe.summary_settle_minutes (60 min).
    assert statuses.get("pending", 0) > 0 and "drift" not in statuses and "stripe_error" not in statuses
    assert "sk_test_stripemeter" not in demo.stdout + demo.stderr
    assert not (REPO_ROOT / "data" / "warehouse.duckdb").exists() or \
        (REPO_ROOT / "data" / "warehouse.duckdb").stat().st_mtime < (work / "data" / "warehouse.duckdb").stat().st_mtime

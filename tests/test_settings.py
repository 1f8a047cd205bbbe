"""Settings: every default path follows the configured data location."""

from pathlib import Path

import stripemeter_assets
from stripemeter_assets import settings


def _clear(monkeypatch):
    for name in ("STRIPEMETER_DATA", "STRIPEMETER_LANDING", "STRIPEMETER_WAREHOUSE", "STRIPEMETER_ANALYTICS",
                 "STRIPEMETER_CONFIG", "STRIPEMETER_REPORTS", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_two_warehouses_write_their_reports_into_two_folders(monkeypatch, tmp_path):
    _clear(monkeypatch)
    folders = []
    for name in ("a", "b"):
        monkeypatch.setenv("STRIPEMETER_WAREHOUSE", str(tmp_path / name / "warehouse.duckdb"))
        folders.append(settings.reports_dir())
    assert folders == [tmp_path / "a" / "reports", tmp_path / "b" / "reports"]


def test_defaults_sit_in_the_data_folder_never_in_the_package(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.chdir(tmp_path)
    package = Path(stripemeter_assets.__file__).resolve().parent
    paths = [Path(settings.landing_url()), Path(settings.warehouse_path()), Path(settings.analytics_path()),
             Path(settings.config_path()), settings.reports_dir(), settings.dagster_home()]
    assert all(p.is_relative_to(tmp_path / "data") for p in paths), paths
    assert not any(p.is_relative_to(package) for p in paths)
    monkeypatch.setenv("STRIPEMETER_DATA", str(tmp_path / "elsewhere"))
    assert settings.reports_dir() == tmp_path / "elsewhere" / "reports"
    assert settings.dagster_home() == tmp_path / "elsewhere" / "dagster_home"


def test_the_original_stripemeter_key_names_are_accepted(monkeypatch):
    for name in settings.stripe_key_env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_" + "orig" * 3)
    monkeypatch.setenv("STRIPE_TEST_SECRET_KEY", "sk_test_" + "shad" * 3)
    assert settings.stripe_live_key() == "sk_test_" + "orig" * 3
    assert settings.stripe_test_key() == "sk_test_" + "shad" * 3
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_" + "main" * 3)
    assert settings.stripe_live_key() == "sk_test_" + "main" * 3

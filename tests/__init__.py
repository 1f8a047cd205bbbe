"""The test suite mirrors the package: one folder per stage."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

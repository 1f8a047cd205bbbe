"""The landing area: a local folder or any fsspec URL (`s3://bucket/prefix`).

Writers publish atomically (write a dot-file or `*.tmp`, then rename), so a
file is ready when its name is final and it has not changed for a moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec

from stripemeter_assets.ingest.formats import detect_format

IGNORED_SUFFIXES = (".tmp", ".part")
DEFAULT_SETTLE_SECONDS = 2.0


@dataclass(frozen=True, order=True)
class LandingFile:
    path: str       # full URL or local path, as the landing lists it
    size: int
    mtime: float
    format: str

    @property
    def version(self) -> str:
        """Identity of this version of the file, for sensor cursors."""
        return f"{self.mtime:.6f}:{self.size}"


def settle_seconds() -> float:
    return float(os.environ.get("STRIPEMETER_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS))


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def list_ready_files(url: str, settle: float | None = None, now: float | None = None) -> list[LandingFile]:
    """Files ready to ingest, in a stable order (by path)."""
    settle = settle_seconds() if settle is None else settle
    now = time.time() if now is None else now
    fs, root = _filesystem(url)
    if not fs.exists(root):
        return []
    found = []
    for path, info in fs.find(root, detail=True, withdirs=False).items():
        name = path.rsplit("/", 1)[-1]
        rel = path[len(root.rstrip("/")) + 1:] if path.startswith(root.rstrip("/")) else path
        if any(part.startswith(".") for part in rel.split("/")) or name.endswith(IGNORED_SUFFIXES):
            continue
        fmt = detect_format(name)
        if fmt is None:
            continue
        mtime = _mtime(info)
        if now - mtime < settle:
            continue
        full = path if _is_local(url) else fs.unstrip_protocol(path)
        found.append(LandingFile(path=full, size=int(info.get("size") or 0), mtime=mtime, format=fmt))
    return sorted(found)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def local_copy(file: LandingFile) -> Iterator[tuple[str, str]]:
    """(local path, sha256 of the content). A remote file is copied to a
    temporary file first, since DuckDB reads only local files here."""
    if _is_local(file.path):
        local = file.path.removeprefix("file://")
        yield local, _sha256_file(local)
        return
    fs, path = _filesystem(file.path)
    name = path.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="stripemeter-landing-") as tmp:
        local = os.path.join(tmp, name)
        digest = hashlib.sha256()
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            while chunk := src.read(8 << 20):
                digest.update(chunk)
                dst.write(chunk)
        yield local, digest.hexdigest()



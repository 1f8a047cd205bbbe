"""Atomic publication of one landing file, locally or on any fsspec URL.

The landing scan (`ingest/landing.py`) ignores dot-files and `*.tmp`, so the
content is written under `.{name}.tmp` in the same folder and renamed to its
final name only once complete: a scan sees the whole file or nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import fsspec

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME_PART = 64


def _safe(part: str) -> str:
    # No dots: a tenant ".x" must never turn the file into an ignored dot-file.
    return _UNSAFE.sub("_", part)[:MAX_NAME_PART] or "_"


def unique_name(tenant_id: str) -> str:
    """`{tenant}-{utc time}-{host}-{pid}-{uuid4}.jsonl`: unique across threads,
    processes and hosts (the uuid alone suffices; the rest orders files by
    tenant and time and says where they came from). The pid is read at write
    time, so a forked child never shares its parent's."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{_safe(tenant_id)}-{stamp}-{_safe(socket.gethostname())}-{os.getpid()}-{uuid.uuid4().hex}.jsonl"


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class LandingWriter:
    """Writes complete files into the landing folder or bucket."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = url
        if _is_local(url):
            self._fs = None
            self._root = url.removeprefix("file://")
        else:
            self._fs, self._root = fsspec.core.url_to_fs(url, **(storage_options or {}))

    def write(self, data: bytes, tenant_id: str) -> str:
        """Publishes `data` as a new file; returns its path (a URL when remote).
        Raises on failure, leaving no temporary file behind when it can."""
        name = unique_name(tenant_id)
        if self._fs is None:
            return self._write_local(name, data)
        return self._write_remote(name, data)

    def probe(self) -> None:
        """Raises unless a file can be created in the landing (readiness
        checks). The probe is a dot-file, which the landing scan ignores."""
        name = f".probe-{uuid.uuid4().hex}.tmp"
        if self._fs is None:
            os.makedirs(self._root, exist_ok=True)
            path = os.path.join(self._root, name)
            with open(path, "wb"):
                pass
            os.unlink(path)
        else:
            path = f"{self._root.rstrip('/')}/{name}"
            self._fs.pipe_file(path, b"")
            self._fs.rm(path)

    def _write_local(self, name: str, data: bytes) -> str:
        os.makedirs(self._root, exist_ok=True)
        final = os.path.join(self._root, name)
        tmp = os.path.join(self._root, f".{name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self._root)
        return final

    def _write_remote(self, name: str, data: bytes) -> str:
        fs, root = self._fs, self._root.rstrip("/")
        final, tmp = f"{root}/{name}", f"{root}/.{name}.tmp"
        try:
            fs.makedirs(root, exist_ok=True)
            with fs.open(tmp, "wb") as fh:
                fh.write(data)
            # On object stores `mv` is copy + delete; the copy appears whole.
            fs.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                if fs.exists(tmp):
                    fs.rm(tmp)
            raise
        return fs.unstrip_protocol(final)


def _fsync_dir(folder: str) -> None:
    """Makes the rename durable. Best effort: some filesystems refuse to fsync
    a directory, and the file is already published either way."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""The landing area: a local folder or any fsspec URL (`s3://bucket/prefix`).

Writers publish atomically (write a dot-file or `*.tmp`, then rename), so a
file is ready when its name is final and it has not changed for a moment.

Buckets are reached through fsspec (s3fs for `s3://`). Credentials and the
endpoint come from the usual places: `AWS_ACCESS_KEY_ID` and friends, and an
S3-compatible server (MinIO, moto, ...) through `AWS_ENDPOINT_URL_S3` or
`AWS_ENDPOINT_URL` (read by botocore when each client is made), or
`FSSPEC_S3_ENDPOINT_URL` (read by fsspec once, at import).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import fsspec

from stripemeter_assets import settings
from stripemeter_assets.ledger.formats import SUFFIXES, detect_format

IGNORED_SUFFIXES = (".tmp", ".part")
CHUNK_BYTES = 8 << 20
# Where a landing's ingested files go (a dot-folder: the scan never enters it).
ARCHIVE_FOLDER = ".ingested"
OBJECT_MOVES = 16  # objects moved at once


@dataclass(frozen=True, order=True)
class LandingFile:
    path: str       # full URL (`s3://bucket/key`) or local path, as the landing lists it
    size: int
    mtime: float    # POSIX seconds; S3's LastModified for objects
    format: str
    etag: str = ""  # the store's content tag when it has one (S3 ETag), else empty

    @property
    def version(self) -> str:
        """Identity of this version of the file, for sensor cursors.

        S3's LastModified has one-second resolution, so an object rewritten
        within the same second with the same size would look unchanged; its
        ETag tells the two apart."""
        base = f"{self.mtime:.6f}:{self.size}"
        return f"{base}:{self.etag}" if self.etag else base


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _hidden(rel: str) -> bool:
    """Dot-files (and anything under a dot-folder) and partial uploads."""
    name = rel.rsplit("/", 1)[-1]
    return any(part.startswith(".") for part in rel.split("/")) or name.lower().endswith(IGNORED_SUFFIXES)


def _list(fs: fsspec.AbstractFileSystem, root: str, local: bool) -> dict[str, dict]:
    """Every file under `root` outside dot-folders, which the walk never
    enters: `.ingested/` (see `archive`) grows with history and is never read."""
    # A code server lives for days; fsspec caches both the filesystem object and
    # its directory listings, and a stale listing would hide new files.
    fresh = {} if local else {"refresh": True}
    found: dict[str, dict] = {}
    # A missing root (or an empty prefix) is simply nothing to do; other
    # errors (a missing bucket, no permission) fail the tick.
    for _folder, dirs, files in fs.walk(root, detail=True, on_error=_raise_unless_missing, **fresh):
        for name in [d for d in dirs if d.startswith(".")]:
            del dirs[name]
        found.update((info["name"], info) for info in files.values())
    return found


def _raise_unless_missing(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):
        raise exc


def list_ready_files(url: str, settle: float | None = None, now: float | None = None) -> list[LandingFile]:
    """Files ready to ingest, in a stable order (by path).

    Every ready file is returned on every call: callers keep their own record
    of what they have seen (the sensor keeps path -> version), never a
    high-water mark of mtimes or names, which equal LastModified seconds and
    odd key orders would defeat."""
    settle = settings.landing_settle_seconds() if settle is None else settle
    now = time.time() if now is None else now
    local = _is_local(url)
    fs, root = _filesystem(url)
    prefix = root.rstrip("/") + "/"
    found = []
    for path, info in _list(fs, root, local).items():
        if info.get("type") == "directory":
            continue
        rel = path[len(prefix):] if path.startswith(prefix) else path.rsplit("/", 1)[-1]
        if _hidden(rel):
            continue
        fmt = detect_format(rel.rsplit("/", 1)[-1])
        if fmt is None:
            continue
        mtime = _mtime(info)
        if now - mtime < settle:
            continue
        full = path if local else fs.unstrip_protocol(path)
        etag = "" if local else str(info.get("ETag") or info.get("etag") or "").strip('"')
        found.append(LandingFile(path=full, size=int(info.get("size") or 0), mtime=mtime, format=fmt, etag=etag))
    return sorted(found)


def archive(url: str, files: list[LandingFile], *, batch_id: str, day: str) -> list[str]:
    """Moves files whose content the ledger holds out of the landing, to
    `.ingested/<day>/<batch_id>/<path in the landing>`, where no scan looks:
    listing the landing (each sensor tick, each ingest run, /metrics) and the
    sensor's cursor then follow what is new, not everything ever dropped.
    A file replaced since the batch listed it stays, to be ingested. Returns
    one line per file that stays for any other reason.

    A folder's files are renamed. A bucket's objects are copied, then deleted
    only if still the version listed (S3's conditional delete); a store that
    ignores the condition keeps its objects, as do other fsspec stores."""
    if not files:
        return []
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    if _is_local(url):
        move = _move_file
    elif "s3" in _protocols(fs):
        # The batch is committed whatever happens here: a failure to move
        # (s3fs raises botocore's own errors too) leaves files and a warning.
        try:
            if not _deletes_only_the_version_read(fs, root):
                return [f"{len(files)} objects stay in the landing: this store ignores conditional deletes "
                        "(If-Match), so a delete could remove a version written since; expire them with a lifecycle rule"]
        except Exception as exc:  # noqa: BLE001
            return [f"{len(files)} objects stay in the landing: {type(exc).__name__}: {exc}"]
        move = _move_object
    else:
        return []

    def one(file: LandingFile) -> str | None:
        source = _filesystem(file.path)[1]
        try:
            move(fs, file, source, f"{root}/{ARCHIVE_FOLDER}/{day}/{batch_id}/{source[len(root) + 1:]}")
        except Stranded as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 (see above)
            return f"{file.path} stays in the landing: {type(exc).__name__}: {exc}"
        return None

    # An object takes two requests (copy, delete), each a round trip to the
    # store, and the ingest run holds the warehouse's pool slot meanwhile.
    with ThreadPoolExecutor(max_workers=1 if move is _move_file else OBJECT_MOVES) as pool:
        return [problem for problem in pool.map(one, files) if problem]


class Stranded(Exception):
    """A file replaced after its batch listed it was moved and cannot go back."""


def _move_file(fs: fsspec.AbstractFileSystem, file: LandingFile, source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(source, target)
    moved = os.stat(target)
    if dataclasses.replace(file, mtime=moved.st_mtime, size=moved.st_size).version != file.version:
        # A producer replaced the file after the batch listed it: what was
        # moved may not be in the ledger, so it goes back to be ingested,
        # never over a still newer file.
        try:
            os.link(target, source)
        except OSError as exc:
            raise Stranded(f"{target} was replaced after its batch listed it and may not be ingested: "
                           f"move it back to the landing ({exc})") from exc
        os.unlink(target)


def _move_object(fs: fsspec.AbstractFileSystem, file: LandingFile, source: str, target: str) -> None:
    if not file.etag:
        raise OSError("the listing gave no ETag, so no delete can be limited to the version listed")
    fs.copy(source, target)
    if not _delete_if_unchanged(fs, source, file.etag):
        # Rewritten since the batch listed it: the new version stays to be
        # ingested, and the copy (of either version) is not kept.
        fs.rm(target)


def _deletes_only_the_version_read(fs: fsspec.AbstractFileSystem, root: str) -> bool:
    """Whether the store refuses a delete whose If-Match names another
    version, as S3 does (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
    Asked of a probe object, since an S3-compatible store may ignore the
    header and delete anyway."""
    probe = f"{root}/{ARCHIVE_FOLDER}/.probe-{uuid.uuid4().hex}"
    fs.pipe_file(probe, b"")
    if _delete_if_unchanged(fs, probe, "0" * 32):
        return False  # deleted although the ETag named another version
    fs.rm(probe)
    return True


def _delete_if_unchanged(fs: fsspec.AbstractFileSystem, path: str, etag: str) -> bool:
    """Deletes the object if its ETag is still `etag`; False when the store refused (412)."""
    bucket, key, _ = fs.split_path(path)
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
    except OSError as exc:
        response = getattr(exc.__cause__, "response", None) or {}
        if response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        return False
    return True


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def local_copy(file: LandingFile) -> Iterator[tuple[str, str]]:
    """(local path safe to hand to DuckDB, sha256 of the content).

    DuckDB's readers expand `*`, `?`, `[...]` and `{...}` in a path as a glob,
    so a landing name is never passed to them: a local file is reached
    through a symlink with a neutral name, and a remote file is downloaded
    (hashing it on the way) to a temporary file with such a name. Either way
    the name keeps the suffix (`.gz`, `.parquet`) that tells the reader what
    the file holds."""
    with tempfile.TemporaryDirectory(prefix="stripemeter-landing-") as tmp:
        safe = os.path.join(tmp, "landing" + _suffix(file))
        if _is_local(file.path):
            source = os.path.abspath(file.path.removeprefix("file://"))
            os.symlink(source, safe)
            yield safe, _sha256_file(source)
            return
        fs, path = _filesystem(file.path)
        digest = hashlib.sha256()
        with fs.open(path, "rb") as src, open(safe, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
                dst.write(chunk)
        yield safe, digest.hexdigest()


def _suffix(file: LandingFile) -> str:
    name = file.path.rsplit("/", 1)[-1].lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), "")

"""Storage is fsspec URLs throughout: a local folder by default, ``s3://`` in the cloud.

Two guarantees live here and nowhere else:

* `write_bytes` makes a single object appear whole or not at all (a rename on a local disk,
  one PUT on an object store).
* `publish` makes a multi-file dataset appear whole or not at all: files are written under a
  fresh folder for a version named by the content of their inputs, and only then does the
  dataset's ``_CURRENT.json`` pointer switch to it. Readers resolve the pointer (`current`), so they never
  see a partial result; publishing the same version again is a no-op, never a second copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger(__name__)

POINTER = "_CURRENT.json"
COMPLETE = "_COMPLETE.json"  # written last inside a version folder: the folder is whole
STAMP = "%Y%m%dT%H%M%S"
STALE_AFTER = timedelta(hours=6)  # longer than any attempt at writing one dataset version


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for any fsspec URL or local path."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(url: str, *parts: str) -> str:
    """Join URL segments with "/" (object stores have no os.sep)."""
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def check_writable(root: str) -> None:
    """A local data root must be (or be creatable in) a writable folder: one line otherwise."""
    from mlwf.errors import UserError

    try:
        fs, path = url_to_fs(root)
    except FileNotFoundError:  # a relative path, and the working folder was deleted
        raise UserError(f"output {root}: the working folder it is relative to no longer exists") from None
    if is_local(fs):
        from pathlib import Path

        target = Path(path)
        existing = next(p for p in [target, *target.parents] if p.exists())  # fsspec's paths are absolute
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise UserError(f"output {root} is not a writable folder")


def write_bytes(url: str, data: bytes) -> None:
    """Write one object atomically: readers see the old content or the new, never a part."""
    fs, path = url_to_fs(url)
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    directory = os.path.dirname(path)  # absolute (fsspec)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(url: str, document: Any) -> None:
    write_bytes(url, json.dumps(document, indent=2, sort_keys=True, default=str).encode())


def read_bytes(url: str) -> bytes:
    """A whole object's bytes."""
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as handle:
        return bytes(handle.read())


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url))


def exists(url: str) -> bool:
    fs, path = url_to_fs(url)
    return bool(fs.exists(path))


def remove(url: str) -> None:
    """Remove a file or a folder tree if it exists."""
    fs, path = url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def fingerprint(*parts: Any) -> str:
    """A short, stable content key for the given JSON-serialisable parts."""
    payload = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(frozen=True)
class Published:
    """Where a dataset version lives and whether this call wrote it."""

    url: str
    version: str
    written: bool
    meta: dict[str, Any]


def current(base_url: str) -> Published | None:
    """The dataset version that readers should use, or None if nothing was ever published."""
    pointer = join(base_url, POINTER)
    if not exists(pointer):
        return None
    doc = read_json(pointer)
    return Published(join(base_url, doc["folder"]), doc["version"], False, doc.get("meta", {}))


def publish(
    base_url: str,
    version: str,
    write: Callable[[str], dict[str, Any] | None],
    meta: dict[str, Any] | None = None,
) -> Published:
    """Write a dataset version with ``write(folder_url)`` and switch readers to it atomically.

    If the pointer already names ``version`` the call is a no-op; if an earlier attempt wrote
    the whole folder but failed to switch the pointer, that folder is adopted. Otherwise the
    attempt writes a folder of its own (``<version>.<time>.<random>``), so a crashed attempt, a
    retry and two concurrent runs never write into the same files; the pointer only ever names
    a complete folder, and the last complete writer wins with identical content.
    """
    existing = current(base_url)
    if existing is not None and existing.version == version:
        return existing
    started = datetime.now(UTC)
    adopted = _complete_folder(base_url, version)
    if adopted is not None:  # an earlier attempt wrote it all but never switched the pointer
        folder, merged = adopted
    else:
        folder = f"{version}.{started.strftime(STAMP)}.{uuid.uuid4().hex[:6]}"
        target = join(base_url, folder)
        try:
            merged = {**(meta or {}), **(write(target) or {})}
            write_json(join(target, COMPLETE), merged)
        except BaseException:
            _remove_quietly(target)  # a failed attempt leaves nothing; a killed one is pruned later
            raise
    doc = {"version": version, "folder": folder, "published_at": datetime.now(UTC).isoformat(), "meta": merged}
    write_json(join(base_url, POINTER), doc)
    keep = {folder, *(e.url.rsplit("/", 1)[-1] for e in [existing] if e is not None)}
    _prune(base_url, keep, started)
    return Published(join(base_url, folder), version, True, merged)


def find(base_url: str, version: str) -> Published | None:
    """A given version of a dataset: the current one, or an earlier complete one still kept."""
    published = current(base_url)
    if published is not None and published.version == version:
        return published
    complete = _complete_folder(base_url, version)
    if complete is None:
        return None
    return Published(join(base_url, complete[0]), version, False, complete[1])


def _complete_folder(base_url: str, version: str) -> tuple[str, dict[str, Any]] | None:
    """A folder of ``version`` that an earlier attempt finished (it holds the COMPLETE marker)."""
    fs, path = url_to_fs(base_url)
    if not fs.exists(path):
        return None
    for entry in sorted(fs.ls(path, detail=False)):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        marker = join(base_url, name, COMPLETE)
        if name.startswith(f"{version}.") and exists(marker):
            return name, read_json(marker)
    return None


def _remove_quietly(url: str) -> None:
    try:
        remove(url)
    except Exception:  # the storage that failed the write may fail the cleanup too
        log.warning("could not remove the failed attempt %s; it will be pruned later", url)


def _prune(base_url: str, keep: set[str], now: datetime) -> None:
    """Remove folders other than the current and the previous one (a reader may still be on
    it) once they are older than STALE_AFTER: a younger one may be a concurrent writer's."""
    fs, path = url_to_fs(base_url)
    for entry in fs.ls(path, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "directory" or name in keep or name.startswith("_"):
            continue
        try:
            written = datetime.strptime(name.split(".")[1], STAMP).replace(tzinfo=UTC)
        except (IndexError, ValueError):
            continue  # not a folder this module wrote: leave it alone
        if now - written >= STALE_AFTER:
            fs.rm(entry["name"], recursive=True)

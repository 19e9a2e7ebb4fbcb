"""Atomic single writes and all-or-nothing dataset versions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mlwf import storage


def _writer(files: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def write(target: str) -> dict[str, int]:
        for name, data in files.items():
            storage.write_bytes(storage.join(target, name), data)
        return {"files": len(files)}

    return write


def test_publish_points_readers_at_the_new_version(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    assert storage.current(base) is None
    published = storage.publish(base, "v1", _writer({"a.txt": b"1"}))
    assert published.written
    assert published.meta == {"files": 1}
    reader = storage.current(base)
    assert reader is not None
    assert (reader.version, reader.url) == ("v1", published.url)
    assert (Path(reader.url) / "a.txt").read_bytes() == b"1"


def test_publishing_the_same_version_again_is_a_no_op(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    storage.publish(base, "v1", _writer({"a.txt": b"1"}))
    calls = []
    again = storage.publish(base, "v1", lambda target: calls.append(target))  # type: ignore[func-returns-value]
    assert not again.written
    assert calls == []


@pytest.mark.reliability
def test_a_failed_write_leaves_readers_on_the_previous_version(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    storage.publish(base, "v1", _writer({"a.txt": b"1"}))

    def crash(target: str) -> None:
        storage.write_bytes(storage.join(target, "part-0"), b"half")
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        storage.publish(base, "v2", crash)
    assert storage.current(base).version == "v1"  # type: ignore[union-attr]
    assert [p.name.split(".")[0] for p in sorted((tmp_path / "ds").iterdir())] == ["_CURRENT", "v1"], "attempt removed"
    # The retry writes a folder of its own: the half-written part is never pointed at.
    retried = storage.publish(base, "v2", _writer({"b.txt": b"2"}))
    assert sorted(p.name for p in Path(retried.url).iterdir()) == ["_COMPLETE.json", "b.txt"]


def test_old_versions_are_pruned_but_the_previous_one_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "STALE_AFTER", timedelta(0))
    base = str(tmp_path / "ds")
    for version in ("v1", "v2", "v3"):
        storage.publish(base, version, _writer({"x": version.encode()}))
    kept = sorted(p.name.split(".")[0] for p in (tmp_path / "ds").iterdir())
    assert kept == ["_CURRENT", "v2", "v3"]


@pytest.mark.reliability
def test_a_concurrent_writers_young_folder_is_never_pruned(tmp_path: Path) -> None:
    """Run B is still writing v2 when run A publishes v1 and prunes: B's folder must survive."""
    base = str(tmp_path / "ds")
    in_progress = []

    def slow_writer(target: str) -> None:
        storage.write_bytes(storage.join(target, "part-0"), b"b")
        in_progress.append(target)
        storage.publish(base, "v1", _writer({"a": b"a"}))  # another run finishes meanwhile
        storage.write_bytes(storage.join(target, "part-1"), b"b")

    published = storage.publish(base, "v2", slow_writer)
    assert sorted(p.name for p in Path(published.url).iterdir()) == ["_COMPLETE.json", "part-0", "part-1"]
    assert storage.current(base).version == "v2"  # type: ignore[union-attr]


def test_write_bytes_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    storage.write_bytes(str(target), b"old")
    storage.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_fingerprints_are_stable_and_sensitive() -> None:
    assert storage.fingerprint("a", {"b": 1, "c": 2}) == storage.fingerprint("a", {"c": 2, "b": 1})
    assert storage.fingerprint("a", 1) != storage.fingerprint("a", 2)


@pytest.mark.reliability
def test_a_finished_folder_whose_switch_failed_is_adopted_not_written_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = str(tmp_path / "ds")
    real = storage.write_json
    calls = []

    def switch_fails_once(url: str, document: object) -> None:
        if url.endswith(storage.POINTER) and not calls:
            calls.append(url)
            raise ConnectionResetError("reset while switching")
        real(url, document)

    monkeypatch.setattr(storage, "write_json", switch_fails_once)
    with pytest.raises(ConnectionResetError):
        storage.publish(base, "v1", _writer({"a": b"1"}))
    writes = []
    retried = storage.publish(base, "v1", lambda target: writes.append(target))  # type: ignore[func-returns-value]
    assert writes == [], "the complete folder is adopted, not written again"
    assert retried.meta == {"files": 1}
    assert [p.name.split(".")[0] for p in sorted((tmp_path / "ds").iterdir())] == ["_CURRENT", "v1"]

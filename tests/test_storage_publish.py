"""Storage beyond the happy path of tests/test_storage.py: URL joining, the writable-root check,
the on-disk pointer and marker documents, finding and adopting versions, which folders pruning
leaves alone, and the same publish guarantees on S3 (the moto server of conftest.py, in-process),
including a cleanup that fails on a faulty network."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import fsspec
import pytest
from faulty_s3 import Faults, faulty_proxy

from mlwf import storage
from mlwf.errors import UserError

STAMPED = re.compile(r"^(?P<version>[^.]+)\.(?P<stamp>\d{8}T\d{6})\.[0-9a-f]{6}$")
OLD = "20200101T000000"  # years before any STALE_AFTER


def _writer(files: dict[str, bytes], meta: dict[str, Any] | None = None) -> Callable[[str], dict[str, Any] | None]:
    def write(target: str) -> dict[str, Any] | None:
        for name, data in files.items():
            storage.write_bytes(storage.join(target, name), data)
        return meta

    return write


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- URLs and single objects ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parts", "joined"),
    [
        ("s3://bucket/data", ("scores",), "s3://bucket/data/scores"),
        ("s3://bucket/data/", ("/scores/", "v1/"), "s3://bucket/data/scores/v1"),
        ("/tmp/root//", ("a", "/b"), "/tmp/root/a/b"),
        ("s3://bucket", (), "s3://bucket"),
        ("s3://bucket/SANDBOX", ("XRAY.X",), "s3://bucket/SANDBOX/XRAY.X"),  # only slashes are stripped
    ],
)
def test_join_uses_single_slashes(url: str, parts: tuple[str, ...], joined: str) -> None:
    assert storage.join(url, *parts) == joined


def test_url_to_fs_tells_local_from_object_store(tmp_path: Path) -> None:
    local, path = storage.url_to_fs(str(tmp_path / "x"))
    assert storage.is_local(local)
    assert path == str(tmp_path / "x")
    remote, key = storage.url_to_fs("s3://bucket/prefix/x")
    assert not storage.is_local(remote)
    assert key == "bucket/prefix/x"


def test_a_writable_or_creatable_local_root_passes(tmp_path: Path) -> None:
    storage.check_writable(str(tmp_path))
    storage.check_writable(str(tmp_path / "not" / "yet" / "there"))
    assert _names(tmp_path) == [], "checking creates nothing"


@pytest.mark.parametrize("below", ["", "sub/folder"])
def test_a_root_that_is_or_lies_under_a_file_is_one_line_error(tmp_path: Path, below: str) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    root = str(file / below) if below else str(file)
    with pytest.raises(UserError) as caught:
        storage.check_writable(root)
    assert str(caught.value) == f"output {root} is not a writable folder"


def test_an_object_store_root_is_not_checked_locally() -> None:
    storage.check_writable("s3://no-such-bucket-is-contacted/root")


def test_write_bytes_to_a_bare_file_name_writes_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage.write_bytes("file.bin", b"data")
    assert _names(tmp_path) == ["file.bin"]
    assert storage.read_bytes("file.bin") == b"data"


def test_the_temporary_is_written_beside_the_target_not_in_the_system_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is atomic only within one filesystem: a missing (or full) system temp folder,
    often another filesystem, must not matter."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-folder"))
    target = tmp_path / "data" / "file.bin"
    storage.write_bytes(str(target), b"data")
    assert target.read_bytes() == b"data"
    assert _names(tmp_path) == ["data"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    storage.write_bytes(str(target), b"old")
    with pytest.raises(TypeError):
        storage.write_bytes(str(target), "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["file.bin"]


def test_json_documents_are_indented_sorted_and_write_dates_as_text(tmp_path: Path) -> None:
    url = str(tmp_path / "doc.json")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    storage.write_json(url, {"b": when, "a": [1]})
    assert (tmp_path / "doc.json").read_text() == ('{\n  "a": [\n    1\n  ],\n  "b": "2026-01-02 03:04:05+00:00"\n}')
    assert storage.read_json(url) == {"a": [1], "b": str(when)}


def test_exists_and_remove_handle_files_trees_and_missing_paths(tmp_path: Path) -> None:
    file, tree = tmp_path / "f", tmp_path / "tree"
    storage.write_bytes(str(file), b"1")
    storage.write_bytes(str(tree / "deep" / "g"), b"2")
    assert storage.exists(str(file))
    assert storage.exists(str(tree))
    storage.remove(str(file))
    storage.remove(str(tree))
    storage.remove(str(tmp_path / "never-there"))
    assert not storage.exists(str(file))
    assert not storage.exists(str(tree))
    assert _names(tmp_path) == []


def test_fingerprints_are_short_hex_and_do_not_change_between_releases() -> None:
    """Dataset versions are named by fingerprints: a change here re-computes every stored dataset."""
    assert storage.fingerprint("a", 1) == "2657442bb4a48d62"
    assert storage.fingerprint({"y": 2, "x": 1}) == storage.fingerprint({"x": 1, "y": 2})
    stamped = storage.fingerprint(datetime(2026, 1, 1, tzinfo=UTC))
    assert re.fullmatch(r"[0-9a-f]{16}", stamped)
    assert stamped == storage.fingerprint("2026-01-01 00:00:00+00:00")


# --- Publishing, finding and adopting ---------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "returned", "merged"),
    [
        (None, None, {}),
        ({"source": "x"}, None, {"source": "x"}),
        (None, {"rows": 3}, {"rows": 3}),
        ({"source": "x", "rows": 0}, {"rows": 3}, {"source": "x", "rows": 3}),
    ],
)
def test_meta_is_the_callers_overridden_by_what_the_writer_returns(
    tmp_path: Path, meta: dict[str, Any] | None, returned: dict[str, Any] | None, merged: dict[str, Any]
) -> None:
    base = str(tmp_path / "ds")
    published = storage.publish(base, "v1", _writer({"a": b"1"}, returned), meta=meta)
    assert published.meta == merged
    assert storage.read_json(storage.join(published.url, storage.COMPLETE)) == merged
    assert storage.current(base).meta == merged  # type: ignore[union-attr]


def test_the_pointer_names_version_folder_time_and_meta(tmp_path: Path) -> None:
    base = tmp_path / "ds"
    before = datetime.now(UTC)
    published = storage.publish(str(base), "v1", _writer({"a": b"1"}, {"rows": 1}))
    folder = Path(published.url).name
    match = STAMPED.match(folder)
    assert match is not None, folder
    assert match["version"] == "v1"
    stamp = datetime.strptime(match["stamp"], storage.STAMP).replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)
    assert published.url == str(base / folder)
    assert (published.version, published.written) == ("v1", True)
    pointer = storage.read_json(str(base / storage.POINTER))
    assert set(pointer) == {"version", "folder", "published_at", "meta"}
    assert (pointer["version"], pointer["folder"], pointer["meta"]) == ("v1", folder, {"rows": 1})
    published_at = datetime.fromisoformat(pointer["published_at"])
    assert published_at.utcoffset() == timedelta(0)
    assert before <= published_at <= datetime.now(UTC)
    assert _names(base) == [storage.POINTER, folder]
    assert _names(base / folder) == [storage.COMPLETE, "a"]


def test_publishing_the_current_version_again_returns_it_unchanged(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    first = storage.publish(base, "v1", _writer({"a": b"1"}, {"rows": 1}))
    again = storage.publish(base, "v1", _writer({"b": b"2"}, {"rows": 2}))
    assert again == storage.Published(first.url, "v1", False, {"rows": 1})
    assert _names(Path(first.url)) == [storage.COMPLETE, "a"]


def test_a_pointer_without_meta_reads_as_empty_meta(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    storage.write_json(storage.join(base, storage.POINTER), {"version": "v1", "folder": "v1.x.y"})
    assert storage.current(base) == storage.Published(storage.join(base, "v1.x.y"), "v1", False, {})


def test_find_returns_the_current_or_a_kept_complete_version(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    assert storage.find(base, "v1") is None, "nothing at all yet"
    v1 = storage.publish(base, "v1", _writer({"a": b"1"}, {"n": 1}))
    v2 = storage.publish(base, "v2", _writer({"a": b"2"}, {"n": 2}))
    assert storage.find(base, "v2") == storage.Published(v2.url, "v2", False, {"n": 2})
    assert storage.find(base, "v1") == storage.Published(v1.url, "v1", False, {"n": 1})
    assert storage.find(base, "v3") is None


def test_find_prefers_the_folder_readers_are_on(tmp_path: Path) -> None:
    """Two complete folders of one version (two runs raced): find answers what current answers."""
    base = tmp_path / "ds"
    published = storage.publish(str(base), "v1", _writer({"a": b"new"}, {"run": "last"}))
    earlier = base / f"v1.{OLD}.aaaaaa"
    storage.write_bytes(str(earlier / "a"), b"old")
    storage.write_json(str(earlier / storage.COMPLETE), {"run": "first"})
    assert storage.find(str(base), "v1") == storage.Published(published.url, "v1", False, {"run": "last"})


def test_a_version_is_not_mistaken_for_one_its_name_prefixes(tmp_path: Path) -> None:
    base = str(tmp_path / "ds")
    storage.publish(base, "v10", _writer({"a": b"10"}))
    assert storage.find(base, "v1") is None
    v1 = storage.publish(base, "v1", _writer({"a": b"1"}))
    assert v1.written
    assert Path(v1.url).name.startswith("v1.2")
    assert (Path(v1.url) / "a").read_bytes() == b"1"


def test_a_folder_without_its_complete_marker_is_never_adopted(tmp_path: Path) -> None:
    """A killed attempt leaves a partial folder: the retry writes a fresh one and points at it."""
    base = tmp_path / "ds"
    partial = base / f"v1.{datetime.now(UTC).strftime(storage.STAMP)}.dead00"
    partial.mkdir(parents=True)
    (partial / "part-0").write_bytes(b"half")
    assert storage.find(str(base), "v1") is None
    published = storage.publish(str(base), "v1", _writer({"part-0": b"whole", "part-1": b"whole"}))
    assert published.written
    assert Path(published.url) != partial
    assert _names(Path(published.url)) == [storage.COMPLETE, "part-0", "part-1"]
    assert partial.exists(), "young: it may still be a concurrent writer's"


# --- Pruning ----------------------------------------------------------------------------------


def test_pruning_removes_only_stale_folders_this_module_wrote(tmp_path: Path) -> None:
    base = tmp_path / "ds"
    leave_alone = [
        f"_staging.{OLD}.abcdef",  # an underscore name is bookkeeping
        "manual",  # not written by publish
        "v0.not-a-stamp.abcdef",
        f"v0.{datetime.now(UTC).strftime(storage.STAMP)}.abcdef",  # young: a concurrent writer
    ]
    for name in leave_alone:
        (base / name).mkdir(parents=True)
    (base / f"notes.{OLD}.txt").write_text("a file, not a version folder")
    (base / f"v0.{OLD}.abcdef").mkdir()  # a stale attempt
    published = storage.publish(str(base), "v1", _writer({"a": b"1"}))
    assert _names(base) == sorted([*leave_alone, f"notes.{OLD}.txt", storage.POINTER, Path(published.url).name])


@pytest.mark.parametrize(
    ("age", "removed"), [(storage.STALE_AFTER, True), (storage.STALE_AFTER - timedelta(seconds=1), False)]
)
def test_a_folder_is_stale_from_exactly_stale_after(tmp_path: Path, age: timedelta, removed: bool) -> None:
    """STALE_AFTER is inclusive: a folder exactly that old is pruned, one a second younger is kept."""
    written = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    for name in ("v1", "v2"):
        (tmp_path / f"{name}.{written.strftime(storage.STAMP)}.abcdef").mkdir()
    storage._prune(str(tmp_path), {f"v2.{written.strftime(storage.STAMP)}.abcdef"}, written + age)
    expected = ["v2.20260101T120000.abcdef"] if removed else ["v1.20260101T120000.abcdef", "v2.20260101T120000.abcdef"]
    assert _names(tmp_path) == expected


# --- The same on S3 ---------------------------------------------------------------------------


@pytest.fixture
def bucket(aws_env: str) -> str:
    boto3.client("s3").create_bucket(Bucket="datasets")
    return "s3://datasets"


def _keys(prefix: str) -> list[str]:
    response = boto3.client("s3").list_objects_v2(Bucket="datasets", Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def test_single_objects_on_s3(bucket: str) -> None:
    url = storage.join(bucket, "one", "doc.json")
    assert not storage.exists(url)
    storage.write_json(url, {"a": 1})
    assert storage.exists(url)
    assert storage.read_json(url) == {"a": 1}
    assert _keys("one/") == ["one/doc.json"], "one PUT, no temporary object"
    storage.write_bytes(url, b"replaced")
    assert storage.read_bytes(url) == b"replaced"
    storage.remove(storage.join(bucket, "one"))
    storage.remove(storage.join(bucket, "never-there"))
    assert _keys("one/") == []


def test_publish_find_and_prune_on_s3(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = storage.join(bucket, "ds")
    assert storage.current(base) is None
    assert storage.find(base, "v1") is None
    boto3.client("s3").put_object(Bucket="datasets", Key=f"ds/v0.{OLD}.abcdef/part-0", Body=b"stale attempt")
    boto3.client("s3").put_object(Bucket="datasets", Key=f"ds/notes.{OLD}.txt", Body=b"a file")
    v1 = storage.publish(base, "v1", _writer({"a": b"1"}, {"n": 1}))
    folder1 = v1.url.rsplit("/", 1)[-1]
    assert STAMPED.match(folder1)
    assert v1.url == f"{base}/{folder1}"
    assert _keys("ds/") == sorted(
        [f"ds/notes.{OLD}.txt", "ds/_CURRENT.json", f"ds/{folder1}/_COMPLETE.json", f"ds/{folder1}/a"]
    ), "the stale attempt was pruned, the file left alone"
    assert storage.current(base) == storage.Published(v1.url, "v1", False, {"n": 1})
    assert storage.publish(base, "v1", _writer({"b": b"2"})).written is False

    monkeypatch.setattr(storage, "STALE_AFTER", timedelta(0))
    v2 = storage.publish(base, "v2", _writer({"a": b"2"}, {"n": 2}))
    v3 = storage.publish(base, "v3", _writer({"a": b"3"}, {"n": 3}))
    assert storage.read_bytes(storage.join(storage.current(base).url, "a")) == b"3"  # type: ignore[union-attr]
    assert storage.find(base, "v2") == storage.Published(v2.url, "v2", False, {"n": 2})
    assert storage.find(base, "v1") is None, "older than the previous version: pruned"
    folders = {key.split("/")[1] for key in _keys("ds/") if key.count("/") == 2}
    assert folders == {v2.url.rsplit("/", 1)[-1], v3.url.rsplit("/", 1)[-1]}


def test_an_unswitched_complete_folder_on_s3_is_adopted(bucket: str) -> None:
    base = storage.join(bucket, "ds")
    folder = f"v1.{datetime.now(UTC).strftime(storage.STAMP)}.abc123"
    storage.write_bytes(storage.join(base, folder, "a"), b"1")
    storage.write_json(storage.join(base, folder, storage.COMPLETE), {"n": 1})
    writes: list[str] = []
    published = storage.publish(base, "v1", lambda target: writes.append(target))  # type: ignore[func-returns-value]
    assert writes == []
    assert published == storage.Published(storage.join(base, folder), "v1", True, {"n": 1})
    assert storage.current(base) == storage.Published(storage.join(base, folder), "v1", False, {"n": 1})


class _DeletesFail(Faults):
    """Every write goes through; every delete (s3fs deletes with POST ?delete) has its connection reset."""

    def decide(self, method: str, path: str) -> str | None:
        if method == "POST":
            with self.lock:
                self.injected["broken"] += 1
            return "reset"
        return None


@pytest.mark.reliability
def test_a_cleanup_that_fails_too_is_logged_and_the_write_error_raised(
    bucket: str, aws_env: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base = storage.join(bucket, "ds")

    def crash(target: str) -> None:
        storage.write_bytes(storage.join(target, "part-0"), b"half")
        raise OSError("worker lost")

    faults = _DeletesFail(transient=False)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with faulty_proxy(aws_env, faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
        fsspec.filesystem("s3").clear_instance_cache()
        with caplog.at_level(logging.WARNING, logger="mlwf.storage"), pytest.raises(OSError, match="worker lost"):
            storage.publish(base, "v1", crash)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    fsspec.filesystem("s3").clear_instance_cache()
    assert faults.injected["broken"] > 0
    [left] = _keys("ds/")
    attempt = storage.join(base, left.split("/")[1])
    assert [r.getMessage() for r in caplog.records] == [
        f"could not remove the failed attempt {attempt}; it will be pruned later"
    ]
    assert storage.current(base) is None

"""Log file names: what is a log, its date, shard, type and compression, and how a folder is scanned."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from musicbox.rawlogs.names import find_log_files, parse_log_name, scan_log_dir


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # The shipped form: a tarball; the event_id base is the inner .log name.
        ("20170330_1_play.log.tar.gz", ("2017-03-30", 1, "play", "play", "20170330_1_play.log", "tar.gz")),
        # `down` files hold downloads.
        ("20170512_3_down.log.gz", ("2017-05-12", 3, "down", "download", "20170512_3_down.log", "gz")),
        # Plain text; shards past 9 are fine.
        ("20170401_12_search.log", ("2017-04-01", 12, "search", "search", "20170401_12_search.log", "none")),
        # Not logs: another type word, no shard, shard 0, an impossible date, a stray suffix.
        ("20170330_1_click.log", None),
        ("20170330_play.log", None),
        ("20170330_0_play.log", None),
        ("20170230_1_play.log", None),
        ("20170330_1_play.log.bak", None),
        ("20170330_1_play.log.zip", None),
        ("README.md", None),
    ],
)
def test_parse_log_name(name: str, expected: tuple | None) -> None:
    log = parse_log_name(Path("/data") / name)
    if expected is None:
        assert log is None
        return
    assert log is not None
    got = (log.iso_date, log.shard, log.file_type, log.event_type, log.log_name, log.compression)
    assert got == expected
    assert log.path == Path("/data") / name


def test_scan_finds_logs_in_subfolders_sorted_and_reports_the_rest(tmp_path: Path) -> None:
    for rel in [
        "b/20170331_1_play.log",
        "a/20170330_2_play.log.gz",
        "20170330_1_search.log",
        "20170330_1_down.log",
        "20170330_1_play.log.tar.gz",
        "notes.txt",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    logs, skipped = scan_log_dir(tmp_path)
    # Sorted by (date, play < down < search, shard), wherever the files sit.
    assert [log.path.name for log in logs] == [
        "20170330_1_play.log.tar.gz",
        "20170330_2_play.log.gz",
        "20170330_1_down.log",
        "20170330_1_search.log",
        "20170331_1_play.log",
    ]
    assert [s.path.name for s in skipped] == ["notes.txt"]
    assert find_log_files(tmp_path) == logs
    assert logs[0].date == dt.date(2017, 3, 30)


def test_a_shard_present_twice_is_read_once_plain_copy_first(tmp_path: Path) -> None:
    # A tarball with its extracted .log beside it: reading both would double every event.
    (tmp_path / "20170330_1_play.log.tar.gz").write_bytes(b"")
    (tmp_path / "20170330_1_play.log").write_bytes(b"")
    logs, skipped = scan_log_dir(tmp_path)
    assert [log.path.name for log in logs] == ["20170330_1_play.log"]
    assert [s.path.name for s in skipped] == ["20170330_1_play.log.tar.gz"]
    assert "same day, type and shard" in skipped[0].reason

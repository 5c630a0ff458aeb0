"""Data-quality warnings: a missing shard, a truncated shard, a near-copy of another day's file."""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import pytest

from musicbox.rawlogs import ReadStats, iter_logs, parse_log_name, quality_report
from musicbox.rawlogs.quality import (
    MISSING_SHARD,
    NEAR_COPY,
    TRUNCATED_SHARD,
    FileFingerprint,
    sample_similarity,
)
from musicbox.rawlogs.stats import SAMPLE_SIZE, FileStats

DAYS = ["20170330", "20170331", "20170401", "20170402", "20170403"]


def plays(first_uid: int, n: int) -> list[str]:
    return [f"{first_uid + i} \tar \t{i + 1} \t1 \tsong \tsinger \t{i} \t200 \t0\n" for i in range(n)]


def write(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Five days of 3 play shards (60 lines each) and 1 down shard, with three collection artefacts."""
    for d, day in enumerate(DAYS):
        for shard in (1, 2, 3):
            if day == "20170401" and shard == 2:
                continue  # (a) a missing shard
            n = 3 if (day == "20170402" and shard == 1) else 60  # (b) a truncated shard
            write(tmp_path, f"{day}_{shard}_play.log", plays(168_000_000 + d * 10_000 + shard * 1_000, n))
        # The same download every day: too few rows to call a copy.
        write(tmp_path, f"{day}_1_down.log", ["500 \tar \t5 \tname \tsinger \t0\n"] * 3)
    # (c) 04-03's play shard 3 is 03-31's with one line changed.
    copied = plays(168_000_000 + 1 * 10_000 + 3 * 1_000, 60)
    copied[17] = copied[17].replace(" \t17 \t", " \t99 \t")
    write(tmp_path, "20170403_3_play.log", copied)
    return tmp_path


def test_the_three_artefacts_are_reported_and_nothing_else(artefacts: Path) -> None:
    stats = ReadStats()
    for _ in iter_logs(artefacts, stats=stats):
        pass
    report = quality_report(stats.fingerprints())
    found = [(w.date.isoformat(), w.file_type, w.shard, w.kind) for w in report.warnings]
    assert found == [
        ("2017-04-01", "play", None, MISSING_SHARD),
        ("2017-04-02", "play", 1, TRUNCATED_SHARD),
        ("2017-04-03", "play", 3, NEAR_COPY),
    ]
    assert "missing: 2" in report.warnings[0].message
    assert "2017-03-31" in report.warnings[2].message  # says which day it copies
    # One row per (day, type), with the shards present and the rows read.
    cells = {(r.date.isoformat(), r.file_type): r for r in report.rows}
    assert len(cells) == 10
    assert (cells[("2017-04-01", "play")].shards, cells[("2017-04-01", "play")].rows) == ((1, 3), 120)
    assert cells[("2017-04-02", "play")].rows == 123
    assert [w.kind for w in cells[("2017-04-03", "play")].warnings] == [NEAR_COPY]
    assert cells[("2017-03-30", "down")].warnings == ()


def fingerprint(
    day: int, rows: int, sample: frozenset[int], shard: int = 1, complete: bool = True
) -> FileFingerprint:
    return FileFingerprint(dt.date(2017, 4, day), "search", shard, f"x{day}", rows, 0, sample, complete)


SAME = frozenset(range(1000, 1256))


@pytest.mark.parametrize(
    ("rows_a", "rows_b", "sample_b", "near_copy"),
    [
        (10_000, 10_000, SAME, True),  # identical: a copy
        (10_000, 10_099, SAME, True),  # rows within 1 %: still a copy
        (10_000, 10_200, SAME, False),  # rows 2 % apart: not a copy even with the same sample
        (10_000, 10_000, frozenset(range(1020, 1276)), True),  # 236 of the 256 sampled lines in both: 92 %
        (10_000, 10_000, frozenset(range(1050, 1306)), False),  # 206 of 256: 80 %, a similar day, not a copy
        (10_000, 10_000, frozenset(range(5000, 5256)), False),  # nothing shared
    ],
)
def test_near_copy_needs_both_row_count_and_sampled_lines(
    rows_a: int, rows_b: int, sample_b: frozenset[int], near_copy: bool
) -> None:
    report = quality_report([fingerprint(8, rows_a, SAME), fingerprint(9, rows_b, sample_b)])
    assert [w.kind == NEAR_COPY and w.date.day == 9 for w in report.warnings] == ([True] if near_copy else [])


def test_similarity_estimates_the_share_of_common_lines() -> None:
    assert sample_similarity(SAME, SAME) == 1.0
    assert sample_similarity(SAME, frozenset()) == 0.0
    assert (
        sample_similarity(frozenset({1, 2, 3, 4}), frozenset({3, 4, 5, 6})) == 0.5
    )  # {1,2,3,4} of union: 3,4


def test_a_partly_read_file_is_not_called_truncated() -> None:
    prints = [fingerprint(day, 1000, frozenset({day})) for day in (1, 2, 3)]
    prints.append(fingerprint(4, 10, frozenset({4}), complete=False))  # the read stopped early
    assert quality_report(prints).warnings == []


def test_missing_shard_uses_the_usual_count_and_ties_favour_reporting() -> None:
    # Two days with 2 shards, two with 1: a tie; the larger count is taken as usual.
    prints = [fingerprint(d, 100, frozenset({d * 10 + s}), shard=s) for d in (1, 2) for s in (1, 2)]
    prints += [fingerprint(d, 100, frozenset({d * 10 + 1})) for d in (3, 4)]
    assert [(w.date.day, w.kind) for w in quality_report(prints).warnings] == [
        (3, MISSING_SHARD),
        (4, MISSING_SHARD),
    ]


def test_file_sample_is_the_smallest_distinct_line_hashes() -> None:
    lines = [f"line {i}\n".encode() for i in range(2_000)] * 2  # duplicates must not crowd the sample
    log = parse_log_name("20170330_1_play.log")
    assert log is not None
    stats = FileStats(log)
    for raw in lines:
        h = zlib.crc32(raw.rstrip(b"\r\n"))
        if h < stats.sample_limit:
            stats.offer(h)
    expected = sorted({zlib.crc32(raw.rstrip(b"\n")) for raw in lines})[:SAMPLE_SIZE]
    assert sorted(stats.fingerprint().sample) == expected

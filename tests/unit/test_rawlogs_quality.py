"""Data-quality warnings: a missing day, a missing shard, a truncated shard, a near-copy of
another day's file, a damaged file."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from pathlib import Path

import pytest

from musicbox.rawlogs import ReadStats, iter_logs, parse_log_name, quality_report
from musicbox.rawlogs import quality as quality_module
from musicbox.rawlogs.quality import (
    ALL_TYPES,
    DAMAGED_FILE,
    MISSING_DAY,
    MISSING_SHARD,
    NEAR_COPY,
    TRUNCATED_MIN_ROWS,
    TRUNCATED_SHARD,
    FileFingerprint,
    sample_similarity,
)
from musicbox.rawlogs.stats import SAMPLE_SIZE, FileStats
from producers.generator.generate import GeneratorConfig, generate

# 04-04 is absent: a whole missing day between the first and the last.
DAYS = ["20170330", "20170331", "20170401", "20170402", "20170403", "20170405"]
BIG = 12_000  # rows a day of play shard 1: large enough to be judged for truncation


def plays(first_uid: int, n: int) -> list[str]:
    return [f"{first_uid + i} \tar \t{i + 1} \t1 \tsong \tsinger \t{i} \t200 \t0\n" for i in range(n)]


def write(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Six days over seven of 3 play shards (shard 1 large, 2 and 3 of 60 lines) and 1 down shard,
    with five collection artefacts."""
    for d, day in enumerate(DAYS):
        for shard in (1, 2, 3):
            if day == "20170401" and shard == 2:
                continue  # (a) a missing shard
            n = BIG if shard == 1 else 60
            if day == "20170402" and shard == 1:
                n = BIG // 5  # (b) a truncated shard: cut to 20 %
            write(tmp_path, f"{day}_{shard}_play.log", plays(168_000_000 + d * 100_000 + shard * 20_000, n))
        # The same download every day: too few rows to call a copy.
        write(tmp_path, f"{day}_1_down.log", ["500 \tar \t5 \tname \tsinger \t0\n"] * 3)
    # (c) 04-03's play shard 3 is 03-31's with one line changed.
    copied = plays(168_000_000 + 1 * 100_000 + 3 * 20_000, 60)
    copied[17] = copied[17].replace(" \t17 \t", " \t99 \t")
    write(tmp_path, "20170403_3_play.log", copied)
    # (d) 04-04 has no file at all (DAYS). (e) 04-05's download file is a gzip cut short.
    (tmp_path / "20170405_1_down.log").unlink()
    packed = gzip.compress("".join(["500 \tar \t5 \tname \tsinger \t0\n"] * 3).encode())
    (tmp_path / "20170405_1_down.log.gz").write_bytes(packed[: len(packed) - 10])
    return tmp_path


def test_the_artefacts_are_reported_and_nothing_else(artefacts: Path) -> None:
    stats = ReadStats()
    for _ in iter_logs(artefacts, stats=stats):
        pass
    report = quality_report(stats.fingerprints())
    found = [(w.date.isoformat(), w.file_type, w.shard, w.kind) for w in report.warnings]
    assert found == [
        ("2017-04-01", "play", None, MISSING_SHARD),
        ("2017-04-02", "play", 1, TRUNCATED_SHARD),
        ("2017-04-03", "play", 3, NEAR_COPY),
        ("2017-04-04", ALL_TYPES, None, MISSING_DAY),
        ("2017-04-05", "down", 1, DAMAGED_FILE),
    ]
    missing_shard, truncated, copy, missing_day, damaged = report.warnings
    assert "missing: 2" in missing_shard.message
    assert "20%" in truncated.message
    assert "2017-03-31" in copy.message  # says which day it copies
    assert "missing: 2017-04-04" in missing_day.message
    # The file, where reading stopped (the first line decoded, the rest cut off), and why.
    assert damaged.message.startswith("20170405_1_down.log.gz is damaged: reading stopped at line 2 (byte 28")
    assert "cut short" in damaged.message and "Read before it: 1 line;" in damaged.message
    # Play shards 2 and 3 (60 rows a day) and the download shard are too small to judge.
    assert report.not_judged_for_truncation == [("play", 2), ("play", 3), ("down", 1)]
    # One row per (day, type) from the first day to the last, the missing day included.
    cells = {(r.date.isoformat(), r.file_type): r for r in report.rows}
    assert len(cells) == 14
    assert (cells[("2017-04-01", "play")].shards, cells[("2017-04-01", "play")].rows) == ((1, 3), BIG + 60)
    assert cells[("2017-04-02", "play")].rows == BIG // 5 + 120
    assert [w.kind for w in cells[("2017-04-03", "play")].warnings] == [NEAR_COPY]
    assert cells[("2017-03-30", "down")].warnings == ()
    for file_type in ("play", "down"):
        day_off = cells[("2017-04-04", file_type)]
        assert (day_off.shards, day_off.rows, [w.kind for w in day_off.warnings]) == ((), 0, [MISSING_DAY])


@pytest.mark.parametrize(
    ("found", "missing"),
    [
        (["03-30", "03-31", "04-01"], []),  # consecutive days: no gap
        (["03-30", "04-01"], ["03-31"]),  # one day missing in the middle
        (["03-30", "04-03"], ["03-31", "04-01", "04-02"]),  # a gap of three: one warning per day
        (["03-30", "04-01", "04-03"], ["03-31", "04-02"]),  # two gaps
        (["03-30"], []),  # a single day: nothing between first and last
        (["03-31", "04-01"], []),  # days before the first read are not the data's gap
    ],
)
def test_every_day_without_any_file_between_the_first_and_the_last_is_a_missing_day(
    found: list[str], missing: list[str]
) -> None:
    prints = [
        FileFingerprint(dt.date.fromisoformat(f"2017-{day}"), "play", 1, f"x{day}", 100, 0, frozenset({n}))
        for n, day in enumerate(found)
    ]
    report = quality_report(prints)
    assert [(w.date.isoformat()[5:], w.kind) for w in report.warnings] == [(d, MISSING_DAY) for d in missing]
    # The table has a row for every day of the range, the missing ones empty.
    assert len(report.rows) == len(found) + len(missing)
    if len(missing) == 3:
        assert all("3 days, 2017-03-31 to 2017-04-02" in w.message for w in report.warnings)


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
    prints = [fingerprint(day, 20_000, frozenset({day})) for day in (1, 2, 3)]
    prints.append(fingerprint(4, 10, frozenset({4}), complete=False))  # the read stopped early
    assert quality_report(prints).warnings == []


@pytest.mark.parametrize(
    ("usual", "rows", "truncated"),
    [
        (20_000, 4_000, True),  # a large shard cut to 20 %: truncated
        (20_000, 5_999, True),  # just under 30 % of its usual day: truncated
        (20_000, 6_000, False),  # 30 %: a quiet day, not a cut
        (TRUNCATED_MIN_ROWS, 2_000, True),  # the smallest median that is judged
        (TRUNCATED_MIN_ROWS - 1, 1_000, False),  # one row under it: not judged at all
        (3_326, 163, False),  # the 300-user set's bot shard on a day its bot skipped (5 %): too small
        (14, 4, False),  # a dozen downloads a day losing 70 % by chance: too small
        (20_000, 0, True),  # an empty file among large ones: truncated
    ],
)
def test_truncation_is_judged_only_on_shards_large_enough_to_tell(
    usual: int, rows: int, truncated: bool
) -> None:
    prints = [fingerprint(day, usual, frozenset({day})) for day in range(1, 6)]
    prints.append(fingerprint(6, rows, frozenset({6})))
    report = quality_report(prints)
    assert [(w.date.day, w.kind) for w in report.warnings] == ([(6, TRUNCATED_SHARD)] if truncated else [])
    judged = usual >= TRUNCATED_MIN_ROWS
    assert report.not_judged_for_truncation == ([] if judged else [("search", 1)])


@pytest.fixture(scope="module")
def small_generated_set(tmp_path_factory: pytest.TempPathFactory) -> list[FileFingerprint]:
    """`musicbox generate --users 300` (44 days, all dirt, seed 42): the set the false alarms came from."""
    out = tmp_path_factory.mktemp("users300")
    config = GeneratorConfig(users=300, days=44, start=dt.date(2017, 3, 30), seed=42, compression="none")
    generate(config, out)
    stats = ReadStats()
    for _ in iter_logs(out, stats=stats):
        pass
    return stats.fingerprints()


def test_a_small_generated_set_gets_no_truncation_warning(
    small_generated_set: list[FileFingerprint], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The generator never truncates a shard (producers/generator/dirt.py: its artefacts are
    # missing shards and near-copies only), so any truncation warning here is a false alarm.
    kinds = {w.kind for w in quality_report(small_generated_set).warnings}
    assert TRUNCATED_SHARD not in kinds
    assert MISSING_SHARD in kinds  # the artefacts it does make are still reported
    # The set does hold the small-volume drops the rule must not call truncations.
    monkeypatch.setattr(quality_module, "TRUNCATED_MIN_ROWS", 0)
    assert any(w.kind == TRUNCATED_SHARD for w in quality_report(small_generated_set).warnings)


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

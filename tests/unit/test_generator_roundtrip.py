"""Generated logs read back by the project's reader (musicbox.rawlogs): its dead letters, repairs
and data-quality warnings are exactly what the manifest says was injected."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from musicbox.rawlogs import ReadStats, find_log_files, iter_file, quality_report
from musicbox.rawlogs.quality import MISSING_SHARD, NEAR_COPY
from producers.generator.generate import GeneratorConfig, generate


def _generate_and_read(out: Path, **kw: Any) -> tuple[dict[str, Any], ReadStats]:
    generate(GeneratorConfig(**kw), out)
    stats = ReadStats()
    for log in find_log_files(out):
        for _ in iter_file(log, stats):
            pass
    return json.loads((out / "manifest.json").read_text()), stats


@pytest.fixture(scope="module")
def near_copy_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], ReadStats]:
    # 05-07..05-10 holds the near-copy day (05-09's down and search files copy 05-08's).
    out = tmp_path_factory.mktemp("roundtrip")
    return _generate_and_read(out, users=1_500, days=4, start=date(2017, 5, 7), seed=5, compression="gz")


def test_reader_dead_letters_by_reason_equal_the_manifest(
    near_copy_days: tuple[dict[str, Any], ReadStats],
) -> None:
    manifest, stats = near_copy_days
    expected = manifest["expected_reader"]
    assert dict(stats.dead_letters_by_reason) == expected["dead_letters"]
    assert expected["dead_letters"]["field_count"] > 0 and expected["dead_letters"]["bad_uid"] > 0
    assert stats.lines == expected["lines"]["total"] and stats.events == expected["lines"]["events"]


def test_reader_repairs_by_field_equal_the_manifest(near_copy_days: tuple[dict[str, Any], ReadStats]) -> None:
    manifest, stats = near_copy_days
    # Nothing else is repaired: clean devices, song types, paid flags, time stamps and queries.
    assert dict(stats.repairs_by_field) == manifest["expected_reader"]["repairs"]
    assert set(stats.repairs_by_field) == {"song_id", "play_time_s", "song_length_s"}


def test_reader_flags_the_near_copy_files(near_copy_days: tuple[dict[str, Any], ReadStats]) -> None:
    manifest, stats = near_copy_days
    flagged = {
        (w.date.isoformat(), w.file_type, w.shard)
        for w in quality_report(stats.fingerprints()).warnings
        if w.kind == NEAR_COPY
    }
    copies = {(f["date"], f["type"], f["shard"]) for f in manifest["files"] if f.get("copy_of")}
    assert len(copies) == 6 and flagged == copies


def test_reader_flags_the_missing_shards(tmp_path: Path) -> None:
    manifest, stats = _generate_and_read(
        tmp_path, users=600, days=3, start=date(2017, 4, 2), seed=5, compression="tar.gz"
    )
    missing = {
        (w.date.isoformat(), w.file_type)
        for w in quality_report(stats.fingerprints()).warnings
        if w.kind == MISSING_SHARD
    }
    assert missing == {("2017-04-03", t) for t in ("play", "down", "search")}
    assert len(manifest["artefacts"]["missing_files"]) == 3


def test_no_dirt_reads_back_without_a_dead_letter_or_a_repair(tmp_path: Path) -> None:
    manifest, stats = _generate_and_read(
        tmp_path, users=400, days=3, start=date(2017, 3, 30), seed=5, dirt=frozenset()
    )
    assert stats.lines > 5_000
    assert stats.dead_letters == 0 and not stats.repairs_by_field
    assert manifest["dirt"] == {} and manifest["expected_reader"]["dead_letters"] == {}

"""The events table and `musicbox batch features` end to end, on raw logs read by the real reader.

The end-to-end case runs the command on a small generated data set with every kind of dirt on
(malformed lines, garbage play times, missing shards, a near-copy day) and checks every cell
of its CSV against the oracle fed with the same logs through `musicbox.rawlogs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from batch.errors import EventsTableError
from batch.events_table import events_table, write_events
from batch.features import read_table
from musicbox.cli import main
from musicbox.events import DeadLetter, Event, day_start_ms
from musicbox.features import AS_OF, LABEL, UID
from musicbox.rawlogs import ReadStats, iter_logs
from musicbox.settings import Settings
from musicbox.spark import build_spark
from producers.generator.generate import GeneratorConfig, generate
from tests.fixtures.oracle import OracleEvent, oracle_features, oracle_labels

START = date(2017, 3, 30)


def _event(day: str, uid: int, kind: str = "play", line: int = 1, **fields: Any) -> Event:
    return Event(
        kind, f"{day}:{line}", uid, day, day_start_ms(day) + line, fields.pop("device", "ar"), **fields
    )


def test_write_events_chunks_by_day_and_size_and_counts_dead_letters(tmp_path: Path) -> None:
    items: list[Event | DeadLetter] = [
        *[_event("2017-03-30", uid=1, line=i, play_time_s=i) for i in range(5)],
        DeadLetter("read", "field_count", "1\tar", "x.log:9"),
        *[_event("2017-03-31", uid=2, kind="search", line=i, device=None) for i in range(3)],
        DeadLetter("read", "bad_uid", "0\tar", "y.log:1"),
    ]
    seen: list[tuple[str, int, int]] = []
    summary = write_events(items, tmp_path, chunk_rows=2, progress=lambda *a: seen.append(a))
    # 5 rows of day 1 in chunks of 2 -> 3 files; 3 rows of day 2 -> 2 files
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events-2017-03-30-0000.parquet",
        "events-2017-03-30-0001.parquet",
        "events-2017-03-30-0002.parquet",
        "events-2017-03-31-0000.parquet",
        "events-2017-03-31-0001.parquet",
    ]
    assert (summary.rows, summary.rows_by_type, summary.dead_letters_by_reason) == (
        8,
        {"play": 5, "search": 3},
        {"field_count": 1, "bad_uid": 1},
    )
    assert (summary.first_day, summary.last_day) == ("2017-03-30", "2017-03-31")
    assert seen == [("2017-03-30", 5, 1), ("2017-03-31", 8, 2)]  # progress once per day
    table = pq.read_table(tmp_path).sort_by("event_time_ms").to_pylist()
    assert [r["play_time_s"] for r in table] == [0, 1, 2, 3, 4, None, None, None]  # nulls stay null
    assert [r["device"] for r in table[-3:]] == [None, None, None]
    assert table[0]["date"] == START


PLAY = "{uid} \tar \t123 \t0 \tsong \tsinger \t{s} \t240 \t0 \n"
SEARCH = "{uid} \tip \t2017-03-31 10:00:00 \tq%E6%AD%8C \n"


def _write_logs(folder: Path) -> Path:
    folder.mkdir()
    (folder / "20170330_1_play.log").write_text(PLAY.format(uid=7, s=100) + PLAY.format(uid=8, s="71>=(x)TM"))
    (folder / "20170331_1_search.log").write_text(SEARCH.format(uid=7) + "only-a-uid\n")
    (folder / "notes.txt").write_text("not a log")
    return folder


class CountingReader:
    """The real reader, counting how often the logs are read."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, root: Path, *, stats: ReadStats | None = None) -> Iterable[Event | DeadLetter]:
        self.calls += 1
        return iter_logs(root, stats=stats)


def test_events_table_is_reused_until_the_logs_change(tmp_path: Path) -> None:
    logs = _write_logs(tmp_path / "logs")
    settings = Settings(var_dir=tmp_path / "var")
    reader = CountingReader()

    first = events_table(settings, logs, reader=reader)
    again = events_table(settings, logs, reader=reader)
    assert (first.from_cache, again.from_cache, reader.calls) == (False, True, 1)
    assert again.path == first.path and again.summary == first.summary
    assert first.stats is not None and first.stats.dead_letters == 1
    assert (first.summary.rows, first.summary.dead_letters) == (3, 1)
    rows = pq.read_table(first.path).sort_by("event_time_ms").to_pylist()
    assert [(r["uid"], r["type"], r["play_time_s"]) for r in rows] == [
        (7, "play", 100),
        (8, "play", None),  # a garbage play time is null, the play still counts
        (7, "search", None),
    ]

    with (logs / "20170330_1_play.log").open("a") as f:
        f.write(PLAY.format(uid=9, s=5))
    changed = events_table(settings, logs, reader=reader)
    assert (changed.from_cache, reader.calls, changed.summary.rows) == (False, 2, 4)
    assert changed.path != first.path
    assert not first.path.exists()  # the stale table of the same folder is gone


def test_events_table_refuses_a_folder_without_logs(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "readme.txt").write_text("hi")
    with pytest.raises(EventsTableError, match="no log files"):
        events_table(Settings(var_dir=tmp_path / "var"), tmp_path / "logs")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # a range given backwards
        (["--from", "2017-04-02", "--to", "2017-03-31"], "is before --from"),
        # --to without --from
        (["--as-of", "2017-03-31", "--to", "2017-04-02"], "--to goes with --from"),
        # an as-of day after the logs: its features would read missing days as inactivity
        (["--as-of", "2017-04-10"], "outside the logs"),
        # an output suffix we cannot write
        (["--as-of", "2017-03-31", "--out", "x.json"], "use a .csv or .parquet"),
    ],
)
def test_cli_refuses_bad_requests_with_a_hint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("MUSICBOX_VAR_DIR", str(tmp_path / "var"))
    logs = _write_logs(tmp_path / "logs")
    out = [] if "--out" in args else ["--out", str(tmp_path / "f.csv")]
    assert main(["batch", "features", "--logs", str(logs), *args, *out]) == 1
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield build_spark(Settings(), "test-features-job")


def _oracle_events(logs: Path) -> list[OracleEvent]:
    fields = ("type", "uid", "event_time_ms", "device", "play_time_s")
    return [{f: getattr(e, f) for f in fields} for e in iter_logs(logs) if isinstance(e, Event)]


def test_batch_features_on_generated_dirty_logs_equals_the_oracle(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    days = 30
    logs = tmp_path / "logs"
    stats = generate(GeneratorConfig(users=120, days=days, start=START, seed=11), logs)
    assert stats.to_json()["dirt"]  # dirty lines were written
    monkeypatch.setenv("MUSICBOX_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MUSICBOX_BOT_PLAYS_30D", "300")  # a low cut, so that the few bots cross it
    out = tmp_path / "features.csv"
    last = START + timedelta(days=days - 1)
    code = main(
        ["batch", "features", "--logs", str(logs), "--from", str(START), "--to", str(last), "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "churn share" in printed and "bots flagged" in printed

    actual = {(r[UID], r[AS_OF]): r.asDict() for r in read_table(spark, out).collect()}
    events = _oracle_events(logs)
    expected: dict[tuple[int, date], dict[str, Any]] = {}
    for k in range(days):
        d = START + timedelta(days=k)
        labels = oracle_labels(events, d, 14, last) or {}
        for uid, row in oracle_features(events, d, 300).items():
            expected[(uid, d)] = {**row, LABEL: labels.get(uid)}
    assert len(expected) > 1000
    assert any(r["is_bot"] for r in expected.values())
    assert {r[LABEL] for r in expected.values()} == {0, 1, None}
    assert actual == expected

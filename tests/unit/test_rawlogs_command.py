"""`musicbox read`: exit codes, the printed summary and quality table, the dead-letter file."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from musicbox.cli import main
from tests.fixtures.real_lines import REAL_LINES


def test_read_prints_counts_and_writes_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(REAL_LINES, logs)
    # A second day missing its search file: dirty, reported, still exit 0.
    (logs / "20170331_1_play.log").write_text("1 \tar \t0 \t\t\t\t5 \t0 \t0\n\n", encoding="utf-8")
    (logs / "20170331_1_down.log").write_text("2 \tip \t3 \tx \ty \t0\n", encoding="utf-8")
    out_file = tmp_path / "out" / "dead.jsonl"
    code = main(["read", "--logs", str(logs), "--dead-letters", str(out_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Read 12 lines = 10 events + 2 dead letters from 5 files over 2 days" in out
    assert "data-quality warnings: 1." in out
    assert "warning 2017-03-31 search: 0 of the usual 1 search shards" in out
    # Shards this small are not judged for truncation, and the read says so.
    assert (
        "truncation not judged for shards (play 1; down 1; search 1) whose median day holds under 10,000"
        in out
    )
    for label in ("field_count", "empty", "play_time_s", "song_length_s", "song_id", "README.md"):
        assert label in out
    assert "[1] 5 (1)" in out  # 03-30 play: shard 1, 5 rows, 1 dead letter
    dead = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert [(d["stage"], d["reason"], d["source"]) for d in dead] == [
        ("read", "field_count", "20170330_1_play.log:4"),
        ("read", "empty", "20170331_1_play.log:2"),
    ]


def test_a_damaged_file_and_a_missing_day_are_reported_and_the_read_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(REAL_LINES, logs)  # 2017-03-30: 9 lines, 1 dead letter
    # No file for 03-31; 04-01's downloads cut short in the middle of the gzip.
    packed = gzip.compress("".join(f"{uid} \tip \t3 \tx \ty \t0\n" for uid in range(1, 3001)).encode())
    (logs / "20170401_1_down.log.gz").write_bytes(packed[: len(packed) // 2])
    assert main(["read", "--logs", str(logs)]) == 0
    out = capsys.readouterr().out
    read = re.search(r"Read ([\d,]+) lines = ([\d,]+) events \+ ([\d,]+) dead letters from 4 files", out)
    assert read is not None
    lines, events, dead = (int(n.replace(",", "")) for n in read.groups())
    assert lines == events + dead and dead == 2 and 9 + 1 < lines < 9 + 3000  # the damage is one line
    assert "warning 2017-03-31 all: no file of any type" in out
    assert "warning 2017-04-01 down: 20170401_1_down.log.gz is damaged" in out
    assert "data-quality warnings: 4." in out  # and 04-01 has no play nor search file: two missing shards


def test_date_range_limits_the_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "20170330_1_down.log").write_text("2 \tip \t3 \tx \ty \t0\n", encoding="utf-8")
    (tmp_path / "20170331_1_down.log").write_text("2 \tip \t3 \tx \ty \t0\n" * 2, encoding="utf-8")
    assert main(["read", "--logs", str(tmp_path), "--from", "2017-03-31", "--to", "2017-03-31"]) == 0
    assert "Read 2 lines = 2 events + 0 dead letters from 1 files over 1 days" in capsys.readouterr().out


def test_a_folder_without_logs_exits_1_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert main(["read", "--logs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "musicbox read: error: no log file under" in err and "20170330_1_play.log" in err


def test_a_bad_date_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["read", "--logs", str(tmp_path), "--from", "30/03/2017"])
    assert exit_info.value.code == 2
    assert "invalid day '30/03/2017': expected YYYY-MM-DD" in capsys.readouterr().err

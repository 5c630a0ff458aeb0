"""The replay's machine-readable summary: the reconciliation rule and the file round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicbox.replay_summary import ReplaySummary, ReplaySummaryError


@pytest.mark.parametrize(
    ("lines", "events", "dead", "skipped", "expected"),
    [
        (10, {"play": 6, "search": 2}, {"json": 2}, 0, True),  # every line is an event or a dead letter
        (10, {"play": 6, "search": 2}, {"json": 1}, 0, False),  # a line went nowhere
        (10, {"play": 9}, {"json": 2}, 0, False),  # more sent than read: counted twice
        (10, {"play": 5}, {}, 5, True),  # run again: 5 lines an earlier replay committed are not sent
        (0, {}, {}, 0, True),  # nothing read, nothing sent
    ],
)
def test_reconciles_when_every_line_read_is_accounted_for(
    lines: int, events: dict[str, int], dead: dict[str, int], skipped: int, expected: bool
) -> None:
    summary = ReplaySummary(lines, events, dead, already_in_kafka=skipped)
    assert summary.reconciles is expected


def test_the_file_holds_the_counts_and_reads_back_equal(tmp_path: Path) -> None:
    summary = ReplaySummary(
        lines=12,
        events_by_type={"play": 7, "download": 1, "search": 2},
        dead_letters_by_reason={"bad_uid": 2},
        days_completed=3,
        ticks=18,
    )
    path = tmp_path / "replay" / "summary.json"
    summary.write(path)
    assert ReplaySummary.read(path) == summary
    # Totals and the verdict are in the file too, for readers that are not Python.
    data = json.loads(path.read_text())
    assert (data["events"], data["dead_letters"], data["reconciles"]) == (10, 2, True)


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty: the replay died before writing
        '{"lines": 3}',  # no counts
        '{"lines": "many", "events_by_type": {}, "dead_letters_by_reason": {}}',  # not a number
        "[1, 2]",  # not an object
    ],
)
def test_a_broken_file_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "summary.json"
    path.write_text(text)
    with pytest.raises(ReplaySummaryError, match=r"summary\.json"):
        ReplaySummary.read(path)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ReplaySummaryError, match=r"nowhere\.json"):
        ReplaySummary.read(tmp_path / "nowhere.json")

"""examples/wait_for_day.py's fold: a day is complete once every partition carried its marker."""

from __future__ import annotations

from examples.wait_for_day import DayCollector
from musicbox.events import encode_json
from musicbox.markers import score_day_marker

DAY = "2017-04-10"


def _score(uid: int, day: str = DAY, p: float = 0.7, version: str = "v1") -> bytes:
    return encode_json(
        {"uid": uid, "as_of": day, "churn_probability": p, "churn": p >= 0.5, "threshold": 0.5,
         "model_version": version, "scored_at_ms": 1}
    )  # fmt: skip


def _marker(partition: int, day: str = DAY, scored: int = 1) -> bytes:
    return encode_json(score_day_marker(day, partition, 3, scored, 0, "v1"))


def test_complete_only_when_every_partition_marked_the_day() -> None:
    day = DayCollector(DAY, partitions=3)
    for partition, value in [
        (0, _score(1)),
        (0, _marker(0)),
        (1, _score(2, p=0.2)),
        (1, _marker(1, day="2017-04-09")),  # another day's marker: not this one
        (1, _marker(1)),
        (2, _score(3)),
        (2, _score(3)),  # a score sent again: the same one
    ]:
        day.add(partition, value)
    assert not day.complete
    day.add(2, _marker(2))
    assert day.complete
    assert sorted(uid for uid, _ in day.scores) == [1, 2, 3]
    assert day.summary().startswith(f"{DAY}: 3 scores (3 by the markers' count), 0 bots skipped, 2 flagged")


def test_scores_of_other_days_are_not_collected() -> None:
    day = DayCollector(DAY, partitions=1)
    day.add(0, _score(1, day="2017-04-11"))
    day.add(0, _marker(0))
    assert day.complete and not day.scores

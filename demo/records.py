"""What the demo keeps of each record it reads back from its output topics: the fields its counts
and checks need, as small tuples. At the study sample's scale the topics hold millions of rows,
and a dict per row would cost the demo gigabytes; day names and versions are interned."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple


class FeatureKey(NamedTuple):
    uid: int
    as_of: str
    is_bot: bool
    active: bool  # a play or a download on the day itself (the worker's recommendation inputs)


class ScoreKey(NamedTuple):
    uid: int
    as_of: str
    model_version: str
    partition: int  # where it was read: a day's markers count the scores of their partition


class Recommended(NamedTuple):
    uid: int
    as_of: str
    source: str


def feature_key(value: dict[str, Any], partition: int) -> FeatureKey:
    active = bool(value.get("plays_1d") or value.get("downloads_1d"))
    return FeatureKey(int(value["uid"]), sys.intern(str(value["as_of"])), bool(value["is_bot"]), active)


def score_key(value: dict[str, Any], partition: int) -> ScoreKey:
    return ScoreKey(
        int(value["uid"]), sys.intern(str(value["as_of"])), sys.intern(str(value["model_version"])), partition
    )


def recommended(value: dict[str, Any], partition: int) -> Recommended:
    return Recommended(
        int(value["uid"]), sys.intern(str(value["as_of"])), sys.intern(str(value.get("source")))
    )


def reason(value: dict[str, Any], partition: int) -> str:
    return sys.intern(str(value.get("reason")))

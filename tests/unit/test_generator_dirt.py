"""Each dirt class does to a clean line what the real dumps do, and nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from producers.generator import dirt

PLAY = "168019810 \tar \t442554 \t1 \t安静 \t周杰伦 \t159 \t232 \t0 \n"
DOWN = "168019810 \tip \t9327383 \tなんでもないや \tRADWIMPS \t0 \n"
SEARCH = "154436633 \tip \t2017-03-01 00:00:24 \t%e9%83%ad%e5%be%b7%e7%ba%b2 \n"
LINES = {"play": PLAY, "down": DOWN, "search": SEARCH}


def _fields(line: str) -> list[str]:
    assert line.endswith("\n") and "\n" not in line[:-1]  # still one line
    return [f.strip() for f in line[:-1].split("\t")]


@pytest.mark.parametrize(
    ("cls", "file_type", "k", "field_count"),
    [
        ("tab_in_name", "play", 1, 11),  # two TABs in the song name: the real 11-field lines
        ("tab_in_name", "play", 3, 11),  # ... or in the singer
        ("tab_in_name", "down", 1, 8),  # the same in a download line
        ("shifted", "play", 1, 8),  # a field lost: the rest shift left
        ("shifted", "play", 2, 10),  # an empty field slipped in: the rest shift right
        ("shifted", "down", 5, 5),
        ("shifted", "search", 4, 5),
        ("uid_only", "play", 0, 1),  # the real `264715` line
        ("uid_only", "search", 0, 1),
    ],
)
def test_structural_classes_break_the_field_count_but_keep_the_uid(
    cls: str, file_type: str, k: int, field_count: int
) -> None:
    clean = LINES[file_type]
    fields = _fields(dirt.corrupt_line(clean, file_type, cls, k))
    assert len(fields) == field_count
    assert fields[0] == _fields(clean)[0]  # a reader sees a wrong count, never a bad uid


@pytest.mark.parametrize(
    ("cls", "k", "is_sane"),
    [
        ("song_id_unknown", 0, lambda v: v == "0"),  # the format's "unknown song"
        ("song_id_sentinel", 0, lambda v: v == "-1"),
        ("song_id_sentinel", 1, lambda v: int(v) < 0),  # other negatives
        ("song_id_sentinel", 2, lambda v: int(v) > 2**63 - 1),  # near 2^64
        ("song_id_sentinel", 3, lambda v: int(v) > 2**63 - 1),
        ("play_time_garbage", 0, lambda v: v.endswith(")TM") and ">=(223." in v),  # `71>=(223.104.12.211)TM`
        ("play_time_garbage", 1, lambda v: v == "-2147483648"),
        ("play_time_garbage", 2, lambda v: int(v) == 10**8),
        ("play_time_garbage", 3, lambda v: int(v) == 10**12),
        ("play_time_garbage", 4, lambda v: int(v) > 86_400),  # longer than a day
        ("song_length_bad", 0, lambda v: v == "0"),
        ("song_length_bad", 2, lambda v: v == "-1"),
        ("song_length_bad", 3, lambda v: int(v) > 4_800),
        ("song_type_blank", 0, lambda v: v == ""),
    ],
)
def test_value_classes_put_the_real_garbage_in_one_field(cls: str, k: int, is_sane: object) -> None:
    value = dirt.dirty_value(cls, k, "")
    assert "\t" not in value and "\n" not in value and value == value.strip()
    assert is_sane(value)  # type: ignore[operator]


def test_uid_zero_keeps_the_device() -> None:
    assert dirt.dirty_value("uid_zero", 0, "168019810 \tip \t") == "0 \tip \t"


def test_apply_values_touches_only_the_flagged_rows() -> None:
    classes = ("play_time_garbage", "song_id_unknown")
    columns = {"play_time": pa.array(["1", "2", "3", "4"]), "song_id": pa.array(["11", "12", "13", "14"])}
    codes = np.array([0, 1, 2, 0], dtype=np.int8)
    dirt.apply_values(columns, codes, np.array([3, 3, 3, 3]), classes)
    assert columns["play_time"].to_pylist() == ["1", "1000000000000", "3", "4"]
    assert columns["song_id"].to_pylist() == ["11", "12", "0", "14"]


def test_drawn_classes_follow_the_rates() -> None:
    classes, cum = dirt.class_table("play", dirt.LINE_CLASSES)
    codes, _ = dirt.draw(np.random.default_rng(0), 400_000, cum)
    shares = np.bincount(codes, minlength=len(classes) + 1) / len(codes)
    for i, cls in enumerate(classes, start=1):
        rate = dirt.RATES["play"][cls]
        assert abs(shares[i] - rate) < 4 * np.sqrt(rate / len(codes)) + 1e-4, cls
    assert abs(shares[0] - (1 - cum[-1])) < 0.003


def test_disabled_classes_are_never_drawn() -> None:
    classes, cum = dirt.class_table("search", {"uid_only"})
    assert classes == ("uid_only",)
    codes, _ = dirt.draw(np.random.default_rng(0), 100_000, cum)
    assert set(np.unique(codes)) == {0, 1}
    _, none = dirt.class_table("play", set())
    assert not dirt.draw(np.random.default_rng(0), 1_000, none)[0].any()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", set(dirt.ALL_CLASSES)),  # the default
        ("none", set()),  # same as --no-dirt
        ("uid_only, near_copy", {"uid_only", "near_copy"}),  # spaces are forgiven
    ],
)
def test_dirt_option(text: str, expected: set[str]) -> None:
    assert dirt.parse_classes(text) == expected


def test_an_unknown_dirt_class_names_the_valid_ones() -> None:
    with pytest.raises(dirt.DirtError, match="unknown dirt class bogus; choose from: tab_in_name"):
        dirt.parse_classes("uid_only,bogus")

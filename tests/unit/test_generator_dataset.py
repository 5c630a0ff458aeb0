"""A modest data set (2,000 users, the study's 44 days) has the study's shape, and its manifest
tallies every dirty line, checked against the files by a simple independent line check."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from producers.generator.generate import GeneratorConfig, generate
from producers.generator.writer import read_back

START = date(2017, 3, 30)
DAYS = 44
FIELD_COUNT = {"play": 9, "down": 6, "search": 4}
FEATURE_DAYS = {(START + timedelta(d)).strftime("%Y%m%d") for d in range(30)}
LABEL_DAYS = {(START + timedelta(d)).strftime("%Y%m%d") for d in range(30, 44)}


class Files:
    """What a plain reading of the files finds, with no help from the generator's own counts."""

    def __init__(self, out: Path) -> None:
        self.manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
        self.names = sorted(p.name for p in out.iterdir() if p.name.endswith(".log"))
        self.malformed: Counter[str] = Counter()  # by the reason a reader would give
        self.lines: Counter[str] = Counter()  # well-formed lines by type
        self.human_lines: Counter[str] = Counter()
        self.human_events_by_day: Counter[str] = Counter()
        self.play_time: list[int] = []
        self.song_id_zero = 0
        self.device_rows: Counter[str] = Counter()
        self.user_days: dict[int, set[str]] = defaultdict(set)
        self.plays_by_user_day: Counter[tuple[int, str]] = Counter()
        bots = set(self.manifest["users"]["bot_uids"])
        for name in self.names:
            day, _, file_type = name.removesuffix(".log").split("_")
            for line in read_back(out / name).decode("utf-8").splitlines():
                fields = [f.strip() for f in line.split("\t")]
                if len(fields) != FIELD_COUNT[file_type]:
                    self.malformed["field_count"] += 1
                    continue
                if not fields[0].isdigit() or int(fields[0]) < 1:
                    self.malformed["bad_uid"] += 1
                    continue
                uid = int(fields[0])
                self.lines[file_type] += 1
                self.human_lines[file_type] += uid not in bots
                self.human_events_by_day[day] += uid not in bots
                self.device_rows[fields[1]] += 1
                self.user_days[uid].add(day)
                if file_type == "play":
                    self.plays_by_user_day[(uid, day)] += 1
                    self.song_id_zero += fields[2] == "0"
                    if fields[6].isdigit():
                        self.play_time.append(int(fields[6]))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    out = tmp_path_factory.mktemp("study-shape")
    generate(GeneratorConfig(users=2_000, days=DAYS, start=START, seed=11, compression="none"), out)
    return Files(out)


def test_manifest_tallies_match_the_malformed_lines_in_the_files(files: Files) -> None:
    expected = files.manifest["expected_reader"]["dead_letters"]
    assert dict(files.malformed) == expected
    dirt = files.manifest["dirt"]
    assert expected["field_count"] == dirt["tab_in_name"] + dirt["shifted"] + dirt["uid_only"]
    assert expected["bad_uid"] == dirt["uid_zero"] > 0


def test_manifest_counts_every_file_and_line(files: Files) -> None:
    listed = {f["name"]: f["lines"] for f in files.manifest["files"]}
    assert sorted(listed) == files.names
    assert sum(listed.values()) == sum(files.lines.values()) + sum(files.malformed.values())


def test_the_real_collection_artefacts_are_reproduced(files: Files) -> None:
    missing = files.manifest["artefacts"]["missing_files"]
    # Four days miss a play shard; the first of them misses its down and search shard too
    # (the real dumps: 128 play, 131 down, 131 search files of 132).
    assert sorted(n[:8] for n in missing if "_play" in n) == ["20170403", "20170411", "20170414", "20170424"]
    assert sorted(n.split("_")[2] for n in missing if n.startswith("20170403")) == [
        "down.log",
        "play.log",
        "search.log",
    ]
    assert len(missing) == 6 and not set(missing) & set(files.names)
    assert len(files.names) == 44 * 9 - 6
    copies = [f for f in files.manifest["files"] if f.get("copy_of")]
    expected = sorted(f"20170509_{k}_{t}.log" for t in ("down", "search") for k in (1, 2, 3))
    assert sorted(f["name"] for f in copies) == expected
    for f in copies:  # a near-copy: the original's lines, a few short
        original = next(o for o in files.manifest["files"] if o["name"] == f["copy_of"])
        assert 0.97 * original["lines"] <= f["lines"] <= original["lines"]


def test_volumes_decay_from_the_first_day_like_the_study_cohort(files: Files) -> None:
    humans = files.manifest["users"]["humans"]
    first = files.human_events_by_day["20170330"]
    may = np.mean([files.human_events_by_day[d] for d in sorted(LABEL_DAYS)[2:]])
    # The study: ~745 K events on day 1 at 64,746 users (11.5 a user), ~175 K a day in May (23 %).
    assert 8 < first / humans < 16
    assert 0.12 < may / first < 0.40


def test_ratio_of_plays_downloads_searches(files: Files) -> None:
    plays, downs, searches = (files.human_lines[t] for t in ("play", "down", "search"))
    assert 0.045 < downs / plays < 0.085  # study: 0.63 / 10.10 = 0.062
    assert 0.055 < searches / plays < 0.105  # study: 0.79 / 10.10 = 0.078


def test_devices_skips_and_unknown_songs(files: Files) -> None:
    rows = sum(files.device_rows.values())
    assert 0.72 < files.device_rows["ar"] / rows < 0.95  # study: ~84 % of rows
    assert 0 < files.device_rows["mc"] / rows < 0.01  # rare
    play_time = np.array(files.play_time)
    assert 0.2 < (play_time <= 10).mean() < 0.42  # many skips ...
    assert (play_time == 0).mean() > 0.08  # ... many exact zeros
    q25, q50, q75 = np.percentile(play_time, [25, 50, 75])
    assert q25 <= 15 and 130 <= q50 <= 190 and 200 <= q75 <= 290  # study: 6 / 159 / 249 s
    assert 0.07 < files.song_id_zero / files.lines["play"] < 0.09  # study: ~8 %


def test_plays_per_user_are_heavy_tailed(files: Files) -> None:
    per_user: Counter[int] = Counter()
    for (uid, _), n in files.plays_by_user_day.items():
        per_user[uid] += n
    q25, q50, q75 = np.percentile(list(per_user.values()), [25, 50, 75])
    assert 4 <= q25 <= 20 and 20 <= q50 <= 60 and 70 <= q75 <= 260  # study: 9 / 40 / 174


def test_bots_play_hundreds_a_day_and_never_leave(files: Files) -> None:
    bots = files.manifest["users"]["bot_uids"]
    assert len(bots) == 20  # 1 % of 2,000, exactly
    for uid in bots:
        days = sorted(files.user_days[uid])
        rates = [files.plays_by_user_day[(uid, d)] for d in days]
        assert np.median(rates) >= 90  # a floor of 120 a day, less the day's noise
        assert days[-1] == "20170512" or days[-1] == "20170511"  # still there at the end


def test_most_of_the_feature_window_population_churns(files: Files) -> None:
    bots = set(files.manifest["users"]["bot_uids"])
    population = [u for u, days in files.user_days.items() if days & FEATURE_DAYS and u not in bots]
    churned = [u for u in population if not files.user_days[u] & LABEL_DAYS]
    assert 0.55 < len(churned) / len(population) < 0.72  # study: 62.7 %
    assert files.manifest["churn"]["population"] == len(population)

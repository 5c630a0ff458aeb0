"""Inputs for the scoring worker's tests: small trained models in a registry, feature rows, events.

Used by the unit, component and integration tests of `streaming.scoring` and by bench/score.py;
the tests at the bottom check that the inputs are what those tests assume.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.als import AlsParams, train_als
from models.churn import fit_churn
from models.metadata import TrainingInfo, fingerprint
from models.popularity import PopularityModel
from models.ratings import compute_ratings
from models.registry import load_churn, promote, save_als, save_churn
from musicbox.events import Event, Tick
from musicbox.features import AS_OF, COMPUTED_AT_MS, DEVICE, IS_BOT, NUMERIC_FEATURES, UID
from tests.unit.test_models_synthetic import block_events, churn_table

ALS_PARAMS = AlsParams(factors=8, iterations=5, regularization=0.1)
GROUP_A_USERS = range(1, 31)  # listen to songs 1001..1020 (block_events)
GROUP_A_SONGS = range(1001, 1021)


def at(hour: int, minute: int = 0) -> Any:
    """A fixed clock for the registry (versions are named after their creation time)."""
    return lambda: datetime(2026, 11, 28, hour, minute, tzinfo=UTC)


def save_churn_model(
    root: Path, seed: int = 0, hour: int = 10, threshold: float = 0.5, promote_it: bool = True
) -> str:
    """Fit a small logistic regression churn model, save it, promote it; returns its version."""
    table = churn_table(400, seed=seed, bots=4)
    model = fit_churn(table, "logreg", seed=seed).model
    model.threshold = threshold
    meta = save_churn(
        root, model, TrainingInfo(("2017-03-30", "2017-04-28"), fingerprint(table)), at(hour, seed)
    )
    if promote_it:
        promote(root, "churn", meta.version)
    return meta.version


def save_als_model(root: Path, hour: int = 10, promote_it: bool = True) -> str:
    """ALS on two user groups with their own songs, plus the popularity fallback."""
    events = block_events()
    ratings = compute_ratings(events, "2017-04-10")
    als, _ = train_als(ratings, ALS_PARAMS)
    meta = save_als(
        root,
        als,
        PopularityModel.fit(ratings),
        TrainingInfo(("2017-04-01", "2017-04-10"), fingerprint(ratings)),
        at(hour),
    )
    if promote_it:
        promote(root, "als", meta.version)
    return meta.version


def feature_row(
    uid: int,
    as_of: str,
    *,
    active: bool = True,
    bot: bool = False,
    days_since: int = 1,
    computed_at_ms: int | None = 1_000,
    seed: int | None = None,
) -> dict[str, Any]:
    """A valid `musicbox.features` value; `active` = an event on the as-of day itself."""
    rng = np.random.default_rng(uid if seed is None else seed)
    row: dict[str, Any] = {UID: uid, AS_OF: as_of}
    for name in NUMERIC_FEATURES:
        row[name] = int(rng.integers(1, 40)) if "_1d" not in name else int(active) * int(rng.integers(1, 5))
    for name in ("days_since_play", "days_since_download", "days_since_search"):
        row[name] = 1 if active else days_since
    if bot:
        row["plays_30d"] = 5_000
    row[DEVICE] = "ar"
    row[IS_BOT] = bot
    if computed_at_ms is not None:
        row[COMPUTED_AT_MS] = computed_at_ms
    return row


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def play(
    uid: int, day: str, song: int, play_time_s: int = 200, length_s: int | None = 200, n: int = 0
) -> bytes:
    return Event(
        "play", f"{day}_1_play.log:{uid}:{n}", uid, day, 0, "ar", song_id=song, play_time_s=play_time_s,
        song_length_s=length_s,
    ).to_json()  # fmt: skip


def download(uid: int, day: str, song: int, n: int = 0) -> bytes:
    return Event("download", f"{day}_1_down.log:{uid}:{n}", uid, day, 0, "ar", song_id=song).to_json()


def tick(day: str) -> bytes:
    return Tick(day).to_json()


def test_saved_churn_model_loads_with_its_threshold(tmp_path: Path) -> None:
    # The worker serves what these helpers save: the registry must accept it as is.
    version = save_churn_model(tmp_path, threshold=0.4)
    loaded = load_churn(tmp_path)
    assert loaded.metadata.version == version and loaded.model.threshold == 0.4


def test_feature_row_activity_follows_the_flag() -> None:
    # Live quality reads activity from the 1-day counts: an inactive row must have none.
    idle = feature_row(7, "2017-04-02", active=False)
    busy = feature_row(7, "2017-04-02", active=True)
    assert idle["plays_1d"] + idle["downloads_1d"] + idle["searches_1d"] == 0
    assert busy["plays_1d"] > 0

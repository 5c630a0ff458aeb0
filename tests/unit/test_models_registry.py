"""The model registry: round trips, the atomic CURRENT switch, and every refusal with its message."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.als import AlsParams, train_als
from models.churn import ChurnModel, fit_churn
from models.errors import CorruptArtifactError, FeatureMismatchError, LibraryMismatchError, ModelNotFoundError
from models.metadata import TrainingInfo, fingerprint, library_versions, make_version, sha256_file
from models.popularity import PopularityModel
from models.registry import (
    CURRENT,
    current_version,
    list_versions,
    load_als,
    load_churn,
    promote,
    save_als,
    save_churn,
    should_promote,
)
from musicbox.features import FEATURE_NAMES, feature_list_hash
from tests.fixtures.synthetic import churn_table

VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def clock(hour: int):
    return lambda: datetime(2026, 11, 28, hour, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return churn_table(300, bots=3)


@pytest.fixture(scope="module")
def model(table: pd.DataFrame) -> ChurnModel:
    fitted = fit_churn(table, "logreg")
    fitted.model.threshold = 0.37
    return fitted.model


def info(table: pd.DataFrame) -> TrainingInfo:
    return TrainingInfo(("2017-03-30", "2017-04-14"), fingerprint(table), {"roc_auc": np.float64(0.91)})


def edit_metadata(root: Path, kind: str, version: str, change) -> None:
    path = root / kind / version / "metadata.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_save_promote_load_round_trip(tmp_path: Path, model: ChurnModel, table: pd.DataFrame) -> None:
    meta = save_churn(tmp_path, model, info(table), now=clock(21))
    assert VERSION.match(meta.version) and meta.version.startswith("20261128T211500Z-")
    assert current_version(tmp_path, "churn") is None  # saving is not serving
    assert promote(tmp_path, "churn", meta.version) is None
    loaded = load_churn(tmp_path)
    np.testing.assert_array_equal(loaded.model.predict_proba(table), model.predict_proba(table))
    assert (loaded.model.threshold, loaded.model.family, loaded.model.exclude_bots) == (0.37, "logreg", True)
    stored = loaded.metadata
    assert stored.feature_list_hash == feature_list_hash() and stored.feature_names == list(FEATURE_NAMES)
    assert stored.library_versions == library_versions()
    assert stored.training_window == ["2017-03-30", "2017-04-14"]
    assert stored.metrics == {"roc_auc": 0.91} and stored.data_fingerprint == fingerprint(table)
    assert set(stored.library_versions) >= {"python", "sklearn", "implicit", "numpy", "scipy", "joblib"}


def test_current_switches_atomically(
    tmp_path: Path, model: ChurnModel, table: pd.DataFrame, monkeypatch
) -> None:
    v1 = save_churn(tmp_path, model, info(table), now=clock(10)).version
    v2 = save_churn(tmp_path, model, info(table), now=clock(11)).version
    assert list_versions(tmp_path, "churn") == [v1, v2]  # the names sort by creation time
    promote(tmp_path, "churn", v1)
    assert promote(tmp_path, "churn", v2) == v1
    assert load_churn(tmp_path).metadata.version == v2
    # A switch that dies before the rename leaves the old CURRENT whole: readers never see half.
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        promote(tmp_path, "churn", v1)
    monkeypatch.undo()
    assert (tmp_path / "churn" / CURRENT).read_text() == v2 + "\n"
    assert sorted(p.name for p in (tmp_path / "churn").iterdir()) == sorted([CURRENT, v1, v2])  # no debris
    assert load_churn(tmp_path, v1).metadata.version == v1  # an explicit version needs no promotion


def test_a_failed_save_leaves_no_version(tmp_path: Path, table: pd.DataFrame) -> None:
    broken = ChurnModel("logreg", {}, estimator=lambda: None)  # a lambda cannot be pickled
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises, nothing may remain
        save_churn(tmp_path, broken, info(table))
    assert list_versions(tmp_path, "churn") == []
    assert [p.name for p in (tmp_path / "churn").iterdir()] == []


def test_nothing_promoted_or_unknown_version(tmp_path: Path, model: ChurnModel, table: pd.DataFrame) -> None:
    with pytest.raises(ModelNotFoundError, match="train-churn"):
        load_churn(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no churn model version"):
        promote(tmp_path, "churn", "20990101T000000Z-deadbeef")


def test_refuses_a_changed_feature_list(tmp_path: Path, model: ChurnModel, table: pd.DataFrame) -> None:
    version = save_churn(tmp_path, model, info(table)).version
    running = (*FEATURE_NAMES, "skips_7d")  # the code gained a feature since the model was trained
    with pytest.raises(FeatureMismatchError, match=r"new: \['skips_7d'\].*retrain"):
        load_churn(tmp_path, version, feature_names=running)


@pytest.mark.parametrize(
    ("library", "stored"),
    [
        ("sklearn", "1.5.2"),  # pickles of another scikit-learn can load and predict wrong
        ("numpy", "1.26.4"),
        ("python", "3.12"),
    ],
)
def test_refuses_other_library_versions(
    tmp_path: Path, model: ChurnModel, table: pd.DataFrame, library: str, stored: str
) -> None:
    version = save_churn(tmp_path, model, info(table)).version
    edit_metadata(tmp_path, "churn", version, lambda d: d["library_versions"].update({library: stored}))
    running = library_versions()[library]
    with pytest.raises(
        LibraryMismatchError, match=rf"{library} {stored} \(artifact\) vs {running} \(running\)"
    ):
        load_churn(tmp_path, version)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "altered"),  # a truncated copy
        (lambda p: p.unlink(), "missing"),  # a lost file
    ],
)
def test_refuses_a_damaged_artifact(
    tmp_path: Path, model: ChurnModel, table: pd.DataFrame, damage, message
) -> None:
    version = save_churn(tmp_path, model, info(table)).version
    damage(tmp_path / "churn" / version / "churn.joblib")
    with pytest.raises(CorruptArtifactError, match=message):
        load_churn(tmp_path, version)


def test_refuses_an_unreadable_artifact_even_with_a_matching_hash(
    tmp_path: Path, model: ChurnModel, table: pd.DataFrame
) -> None:
    version = save_churn(tmp_path, model, info(table)).version
    artifact = tmp_path / "churn" / version / "churn.joblib"
    artifact.write_bytes(b"not a pickle")
    edit_metadata(
        tmp_path, "churn", version, lambda d: d["artifacts"].update({"churn.joblib": sha256_file(artifact)})
    )
    with pytest.raises(CorruptArtifactError, match="cannot read churn model"):
        load_churn(tmp_path, version)


def test_refuses_broken_metadata(tmp_path: Path, model: ChurnModel, table: pd.DataFrame) -> None:
    version = save_churn(tmp_path, model, info(table)).version
    (tmp_path / "churn" / version / "metadata.json").write_text("{ half a file")
    with pytest.raises(CorruptArtifactError, match=r"metadata.json is missing or unreadable"):
        load_churn(tmp_path, version)


def test_als_round_trip_with_its_popularity_fallback(tmp_path: Path) -> None:
    ratings = pd.DataFrame(
        {"uid": [1, 1, 2, 2, 3], "song_id": [10, 11, 11, 12, 10], "rating": [1.0, 0.5, 2, 1, 1]}
    )
    als, _ = train_als(ratings, AlsParams(factors=2, iterations=3))
    popularity = PopularityModel.fit(ratings)
    meta = save_als(
        tmp_path, als, popularity, TrainingInfo(("2017-03-30", "2017-04-28"), fingerprint(ratings))
    )
    promote(tmp_path, "als", meta.version)
    loaded = load_als(tmp_path)
    assert loaded.als.recommend(1, 3) == als.recommend(1, 3)
    assert loaded.popularity.recommend(3) == popularity.recommend(3)
    assert loaded.metadata.feature_list_hash is None  # ALS reads ratings, not the feature table
    edit_metadata(
        tmp_path, "als", meta.version, lambda d: d["library_versions"].update({"implicit": "0.6.2"})
    )
    with pytest.raises(LibraryMismatchError, match=r"implicit 0\.6\.2 \(artifact\)"):
        load_als(tmp_path)


def test_versions_sort_by_time() -> None:
    early = make_version(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "ffffffff00")
    late = make_version(datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), "0000000000")
    assert early == "20260102T030405Z-ffffffff" and early < late


@pytest.mark.parametrize(
    ("new", "served", "expected"),
    [
        ({"roc_auc": 0.80}, None, True),  # nothing served yet: anything is better than nothing
        ({"roc_auc": 0.90}, {"roc_auc": 0.88}, True),  # better
        (
            {"roc_auc": 0.878},
            {"roc_auc": 0.88},
            True,
        ),  # a hair worse, within the tolerance: fresher data wins
        ({"roc_auc": 0.86}, {"roc_auc": 0.88}, False),  # worse beyond the tolerance
        ({"pr_auc": 0.9}, {"roc_auc": 0.88}, False),  # the new model lacks the metric
        ({"roc_auc": float("nan")}, {"roc_auc": 0.88}, False),  # an undefined score promotes nothing
        ({"roc_auc": float("nan")}, None, False),  # ... even when nothing is served
    ],
)
def test_should_promote(new: dict, served: dict | None, expected: bool) -> None:
    decision, reason = should_promote(new, served, tolerance=0.005)
    assert decision is expected
    assert reason  # the decision always says why

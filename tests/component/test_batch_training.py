"""The training commands end to end on small generated logs (600 users, 44 days), local Spark:
train-churn and train-als write registry versions with their metrics and a CURRENT, retrain
promotes a first model and refuses a degraded one (saying why), and the report holds the
study's table and embedded figures.

One SparkSession and one data set for the module; each command runs once (module fixtures)
and the tests assert on what it left behind. The machine has two shared cores: the models are
kept small (two scikit-learn families, 5 GBT rounds, a 2-point ALS grid).
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from rich.console import Console

import models.churn_metrics
from batch import report, retrain, train_als, train_churn
from batch.retrain import RetrainOptions, print_outcome, retrain_once
from batch.steps import quiet_steps
from batch.train_common import LazySpark
from models.churn_splits import as_of_days
from models.registry import current_version, list_versions, load_als, load_churn, read_metadata
from musicbox.features import LABEL
from musicbox.settings import Settings
from musicbox.spark import build_spark
from producers.generator.generate import GeneratorConfig, generate

START = date(2017, 3, 30)


@dataclass
class Ran:
    settings: Settings
    output: str


def parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def captured(fn: Callable[..., int], *args: Any, **kwargs: Any) -> str:
    """Run a command with its stdout console captured (the summary tables a user reads)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("batch.train_common.Console", lambda *a, **k: console)
        mp.setattr("batch.report.Console", lambda *a, **k: console)
        fn(*args, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logs")
    generate(GeneratorConfig(users=600, days=44, start=START, seed=3), out)
    return out


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def spark(settings: Settings) -> Iterator[SparkSession]:
    yield build_spark(settings, "test-batch-training")


@pytest.fixture(scope="module")
def lazy(settings: Settings, spark: SparkSession) -> LazySpark:
    return LazySpark(settings, "test", factory=lambda: spark)


@pytest.fixture(scope="module")
def churn_run(logs: Path, settings: Settings, lazy: LazySpark) -> Ran:
    args = parse(
        train_churn,
        [
            "--logs",
            str(logs),
            "--families",
            "logreg,hist_gradient_boosting",
            "--cv-folds",
            "2",
            "--spark-gbt-iterations",
            "5",
            "--spark-lr-iterations",
            "15",
        ],
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models.churn_metrics, "LATENCY_PROBES", 2)  # each Spark probe is a Spark job
        output = captured(train_churn.run, args, settings, steps=quiet_steps(), spark=lazy)
    return Ran(settings, output)


@pytest.fixture(scope="module")
def als_run(logs: Path, settings: Settings, lazy: LazySpark) -> Ran:
    args = parse(train_als, ["--logs", str(logs), "--grid", "factors=8;alpha=1,10;iterations=5", "--k", "10"])
    output = captured(train_als.run, args, settings, steps=quiet_steps(), spark=lazy)
    return Ran(settings, output)


def test_train_churn_versions_the_served_model_with_every_result(churn_run: Ran) -> None:
    root = churn_run.settings.models_dir
    version = current_version(root, "churn")
    assert version is not None and list_versions(root, "churn") == [version]
    meta = read_metadata(root, "churn", version)
    m = meta.metrics
    assert 0.6 < m["roc_auc"] <= 1.0  # learned something on the held-out snapshot
    got = {(r["setup"], r["family"]) for r in m["results"]}
    assert got == {
        (s, f)
        for s in ("time", "study")
        for f in ("logreg", "hist_gradient_boosting", "spark_logreg", "spark_gbt")
    }
    for r in m["results"]:
        assert len(r["curves"]["roc"]["fpr"]) > 10 and r["model"]["brier"] is not None
        assert (r["cv"] is not None) == (r["library"] == "scikit-learn")
    assert m["splits"]["time"]["train_days"] == ["2017-03-31", "2017-04-07", "2017-04-14"]
    assert m["promotion"]["promote"] is True and "nothing comparable" in m["promotion"]["reason"]
    assert meta.training_window[1] == "2017-04-28"  # last training snapshot + its 14 label days
    # The served artifact loads as the worker loads it and scores the test snapshot.
    loaded = load_churn(root)
    assert loaded.model.family == m["family"] and loaded.model.threshold == pytest.approx(m["threshold"])
    assert "registry" in churn_run.output and "promoted" in churn_run.output
    assert "GBT (Spark)" in churn_run.output


def test_train_churn_scikit_and_spark_learn_from_the_same_rows(churn_run: Ran) -> None:
    m = read_metadata(
        churn_run.settings.models_dir, "churn", current_version(churn_run.settings.models_dir, "churn") or ""
    ).metrics
    by = {(r["setup"], r["family"]): r for r in m["results"]}
    for setup in ("time", "study"):
        assert by[(setup, "logreg")]["fit_rows"] == by[(setup, "spark_logreg")]["fit_rows"]
        assert by[(setup, "logreg")]["test_rows"] == by[(setup, "spark_gbt")]["test_rows"]
        # Same design, same log1p scaling: the two logistic regressions rank users alike.
        assert (
            abs(by[(setup, "logreg")]["model"]["roc_auc"] - by[(setup, "spark_logreg")]["model"]["roc_auc"])
            < 0.05
        )


def test_train_als_versions_als_with_popularity_and_spark_beside_it(als_run: Ran) -> None:
    root = als_run.settings.models_dir
    version = current_version(root, "als")
    assert version is not None
    m = read_metadata(root, "als", version).metrics
    assert m["windows"]["test"] == ["2017-05-06", "2017-05-12"]
    assert m["windows"]["train"][1] < m["windows"]["test"][0]
    assert {(s["segment"], s["model"]) for s in m["segments"]} == {
        ("warm", "als"),
        ("warm", "popularity"),
        ("cold", "popularity"),
    }
    assert len(m["selection"]["trials"]) == 2
    assert m["spark"]["fit_time_s"] > 0 and m["spark"]["warm"]["users"] > 0
    loaded = load_als(root)
    assert loaded.als.params.factors == m["params"]["factors"]
    assert "Spark MLlib ALS" in als_run.output


def test_spark_top_k_lists_leave_out_songs_the_user_already_rated(als_run: Ran) -> None:
    root = als_run.settings.models_dir
    m = read_metadata(root, "als", current_version(root, "als") or "").metrics
    lists = pd.read_parquet(m["spark"]["out"])
    assert lists.groupby("uid").size().max() == 10
    loaded = load_als(root)
    rated = loaded.als.user_ratings.tocoo()
    seen = set(
        zip(loaded.als.user_ids[rated.row].tolist(), loaded.als.item_ids[rated.col].tolist(), strict=True)
    )
    recommended = set(zip(lists["uid"].tolist(), lists["song_id"].tolist(), strict=True))
    assert recommended and not recommended & seen


def shuffled_labels(test_day: str, seed: int = 1) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A degraded candidate: the training snapshots' labels permuted (the test day's kept)."""

    def prepare(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.copy()
        train = (as_of_days(rows) != test_day).to_numpy()
        rows.loc[train, LABEL] = np.random.default_rng(seed).permutation(rows.loc[train, LABEL].to_numpy())
        return rows

    return prepare


def test_retrain_promotes_first_then_refuses_a_degraded_candidate(
    logs: Path, settings: Settings, lazy: LazySpark, tmp_path: Path, churn_run: Ran
) -> None:
    own = Settings(var_dir=tmp_path)
    (tmp_path / "cache").symlink_to(settings.var_dir / "cache")  # reuse the events table and features
    first = retrain_once(own, RetrainOptions(logs=logs), spark=lazy, steps=quiet_steps())
    assert [(d.kind, d.promote) for d, _ in first.decisions] == [("churn", True), ("als", True)]
    served = current_version(own.models_dir, "churn")

    second = retrain_once(
        own, RetrainOptions(logs=logs, prepare=shuffled_labels("2017-04-28")), spark=lazy, steps=quiet_steps()
    )
    ((decision, version),) = second.decisions
    assert decision.kind == "churn" and decision.promote is False
    assert "worse than served" in decision.reason
    assert current_version(own.models_dir, "churn") == served  # still the first model
    recorded = read_metadata(own.models_dir, "churn", version).metrics["promotion"]
    assert recorded["promote"] is False and recorded["served_version"] == served
    assert recorded["served_value"] > recorded["new_value"] + recorded["tolerance"]
    assert any("als" in s and "this very data" in s for s in second.skipped)  # ALS data unchanged

    buffer = io.StringIO()
    print_outcome(Console(file=buffer, width=200), second)
    assert "kept the served one" in buffer.getvalue() and "skipped als" in buffer.getvalue()


def test_retrain_command_parses_a_schedule() -> None:
    args = parse(retrain, ["--feature-log", "x", "--every", "1h30m", "--promote", "never"])
    assert args.every == 5400.0 and retrain.options_from_args(args).mode == "never"


def test_report_holds_the_studys_table_activity_and_figures(
    logs: Path, churn_run: Ran, als_run: Ran, tmp_path: Path
) -> None:
    args = parse(report, ["--logs", str(logs), "--out", str(tmp_path / "r")])
    output = captured(report.run, args, churn_run.settings)
    document = (tmp_path / "r" / "report.html").read_text()
    assert "0.868" in document and "0.904" in document and "0.897" in document  # the study's table
    assert document.count("data:image/png;base64,") >= 10  # activity, curves x2, ALS, times, ...
    assert "missing_shard" in document  # the generator's collection gaps are marked
    assert "Spark MLlib ALS" in document and "cold" in document
    assert "report written to" in output
    quality_cache = list((churn_run.settings.var_dir / "cache" / "quality").glob("*.json"))
    assert len(quality_cache) == 1 and json.loads(quality_cache[0].read_text())

"""`musicbox batch train-churn`: every churn family on the time-based and the study's setup,
scikit-learn and Spark ML side by side, the chosen model versioned in the registry.

read (logs -> features, or a features file) -> experiment (batch.churn_training) -> write
(registry version whose metadata holds every result, CURRENT switched if the gate agrees).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pandas as pd

from batch.churn_training import ChurnConfig, ChurnExperiment, run_churn_experiment, served_churn_score
from batch.events_table import events_table
from batch.options import (
    add_as_of,
    add_logs,
    add_promotion,
    add_recall_target,
    add_sample_pct,
    add_stride,
    name_list,
    positive_int,
)
from batch.promotion import PromotionDecision, apply, decide
from batch.report_tables import churn_summary, rich_table
from batch.spark_ml import DEFAULT_SPARK_PARAMS, SPARK_FAMILIES
from batch.steps import Steps
from batch.train_common import LazySpark, print_decisions, summary_console
from batch.training_data import churn_snapshot_days, features_from_logs, read_feature_file
from models.churn import FAMILIES
from models.churn_splits import as_of_days
from models.metadata import ModelMetadata
from models.registry import save_churn
from musicbox.features import AS_OF
from musicbox.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    add_logs(source, "folder of raw logs: features are built from them")
    source.add_argument(
        "--features", type=Path, help="a table written by `musicbox batch features` holding the snapshots"
    )
    add_as_of(parser, "the test snapshot (default: MUSICBOX_STUDY_AS_OF, the study's 2017-04-28)")
    add_stride(parser, ", the last one a label window (14 days) before the test day")
    parser.add_argument(
        "--families",
        type=name_list(FAMILIES),
        default=FAMILIES,
        help=f"scikit-learn families, comma-separated (default: {','.join(FAMILIES)})",
    )
    parser.add_argument(
        "--spark-families",
        type=name_list(SPARK_FAMILIES),
        default=SPARK_FAMILIES,
        help="Spark ML families, comma-separated, or none (default: all)",
    )
    parser.add_argument(
        "--spark-gbt-iterations",
        type=positive_int,
        default=DEFAULT_SPARK_PARAMS["spark_gbt"]["maxIter"],
        help="boosting rounds of Spark GBT (default: %(default)s)",
    )
    parser.add_argument(
        "--spark-lr-iterations",
        type=positive_int,
        default=DEFAULT_SPARK_PARAMS["spark_logreg"]["maxIter"],
        help="L-BFGS iterations of Spark's logistic regression, one Spark job each (default: %(default)s)",
    )
    parser.add_argument(
        "--serve",
        choices=FAMILIES,
        help="the family to version and serve (default: the best time-based ROC AUC)",
    )
    add_recall_target(parser)
    parser.add_argument(
        "--cv-folds", type=int, default=5, help="cross-validation folds; 0 skips it (default: 5)"
    )
    parser.add_argument(
        "--cv-max-rows",
        type=positive_int,
        default=50_000,
        help="cross-validate on a user sample of at most this many rows (default: 50000)",
    )
    add_sample_pct(parser, " (with --logs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and the models")
    add_promotion(parser)


def snapshot_table(frame: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    """The rows of `days` only (a features file may hold every day)."""
    wanted = {d.isoformat() for d in days}
    return frame.loc[as_of_days(frame).isin(wanted).to_numpy()].reset_index(drop=True)


def publish(
    root: Path, experiment: ChurnExperiment, *, mode: str, tolerance: float, durations_s: dict[str, float]
) -> tuple[ModelMetadata, PromotionDecision]:
    """Score the served model on the same test rows, decide, save the version with the decision
    in its metadata, then switch CURRENT if the decision says so."""
    served = served_churn_score(root, experiment.served_split.test)
    decision = decide(
        "churn",
        "roc_auc",
        experiment.served_evaluation.model.roc_auc,
        served,
        tolerance=tolerance,
        mode=mode,
        test_data=f"snapshot {experiment.config.test_as_of}",
    )
    metrics = experiment.metrics()
    metrics["promotion"] = decision.to_dict()
    metrics["timings_s"] = dict(durations_s)
    metadata = save_churn(root, experiment.served.model, experiment.training_info(metrics))
    apply(root, "churn", metadata.version, decision)
    return metadata, decision


def run(
    args: argparse.Namespace,
    settings: Settings,
    *,
    steps: Steps | None = None,
    spark: LazySpark | None = None,
) -> int:
    steps = steps or Steps()
    spark = spark or LazySpark(settings, "musicbox-train-churn")
    test_day: date = args.as_of or settings.study_as_of
    if args.logs is not None:
        with steps.step("events table", str(args.logs)):
            table = events_table(settings, args.logs, progress=steps.reading_logs)
        assert table.first_day is not None
        days = churn_snapshot_days(
            test_day, table.first_day, stride_d=args.stride_d, label_window_d=settings.label_window_d
        )
        with steps.step("feature snapshots (Spark)", ", ".join(map(str, days))):
            rows, cached = features_from_logs(settings, table, days, spark, sample_pct=args.sample_pct)
            steps.note(f"{len(rows):,} rows{' (cached)' if cached else ''}")
    else:
        with steps.step("features file", str(args.features)):
            frame = read_feature_file(args.features)
            first = min(pd.to_datetime(frame[AS_OF]).dt.date)
            days = churn_snapshot_days(
                test_day, first, stride_d=args.stride_d, label_window_d=settings.label_window_d
            )
            rows = snapshot_table(frame, days)
    config = ChurnConfig(
        test_as_of=test_day,
        families=args.families,
        spark_families=args.spark_families,
        spark_params={
            "spark_gbt": {"maxIter": args.spark_gbt_iterations},
            "spark_logreg": {"maxIter": args.spark_lr_iterations},
        },
        serve=args.serve,
        recall_target=args.recall_target,
        cv_folds=args.cv_folds,
        cv_max_rows=args.cv_max_rows,
        label_window_d=settings.label_window_d,
        seed=args.seed,
    )
    experiment = run_churn_experiment(
        rows, config, spark=spark() if config.spark_families else None, steps=steps
    )
    with steps.step("registry"):
        metadata, decision = publish(
            settings.models_dir,
            experiment,
            mode=args.promote,
            tolerance=args.tolerance,
            durations_s=steps.durations_s,
        )
    console = summary_console()
    served = experiment.served.model
    results = experiment.results
    for setup, split in experiment.splits.items():
        console.print(rich_table(churn_summary(results, setup), f"churn models: {split['description']}"))
    console.print(
        f"served family: {served.family} at threshold {served.threshold:.3f} "
        f"(recall target {config.recall_target:.0%} on validation); metrics in "
        f"{settings.models_dir / 'churn' / metadata.version / 'metadata.json'}"
    )
    print_decisions(console, [(decision, metadata.version)])
    return 0

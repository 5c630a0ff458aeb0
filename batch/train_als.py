"""`musicbox batch train-als`: implicit ratings, ALS tuned on a validation window, measured on a
later window against popularity (warm and cold users), Spark MLlib ALS on the same matrix.

read (events table, day by day) -> ratings windows -> experiment (batch.als_training) -> write
(registry version, metrics in its metadata; Spark's top-K lists as Parquet).

implicit and the BLAS it uses are imported inside `run`, after OPENBLAS_NUM_THREADS=1 is set
(when the user has not set it): OpenBLAS reads it once, when it is loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.events_table import events_table
from batch.options import add_als_windows, add_as_of, add_logs, add_promotion, positive_int
from batch.promotion import PromotionDecision, apply, decide
from batch.report_tables import als_table, rich_table
from batch.steps import Steps
from batch.train_common import LazySpark, print_decisions, summary_console
from batch.training_data import rating_event_days
from musicbox.settings import Settings

if TYPE_CHECKING:
    from batch.als_training import AlsExperiment
    from models.metadata import ModelMetadata

DEFAULT_GRID_TEXT = "factors=16,64;regularization=0.1,1.0;alpha=1,10,40"


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_grid(text: str) -> dict[str, list[Any]]:
    """`name=v1,v2;name=v3` -> {name: [v1, v2], ...}; ints stay ints ("none" -> no search)."""
    if text.strip().lower() == "none":
        return {}
    grid: dict[str, list[Any]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        if not sep or not values.strip():
            raise argparse.ArgumentTypeError(f"{part!r} is not NAME=V1,V2")
        try:
            grid[name.strip()] = [_number(v.strip()) for v in values.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: the values must be numbers") from None
    return grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_logs(parser, "folder of raw logs", required=True)
    add_as_of(
        parser,
        "last day of the training window (default: the last day of the logs minus "
        "the evaluation window, so that the test window ends with the data)",
    )
    add_als_windows(parser)
    parser.add_argument(
        "--grid",
        type=parse_grid,
        default=parse_grid(DEFAULT_GRID_TEXT),
        help=f"hyperparameters tried on the validation window, or none (default: {DEFAULT_GRID_TEXT})",
    )
    parser.add_argument(
        "--k", type=positive_int, default=10, help="list length of the @k metrics (default: 10)"
    )
    parser.add_argument("--no-spark", action="store_true", help="skip Spark MLlib ALS")
    parser.add_argument(
        "--spark-out",
        type=Path,
        help="where Spark's top-k lists go (default: MUSICBOX_SHARED_DIR/batch/spark-als/<as-of>)",
    )
    add_promotion(parser)


def publish(
    root: Path, experiment: AlsExperiment, *, mode: str, tolerance: float, durations_s: dict[str, float]
) -> tuple[ModelMetadata, PromotionDecision]:
    """Score the served ALS on the same test window, decide, save (decision in the metadata), switch."""
    from batch.als_training import PROMOTION_METRIC, served_als_score
    from models.registry import save_als

    served = served_als_score(root, experiment.ratings, experiment.config.k)
    first, last = experiment.windows.test
    decision = decide(
        "als",
        PROMOTION_METRIC,
        experiment.system.ndcg,
        served,
        tolerance=tolerance,
        mode=mode,
        test_data=f"test window {first}..{last}",
    )
    metrics = experiment.metrics()
    metrics["promotion"] = decision.to_dict()
    metrics["timings_s"] = dict(durations_s)
    metadata = save_als(root, experiment.model, experiment.popularity, experiment.training_info(metrics))
    apply(root, "als", metadata.version, decision)
    return metadata, decision


def run(
    args: argparse.Namespace,
    settings: Settings,
    *,
    steps: Steps | None = None,
    spark: LazySpark | None = None,
) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from batch.als_training import AlsConfig, build_ratings, default_windows, run_als_experiment
    from models.als import DEFAULT_PARAMS

    steps = steps or Steps()
    spark = spark or LazySpark(settings, "musicbox-train-als")
    with steps.step("events table", str(args.logs)):
        table = events_table(settings, args.logs, progress=steps.reading_logs)
    assert table.first_day is not None and table.last_day is not None
    windows = default_windows(
        table.first_day, table.last_day, args.eval_window_d, args.rating_window_d, args.as_of
    )
    with steps.step("ratings", f"events of {windows.needed[0]}..{windows.needed[1]}"):
        ratings = build_ratings(rating_event_days(table, *windows.needed), windows)
        for name, c in ratings.counts().items():
            steps.note(f"{name}: {c['pairs']:,} pairs, {c['users']:,} users, {c['songs']:,} songs")
    spark_out = None
    if not args.no_spark:
        spark_out = (
            args.spark_out or settings.shared_state_dir / "batch" / "spark-als" / windows.as_of.isoformat()
        )
    config = AlsConfig(grid=args.grid or None, base=DEFAULT_PARAMS, k=args.k, spark_out=spark_out)
    experiment = run_als_experiment(
        ratings, windows, config, spark=spark() if spark_out else None, steps=steps
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
    first, last = windows.test
    console.print(
        rich_table(als_table(experiment.metrics()), f"recommenders on the test window {first}..{last}")
    )
    console.print(
        f"ALS {experiment.model.params}; cold users (no training ratings) get popularity; "
        f"metrics in {settings.models_dir / 'als' / metadata.version / 'metadata.json'}"
        + (f"; Spark top-{args.k} lists in {spark_out}" if spark_out else "")
    )
    print_decisions(console, [(decision, metadata.version)])
    return 0

"""`musicbox batch retrain`: rebuild the training data from what has arrived, retrain the churn
model and ALS, and promote each only if it scores no worse than the served one (same test data).

Churn data comes from the raw logs (`--logs`) or from the streaming job's feature log
(`--feature-log`, labels derived by `batch.feature_log_labels`); ALS needs the logs (the feature
log holds no songs). The newest labelled day is the test day, so the model is judged on the
freshest labels there are. Unchanged data (the served version's data fingerprint) is not
retrained unless `--force`. `--every 6h` repeats the whole on a schedule until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console

from batch.als_training import DEFAULT_EVAL_WINDOW_D
from batch.churn_training import ChurnConfig, run_churn_experiment
from batch.errors import TrainingError
from batch.events_table import EventsTable, events_table
from batch.options import add_als_windows, add_logs, add_promotion, add_recall_target, add_stride
from batch.promotion import DEFAULT_TOLERANCE, PromotionDecision
from batch.steps import Steps
from batch.train_common import LazySpark, print_decisions
from batch.training_data import (
    DEFAULT_STRIDE_D,
    churn_snapshot_days,
    features_from_feature_log,
    features_from_logs,
    last_labelled_day,
)
from models.churn import FAMILIES
from models.churn_metrics import DEFAULT_RECALL_TARGET
from models.churn_splits import time_split
from models.errors import ModelError
from models.metadata import fingerprint
from models.ratings import DEFAULT_WINDOW_D
from models.registry import current_version, list_versions, read_metadata
from musicbox.errors import MusicboxError
from musicbox.settings import Settings

DEFAULT_FAMILY = "hist_gradient_boosting"  # strong and fast at scale, when nothing is served yet
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `6h`, `1d`, `1h30m`, or plain seconds -> seconds (> 0)."""
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration like 90s, 30m, 6h, 1d or 1h30m"
            ) from None
        seconds = sum(float(n) * _UNITS_S[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the interval must be positive")
    return seconds


def run_schedule(
    job: Callable[[], None],
    every_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_error: Callable[[MusicboxError], None] = lambda exc: None,
    max_runs: int | None = None,
) -> int:
    """Run `job` every `every_s` seconds (start to start) until interrupted or `max_runs`; a failed
    run (a MusicboxError: e.g. not enough data yet) is reported and the schedule goes on."""
    runs = 0
    while True:
        started = clock()
        try:
            job()
        except MusicboxError as exc:
            on_error(exc)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            return runs
        sleep(max(0.0, every_s - (clock() - started)))


@dataclass
class RetrainOutcome:
    decisions: list[tuple[PromotionDecision, str]] = field(default_factory=list)  # (decision, new version)
    skipped: list[str] = field(default_factory=list)  # one sentence per model not retrained


@dataclass(frozen=True)
class RetrainOptions:
    logs: Path | None = None
    feature_log: Path | None = None
    family: str | None = None  # None: the served family, else DEFAULT_FAMILY
    stride_d: int = DEFAULT_STRIDE_D
    recall_target: float = DEFAULT_RECALL_TARGET
    eval_window_d: int = DEFAULT_EVAL_WINDOW_D
    rating_window_d: int = DEFAULT_WINDOW_D
    select_als: bool = False
    mode: str = "auto"
    tolerance: float = DEFAULT_TOLERANCE
    force: bool = False
    # Applied to the churn training table before training: a hook for drills and tests (e.g. a
    # deliberately degraded candidate, to see the gate refuse it).
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None


def _served_metadata(root: Path, kind: str) -> dict | None:
    """Version, data fingerprint and model spec of the served version (None if none or unreadable)."""
    version = current_version(root, kind)
    return None if version is None else _metadata(root, kind, version)


def _metadata(root: Path, kind: str, version: str) -> dict | None:
    try:
        meta = read_metadata(root, kind, version)
    except ModelError:
        return None
    return {"version": version, "fingerprint": meta.data_fingerprint, "model": meta.model}


def already_trained(root: Path, kind: str, data_fingerprint: str) -> str | None:
    """A sentence naming the served or newest version trained on data with this fingerprint, if any:
    retraining on unchanged data would only add an identical version (or re-refuse the same one)."""
    versions = list_versions(root, kind)
    for version in dict.fromkeys([current_version(root, kind), versions[-1] if versions else None]):
        meta = _metadata(root, kind, version) if version else None
        if meta and meta["fingerprint"] == data_fingerprint:
            return f"{kind}: version {version} was already trained on this very data (use --force to retrain)"
    return None


def _retrain_churn(
    settings: Settings,
    opts: RetrainOptions,
    table: EventsTable | None,
    spark: LazySpark,
    steps: Steps,
    outcome: RetrainOutcome,
) -> None:
    from batch.train_churn import publish

    root = settings.models_dir
    window_d = settings.label_window_d
    if opts.feature_log is not None:
        with steps.step("churn data from the feature log", str(opts.feature_log)):
            rows, test_day, _ = features_from_feature_log(opts.feature_log, window_d, opts.stride_d)
    else:
        assert table is not None and table.first_day is not None and table.last_day is not None
        test_day = last_labelled_day(table.last_day, window_d)
        days = churn_snapshot_days(test_day, table.first_day, stride_d=opts.stride_d, label_window_d=window_d)
        with steps.step("churn data from the logs (Spark)", ", ".join(map(str, days))):
            rows, _ = features_from_logs(settings, table, days, spark)
    if opts.prepare is not None:
        rows = opts.prepare(rows)
    same = already_trained(root, "churn", fingerprint(time_split(rows, test_day, window_d).train))
    if same and not opts.force:
        outcome.skipped.append(same)
        return
    served = _served_metadata(root, "churn")
    family = opts.family or (served["model"].get("family") if served else None) or DEFAULT_FAMILY
    config = ChurnConfig(
        test_as_of=test_day,
        families=(family,),
        setups=("time",),
        cv_folds=0,
        recall_target=opts.recall_target,
        label_window_d=window_d,
    )
    experiment = run_churn_experiment(rows, config, steps=steps)
    with steps.step("churn: registry"):
        metadata, decision = publish(
            root, experiment, mode=opts.mode, tolerance=opts.tolerance, durations_s=steps.durations_s
        )
    outcome.decisions.append((decision, metadata.version))


def _retrain_als(
    settings: Settings, opts: RetrainOptions, table: EventsTable, steps: Steps, outcome: RetrainOutcome
) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before implicit loads its BLAS
    from batch.als_training import AlsConfig, build_ratings, default_windows, run_als_experiment
    from batch.train_als import publish
    from batch.training_data import rating_event_days
    from models.als import DEFAULT_PARAMS, AlsParams
    from models.als_evaluation import DEFAULT_GRID

    root = settings.models_dir
    assert table.first_day is not None and table.last_day is not None
    windows = default_windows(table.first_day, table.last_day, opts.eval_window_d, opts.rating_window_d)
    with steps.step("ALS ratings", f"events of {windows.needed[0]}..{windows.needed[1]}"):
        ratings = build_ratings(rating_event_days(table, *windows.needed), windows)
    same = already_trained(root, "als", fingerprint(ratings.train))
    if same and not opts.force:
        outcome.skipped.append(same)
        return
    served = _served_metadata(root, "als")
    base = (
        AlsParams(**served["model"]["params"]) if served and "params" in served["model"] else DEFAULT_PARAMS
    )
    config = AlsConfig(grid=DEFAULT_GRID if opts.select_als else None, base=base)
    experiment = run_als_experiment(ratings, windows, config, steps=steps)
    with steps.step("ALS: registry"):
        metadata, decision = publish(
            root, experiment, mode=opts.mode, tolerance=opts.tolerance, durations_s=steps.durations_s
        )
    outcome.decisions.append((decision, metadata.version))


def retrain_once(
    settings: Settings, opts: RetrainOptions, *, spark: LazySpark | None = None, steps: Steps | None = None
) -> RetrainOutcome:
    """One retraining pass over what has arrived: churn, then ALS when there are logs."""
    if opts.logs is None and opts.feature_log is None:
        raise TrainingError("give --logs DIR, --feature-log DIR, or both")
    steps = steps or Steps()
    spark = spark or LazySpark(settings, "musicbox-retrain")
    outcome = RetrainOutcome()
    table = None
    if opts.logs is not None:
        with steps.step("events table", str(opts.logs)):
            table = events_table(settings, opts.logs, progress=steps.reading_logs)
    _retrain_churn(settings, opts, table, spark, steps, outcome)
    if table is not None:
        _retrain_als(settings, opts, table, steps, outcome)
    else:
        outcome.skipped.append("als: needs --logs (the feature log holds no song-level events)")
    return outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_logs(parser, "folder of raw logs (churn unless --feature-log; and ALS)")
    parser.add_argument(
        "--feature-log",
        type=Path,
        help="the streaming job's Parquet feature log (MUSICBOX_VAR_DIR/feature-log): "
        "churn training data, labels derived from the log itself: a user of day D churned when no "
        "row of D+1..D+14 has a 1-day count > 0 (absent from the log = inactive that day); a day "
        "missing from the log leaves the labels that need it unknown",
    )
    parser.add_argument(
        "--every",
        type=parse_duration,
        metavar="DURATION",
        help="retrain on a schedule (90s, 30m, 6h, 1d, 1h30m) until Ctrl-C",
    )
    parser.add_argument(
        "--family", choices=FAMILIES, help=f"churn family (default: the served one, else {DEFAULT_FAMILY})"
    )
    add_stride(parser)
    add_recall_target(parser)
    add_als_windows(parser)
    parser.add_argument(
        "--select-als",
        action="store_true",
        help="search ALS hyperparameters on a validation window (default: keep the served ones)",
    )
    parser.add_argument("--force", action="store_true", help="retrain even when the data has not changed")
    add_promotion(parser)


def options_from_args(args: argparse.Namespace) -> RetrainOptions:
    return RetrainOptions(
        logs=args.logs,
        feature_log=args.feature_log,
        family=args.family,
        stride_d=args.stride_d,
        recall_target=args.recall_target,
        eval_window_d=args.eval_window_d,
        rating_window_d=args.rating_window_d,
        select_als=args.select_als,
        mode=args.promote,
        tolerance=args.tolerance,
        force=args.force,
    )


def print_outcome(console: Console, outcome: RetrainOutcome) -> None:
    if outcome.decisions:
        print_decisions(console, outcome.decisions)
    for line in outcome.skipped:
        console.print(f"skipped {line}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from batch.train_common import summary_console

    opts = options_from_args(args)
    console = summary_console()
    spark = LazySpark(settings, "musicbox-retrain")  # one session for every scheduled run

    def once() -> None:
        print_outcome(console, retrain_once(settings, opts, spark=spark))

    if args.every is None:
        once()
        return 0
    err = Console(stderr=True)
    err.print(f"retraining every {args.every:,.0f} s; Ctrl-C stops")
    try:
        run_schedule(once, args.every, on_error=lambda exc: err.print(f"[red]this run failed:[/red] {exc}"))
    except KeyboardInterrupt:
        err.print("stopped")
    return 0

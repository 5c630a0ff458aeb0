"""The options of the `musicbox batch` commands, each defined once: an option two commands share
has one name, type, metavar and default, and one error message for a bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from batch.als_training import DEFAULT_EVAL_WINDOW_D
from batch.promotion import DEFAULT_TOLERANCE, MODES
from models.churn_metrics import DEFAULT_RECALL_TARGET
from models.ratings import DEFAULT_WINDOW_D
from musicbox.cli_args import iso_day

# Where options go: a parser, or a group of one (argparse's common base of both).
Options = argparse._ActionsContainer


# ------------------------------------------------------------------------------ option types


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def percent(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole percentage in 1..100")
    return int(text)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def name_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An option type for a comma-separated subset of `allowed` ("none" for the empty list)."""

    def parse(text: str) -> tuple[str, ...]:
        if text.strip().lower() == "none":
            return ()
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}: choose from {', '.join(allowed)}")
        return names

    return parse


# ------------------------------------------------------------------ options of several commands


def add_logs(options: Options, help: str, *, required: bool = False) -> None:
    options.add_argument("--logs", type=Path, metavar="DIR", required=required, help=help)


def add_out(options: Options, help: str, *, required: bool = False) -> None:
    options.add_argument("--out", type=Path, required=required, help=help)


def add_as_of(options: Options, help: str) -> None:
    options.add_argument("--as-of", type=iso_day, metavar="DATE", help=help)


def add_sample_pct(options: Options, help: str = "") -> None:
    options.add_argument(
        "--sample-pct",
        type=percent,
        metavar="P",
        help="keep only users with pmod(xxhash64(uid), 100) < P (Spark's xxhash64, seed 42): "
        f"a deterministic P%% user sample{help}",
    )


def add_stride(options: Options, help: str = "") -> None:
    # Imported here: batch.training_data imports batch.features, whose options come from here.
    from batch.training_data import DEFAULT_STRIDE_D

    options.add_argument(
        "--stride-d",
        type=positive_int,
        default=DEFAULT_STRIDE_D,
        help=f"days between churn training snapshots{help} (default: {DEFAULT_STRIDE_D})",
    )


def add_recall_target(options: Options) -> None:
    options.add_argument(
        "--recall-target",
        type=fraction,
        default=DEFAULT_RECALL_TARGET,
        help=f"recall the served threshold must reach on validation data (default: {DEFAULT_RECALL_TARGET})",
    )


def add_als_windows(options: Options) -> None:
    options.add_argument(
        "--eval-window-d",
        type=positive_int,
        default=DEFAULT_EVAL_WINDOW_D,
        help=f"days of the ALS validation and of its test window (default: {DEFAULT_EVAL_WINDOW_D})",
    )
    options.add_argument(
        "--rating-window-d",
        type=positive_int,
        default=DEFAULT_WINDOW_D,
        help=f"days of events an ALS rating sums (default: {DEFAULT_WINDOW_D})",
    )


def add_promotion(options: Options) -> None:
    options.add_argument(
        "--promote",
        choices=MODES,
        default="auto",
        help="auto: serve the new model unless the served one, scored on the same test data, is "
        "better by more than --tolerance; always / never override the comparison (default: auto)",
    )
    options.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"how much worse the new model may score and still be served (default: {DEFAULT_TOLERANCE})",
    )

"""`musicbox batch`: the batch jobs, one sub-command each (features; training, retraining, report next).

A sub-command is a module with `add_arguments(parser)` and `run(args, settings) -> int`, the
same protocol as the top-level commands of `musicbox.cli`; adding one is one line in
`SUBCOMMANDS`. A listed module that is not written yet is left out of the parser.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from types import ModuleType

from musicbox.settings import Settings


@dataclass(frozen=True)
class Subcommand:
    name: str
    module: str
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("features", "batch.features", "feature rows (+ churn label where known) for as-of days"),
    Subcommand("train-churn", "batch.train_churn", "churn models on both setups, versioned in the registry"),
    Subcommand(
        "train-als", "batch.train_als", "ALS vs popularity (and Spark ALS), versioned in the registry"
    ),
    Subcommand("retrain", "batch.retrain", "rebuild training data, retrain, promote only if not worse"),
    Subcommand("report", "batch.report", "HTML report: activity, churn models vs the study, ALS"),
)
_MODULE_ATTR = "_batch_module"  # where each sub-parser keeps the module that runs it


def _load(sub: Subcommand) -> ModuleType | None:
    try:
        return importlib.import_module(sub.module)
    except ModuleNotFoundError as exc:
        if exc.name and sub.module.startswith(exc.name):
            return None  # not built yet
        raise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="batch_command", metavar="SUBCOMMAND", required=True)
    for sub in SUBCOMMANDS:
        module = _load(sub)
        if module is None:
            continue
        sub_parser = subparsers.add_parser(sub.name, help=sub.help, description=sub.help)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(**{_MODULE_ATTR: module})


def run(args: argparse.Namespace, settings: Settings) -> int:
    module: ModuleType = getattr(args, _MODULE_ATTR)
    return int(module.run(args, settings))

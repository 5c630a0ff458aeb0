"""`musicbox demo`: the main job on a generated data set, end to end.

Today it brings the local stack up and shows its status; the full pipeline (generate, train,
stream, score, retrain, summary) grows here as its parts land.
"""

from __future__ import annotations

import argparse

from musicbox.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-running", action="store_true", help="leave the stack running at the end")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from infra.local import commands

    commands.up(argparse.Namespace(timeout_s=120.0), settings)
    healthy = commands.status(argparse.Namespace(), settings)
    if not args.keep_running:
        commands.down(argparse.Namespace(), settings)
    return healthy

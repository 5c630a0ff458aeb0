"""The `musicbox` command: one entry point, each subcommand implemented in its own package.

A subcommand module is imported only when that subcommand runs (the dependency rule of
DESIGN section 2: `musicbox/` imports the other packages lazily, here and nowhere else).
Each such module defines `add_arguments(parser)` and `run(args, settings) -> int` (or, when one
module serves several commands, `<entry>_arguments` and `<entry>`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from types import ModuleType

from musicbox.errors import MusicboxError


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    entry: str = ""  # in a module serving several commands: `<entry>_arguments` and `<entry>`


COMMANDS: tuple[Command, ...] = (
    Command("up", "infra.local.commands", "start the local services: Kafka (KRaft) and Prometheus", "up"),
    Command("down", "infra.local.commands", "stop the local services that `up` started", "down"),
    Command("status", "infra.local.commands", "show what runs, on which port, how healthy", "status"),
    Command("generate", "producers.generator.command", "write synthetic logs in the real raw format"),
    Command("read", "producers.read_command", "read raw logs: counts, dead letters, data-quality report"),
    Command("replay", "producers.replay.command", "replay logs into Kafka in event-time order"),
    Command("batch", "batch.command", "batch features, model training, retraining, report"),
    Command("stream", "streaming.aggregates.command", "the Spark streaming feature job"),
    Command("parity", "batch.parity_command", "streaming vs batch features, row by row"),
    Command("worker", "streaming.scoring.command", "the Faust churn scoring and recommendation worker"),
    Command("demo", "demo.command", "everything end to end on a generated data set, with a summary"),
)


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {c.name:<10} {c.help}" for c in COMMANDS)
    return argparse.ArgumentParser(
        prog="musicbox",
        description="Live churn scoring and song recommendation on streaming user activity.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{lines}\n\nRun `musicbox COMMAND --help` for a command's options. "
        "Settings come from MUSICBOX_* environment variables (see the README).",
    )


def command_parser(command: Command, module: ModuleType) -> argparse.ArgumentParser:
    """The parser of one command, with the options its module declares."""
    parser = argparse.ArgumentParser(prog=f"musicbox {command.name}", description=command.help)
    getattr(module, f"{command.entry}_arguments" if command.entry else "add_arguments")(parser)
    return parser


def load(command: Command) -> ModuleType | None:
    """The module implementing `command`, imported now; None when it is not built yet."""
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if exc.name and command.module.startswith(exc.name):
            return None  # the command is not built yet
        raise


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    by_name = {c.name: c for c in COMMANDS}
    if not argv or argv[0] not in by_name:
        top.add_argument("command", choices=sorted(by_name), help="what to do")
        top.parse_args(argv[:1] or ["--help"])
        return 2
    command = by_name[argv[0]]
    module = load(command)
    if module is None:
        print(f"musicbox {command.name}: not available in this build yet", file=sys.stderr)
        return 2
    run = getattr(module, command.entry or "run")
    args = command_parser(command, module).parse_args(argv[1:])

    from musicbox.logging_setup import configure_logging
    from musicbox.settings import Settings

    configure_logging()
    try:
        return int(run(args, Settings()))
    except MusicboxError as exc:
        print(f"musicbox {command.name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"musicbox {command.name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

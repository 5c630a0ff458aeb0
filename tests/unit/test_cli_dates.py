"""Every date option of every command takes YYYY-MM-DD through one type, and a bad date is a
one-line usage error naming the option (exit 2), never a traceback."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from datetime import date

import pytest

from musicbox.cli import COMMANDS, command_parser, load, main
from musicbox.cli_args import iso_day

# What makes an option a date option, whatever its type says: its name or its help.
_DATE_DEST = re.compile(r"(^|_)(as_of|day|date|start|since|until)$")


def _looks_like_a_date(action: argparse.Action) -> bool:
    return bool(
        _DATE_DEST.search(action.dest)
        or action.metavar in ("DATE", "DAY")
        or "YYYY-MM-DD" in (action.help or "")
    )


def _options(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """(command words, option) for every option of `parser` and of its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings:
            yield path, action


def _date_options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    found = []
    for command in COMMANDS:
        module = load(command)
        assert module is not None, f"musicbox {command.name} is not built"
        found += [
            (path, action)
            for path, action in _options(command_parser(command, module), (command.name,))
            if action.type is iso_day or _looks_like_a_date(action)
        ]
    return found


DATE_OPTIONS = _date_options()
IDS = [f"{' '.join(path)} {action.option_strings[-1]}" for path, action in DATE_OPTIONS]


def test_the_introspection_finds_the_date_options_we_know() -> None:
    # If this fails the search below went blind, and the table test would pass on nothing.
    assert {
        "replay --from",
        "replay --to",
        "read --from",
        "read --to",
        "generate --start",
        "parity --from",
        "parity --to",
        "batch features --as-of",
        "batch features --from",
        "batch features --to",
        "batch train-churn --as-of",
        "batch train-als --as-of",
    } <= set(IDS)


@pytest.mark.parametrize(("path", "action"), DATE_OPTIONS, ids=IDS)
def test_a_bad_date_is_a_one_line_usage_error_naming_the_option(
    path: tuple[str, ...], action: argparse.Action, capsys: pytest.CaptureFixture[str]
) -> None:
    # The type decides the message: an option that looks like a date must use the shared one.
    assert action.type is iso_day, f"{' '.join(path)} {action.option_strings[-1]} is not typed iso_day"
    option = action.option_strings[-1]
    with pytest.raises(SystemExit) as exit_info:
        main([*path, option, "2017-13-01"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    names = "/".join(action.option_strings)
    assert errors == [
        f"musicbox {' '.join(path)}: error: argument {names}: invalid day '2017-13-01': expected YYYY-MM-DD"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-03-30", date(2017, 3, 30)),  # the one accepted form
        ("2016-02-29", date(2016, 2, 29)),  # a leap day exists in a leap year
        ("2017-13-01", None),  # no month 13
        ("2017-02-29", None),  # no leap day in 2017
        ("20170330", None),  # fromisoformat's compact form: not the CLI's
        ("2017-W13-1", None),  # a week date, which fromisoformat also takes
        ("2017-3-30", None),  # digits missing
        (" 2017-03-30", None),  # stray space
        ("", None),  # nothing
    ],
)
def test_iso_day_takes_yyyy_mm_dd_only(text: str, expected: date | None) -> None:
    if expected is not None:
        assert iso_day(text) == expected
    else:
        with pytest.raises(
            argparse.ArgumentTypeError, match=re.escape(f"invalid day {text!r}: expected YYYY-MM-DD")
        ):
            iso_day(text)

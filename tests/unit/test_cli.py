from __future__ import annotations

import importlib

import pytest

from musicbox.cli import COMMANDS, Command, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_design_commands_are_all_declared() -> None:
    names = {c.name for c in COMMANDS}
    assert {
        "up",
        "down",
        "status",
        "generate",
        "replay",
        "stream",
        "worker",
        "batch",
        "parity",
        "demo",
    } <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_module_has_its_entry_points(command: Command) -> None:
    # The CLI finds a command by module path: a moved module must be moved here too, or the
    # command would say "not available in this build yet".
    module = importlib.import_module(command.module)
    assert callable(getattr(module, f"{command.entry}_arguments" if command.entry else "add_arguments"))
    assert callable(getattr(module, command.entry or "run"))

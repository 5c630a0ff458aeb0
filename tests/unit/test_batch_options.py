"""`musicbox batch`: an option several commands take is one definition, the promotion tolerance is
one number, and a batch failure reaches the user as one line of batch's own error."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import batch
from batch.errors import BatchError
from batch.promotion import DEFAULT_TOLERANCE, decide
from batch.retrain import RetrainOptions, options_from_args
from models.registry import should_promote
from musicbox.cli import COMMANDS, command_parser, load, main


def _batch_commands() -> dict[str, argparse.ArgumentParser]:
    command = next(c for c in COMMANDS if c.name == "batch")
    module = load(command)
    assert module is not None
    parser = command_parser(command, module)
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_an_option_several_batch_commands_take_is_defined_once() -> None:
    by_option: dict[str, dict[str, argparse.Action]] = defaultdict(dict)
    for name, parser in _batch_commands().items():
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    by_option[option][name] = action
    shared = {option: actions for option, actions in by_option.items() if len(actions) > 1}
    assert {
        "--logs",
        "--out",
        "--as-of",
        "--sample-pct",
        "--stride-d",
        "--recall-target",
        "--eval-window-d",
        "--rating-window-d",
        "--promote",
        "--tolerance",
    } <= set(shared)
    for option, actions in shared.items():
        # Same name, type (so the same check and message for a bad value), metavar and default.
        specs = {name: (a.dest, a.type, a.metavar, a.default, a.choices) for name, a in actions.items()}
        assert len(set(specs.values())) == 1, f"{option} is defined differently: {specs}"


def test_one_promotion_tolerance_everywhere() -> None:
    commands = _batch_commands()
    assert {commands[c].get_default("tolerance") for c in ("train-churn", "train-als", "retrain")} == {
        DEFAULT_TOLERANCE
    }
    assert RetrainOptions().tolerance == DEFAULT_TOLERANCE  # retrain called as a library (the demo, tests)
    assert inspect.signature(decide).parameters["tolerance"].default == DEFAULT_TOLERANCE
    assert inspect.signature(should_promote).parameters["tolerance"].default == DEFAULT_TOLERANCE


def test_retrain_as_a_library_defaults_to_what_the_command_does() -> None:
    args = _batch_commands()["retrain"].parse_args(["--logs", "logs"])
    assert options_from_args(args) == RetrainOptions(logs=Path("logs"))


def test_every_batch_error_is_a_batch_error() -> None:
    modules = [importlib.import_module(f"batch.{m.name}") for m in pkgutil.iter_modules(batch.__path__)]
    errors = [
        obj
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__.startswith("batch.")
    ]
    assert BatchError in errors and len(errors) > 1
    assert all(issubclass(e, BatchError) for e in errors), errors


def test_batch_raises_no_other_package_s_errors() -> None:
    # Batch's own failures are BatchErrors: not the models' errors, not the bare base.
    foreign = {"MusicboxError", "ModelError", "ModelInputError"}
    found = []
    for path in sorted(Path(batch.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
                if name in foreign:
                    found.append(f"{path.name}:{node.lineno} raises {name}")
    assert not found


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("features.parquet", b"not parquet at all"),  # pyarrow: no Parquet magic bytes
        ("features.csv", b"\xff\xfe\x00garbage\n\x00\x01"),  # pandas: not UTF-8 text
    ],
)
def test_an_unreadable_features_file_is_a_one_line_batch_error(
    tmp_path: Path, name: str, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["batch", "train-churn", "--features", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith(f"musicbox batch: error: {path} cannot be read as a feature table (")

"""`musicbox generate` from the command line: profiles, overrides, the summary, refusals."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

from musicbox.cli import main
from producers.generator.command import add_arguments, config_from_args


def _config(*argv: str) -> object:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("argv", "users", "days", "start"),
    [
        ((), 3_000, 44, date(2017, 3, 30)),  # the default profile: demo
        (("--profile", "study-sample"), 64_746, 44, date(2017, 3, 30)),  # the study's 11 % sample
        (("--profile", "full"), 600_000, 44, date(2017, 3, 30)),
        (
            ("--profile", "full", "--users", "10", "--days", "2", "--start", "2020-01-01"),
            10,
            2,
            date(2020, 1, 1),
        ),
    ],
)
def test_profiles_and_explicit_flags(argv: tuple[str, ...], users: int, days: int, start: date) -> None:
    config = _config(*argv)
    assert (config.users, config.days, config.start) == (users, days, start)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "dirt"),
    [
        (("--no-dirt",), set()),
        (("--dirt", "none"), set()),
        (("--dirt", "uid_zero,missing_shard"), {"uid_zero", "missing_shard"}),
    ],
)
def test_dirt_flags(argv: tuple[str, ...], dirt: set[str]) -> None:
    assert _config(*argv).dirt == dirt  # type: ignore[attr-defined]


def test_generate_writes_files_a_manifest_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "logs"
    code = main(
        [
            "generate",
            "--users",
            "150",
            "--days",
            "2",
            "--seed",
            "3",
            "--out",
            str(out),
            "--compression",
            "none",
        ]
    )
    assert code == 0
    assert len(list(out.glob("*.log"))) == 2 * 9
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arguments"]["users"] == 150 and manifest["arguments"]["seed"] == 3
    err = capsys.readouterr().err
    for figure in (
        "plays per user 25/50/75/99 %",
        "device rows",
        "song_id_unknown",
        "lines/s",
        "manifest.json",
    ):
        assert figure in err


def test_generate_refuses_to_mix_with_an_earlier_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--users", "50", "--days", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    (tmp_path / "notes.txt").write_text("mine")
    assert main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force", "--seed", "9"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"  # --force removes only log files
    assert json.loads((tmp_path / "manifest.json").read_text())["arguments"]["seed"] == 9


def test_a_bad_bot_share_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--users", "10", "--bot-share", "1.5", "--out", str(tmp_path)]) == 1
    assert "--bot-share" in capsys.readouterr().err

"""The demo's data sets: the cache key of the generated logs, when a folder counts as that data
set, the profiles."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from demo.datasets import DatasetSpec, cached, var_dir_name
from producers.generator.command import add_arguments, config_from_args

SPEC = DatasetSpec("demo", users=3000, days=44, seed=42, bot_share=0.01)


def _generator_manifest(spec: DatasetSpec, out: Path) -> dict[str, Any]:
    """The `arguments` the generator would write, from the very argv the demo passes it."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return {"arguments": config_from_args(parser.parse_args(spec.argv(out)[1:])).to_json()}


@pytest.mark.parametrize(
    "change",
    [
        {"profile": "study-sample"},  # the profile, though its size is overridden by the same users
        {"users": 3001},
        {"days": 43},
        {"seed": 43},
        {"bot_share": 0.0},
        {"dirt": "none"},
        {"compression": "tar.gz"},
    ],
)
def test_every_generator_argument_is_in_the_key(change: dict[str, Any]) -> None:
    other = dataclasses.replace(SPEC, **change)
    assert other.key() != SPEC.key()
    assert DatasetSpec("demo", 3000, 44, 42, 0.01).key() == SPEC.key()  # equal arguments, same folder


def test_the_key_names_what_varies_in_words() -> None:
    assert SPEC.key().startswith("3000u-44d-seed42-bots0.01-gz-")


def test_the_generators_own_manifest_of_the_demos_argv_matches_the_spec(tmp_path: Path) -> None:
    # A contract test: what the demo asks the generator for is what its manifest will say.
    for spec in (SPEC, DatasetSpec.for_profile("study-sample", None, 42)):
        assert spec.matches(_generator_manifest(spec, tmp_path))
        assert not dataclasses.replace(spec, seed=7).matches(_generator_manifest(spec, tmp_path))


def test_a_folder_is_the_cached_data_set_only_with_its_complete_manifest(tmp_path: Path) -> None:
    folder = tmp_path / SPEC.key()
    folder.mkdir()
    (folder / "20170330_1_play.log.gz").write_bytes(b"")  # an interrupted generation: no manifest
    assert not cached(folder, SPEC)
    (folder / "manifest.json").write_text("{ half written")
    assert not cached(folder, SPEC)
    (folder / "manifest.json").write_text(
        json.dumps(_generator_manifest(dataclasses.replace(SPEC, users=9), folder))
    )
    assert not cached(folder, SPEC)  # another data set's manifest
    (folder / "manifest.json").write_text(json.dumps(_generator_manifest(SPEC, folder)))
    assert cached(folder, SPEC)
    assert not cached(tmp_path / "absent", SPEC)


def test_profiles_give_the_size_the_bot_share_and_a_var_dir_of_their_own() -> None:
    study = DatasetSpec.for_profile("study-sample", None, 42)
    assert (study.users, study.days, study.bot_share) == (64_746, 44, 0.0)
    assert DatasetSpec.for_profile("demo", None, 42) == SPEC
    assert DatasetSpec.for_profile("study-sample", 12_000, 42).users == 12_000  # --users overrides
    assert (var_dir_name("demo"), var_dir_name("study-sample")) == ("demo", "demo-study-sample")

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from musicbox.settings import REPO_ROOT, Settings, settings_table


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICBOX_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    monkeypatch.setenv("MUSICBOX_PARTITIONS", "4")
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.kafka_host_port == ("127.0.0.1", 19092)
    assert s.partitions == 4


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises((TypeError, ValueError, dataclasses.FrozenInstanceError)):
        s.partitions = 3  # type: ignore[misc]


def test_shuffle_partitions_default_to_the_core_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 7)
    assert Settings().spark_shuffle_partitions == 7


def test_state_lives_under_var_by_default() -> None:
    s = Settings()
    assert s.var_dir == REPO_ROOT / "var"
    assert s.run_dir.is_relative_to(s.var_dir) and s.models_dir.is_relative_to(s.var_dir)


def test_readme_lists_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name, _, _ in settings_table() if f"`{name}`" not in readme]
    assert not missing, f"README's settings table lacks {missing}"


def test_settings_table_relative_paths() -> None:
    rows = {name: default for name, default, _ in settings_table()}
    assert rows["MUSICBOX_VAR_DIR"] == str(Path("var"))

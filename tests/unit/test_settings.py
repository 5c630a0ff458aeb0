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


@pytest.mark.parametrize(
    ("env", "bootstrap"),
    [
        # one broker: the bootstrap as given
        ({}, "127.0.0.1:9092"),
        # three local brokers: every node listed, 2 ports apart (each node's controller between)
        ({"MUSICBOX_KAFKA_BROKERS": "3"}, "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"),
        ({"MUSICBOX_KAFKA_BROKERS": "3", "MUSICBOX_KAFKA_BOOTSTRAP": "127.0.0.1:19092"},
         "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"),
        # a bootstrap that lists the nodes already is kept
        ({"MUSICBOX_KAFKA_BROKERS": "2", "MUSICBOX_KAFKA_BOOTSTRAP": "h1:9092,h2:9092"}, "h1:9092,h2:9092"),
    ],
)  # fmt: skip
def test_the_bootstrap_lists_every_local_broker(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], bootstrap: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().kafka_bootstrap == bootstrap


def test_spark_state_lives_under_the_shared_dir(tmp_path: Path) -> None:
    default = Settings(var_dir=tmp_path / "var")
    assert default.stream_dir == tmp_path / "var" / "stream"
    shared = Settings(var_dir=tmp_path / "var", shared_dir=tmp_path / "nfs")
    for path in (shared.stream_dir, shared.feature_log_dir, shared.cache_dir):
        assert path.is_relative_to(tmp_path / "nfs")
    assert shared.models_dir.is_relative_to(tmp_path / "var")  # the driver's own state stays
    # Executors resolve relative paths in their own working directories: always absolute.
    assert Settings(shared_dir=Path("rel")).stream_dir.is_absolute()

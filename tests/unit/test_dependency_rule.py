"""DESIGN section 2: who may import whom, and that our packages are the ones in this repo.

The floors, bottom up: `musicbox/` (shared contracts and the CLI); `models`, `producers`,
`infra`; `streaming` (the Spark side `streaming/aggregates` and the Faust side
`streaming/scoring`, apart); `batch`; the demo on top. A failure names each offending file and
what it imports.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from musicbox.settings import REPO_ROOT

PACKAGES = ("musicbox", "producers", "streaming", "batch", "models", "infra", "demo")
SERVICE_LIBRARIES = ("kafka", "aiokafka", "faust", "mode", "pyspark", "confluent_kafka")


def _imports(path: Path) -> list[str]:
    """Every module a file imports by absolute name, wherever the import statement is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _offenders(folders: list[str], forbidden: Callable[[str], bool]) -> list[str]:
    """'file imports module' for every import of a forbidden module in the files under `folders`."""
    return [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for folder in folders
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        for module in _imports(path)
        if forbidden(module)
    ]


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _report(offenders: list[str]) -> str:
    return "\n".join(offenders)


def test_the_spark_side_never_imports_the_faust_side() -> None:
    offenders = _offenders(["streaming/aggregates"], lambda m: _under(m, "streaming.scoring"))
    assert not offenders, _report(offenders)


def test_the_faust_side_never_imports_the_spark_side() -> None:
    offenders = _offenders(["streaming/scoring"], lambda m: _under(m, "streaming.aggregates"))
    assert not offenders, _report(offenders)


def test_musicbox_imports_no_other_package_of_ours() -> None:
    # The CLI reaches the commands by module name (importlib, when one runs), never by an import.
    others = [p for p in PACKAGES if p != "musicbox"]
    offenders = _offenders(["musicbox"], lambda m: any(_under(m, p) for p in others))
    assert not offenders, _report(offenders)


def test_nothing_imports_producers() -> None:
    folders = [p for p in PACKAGES if p != "producers"]
    offenders = _offenders(folders, lambda m: _under(m, "producers"))
    assert not offenders, _report(offenders)


def test_models_never_import_kafka_faust_or_spark() -> None:
    offenders = _offenders(["models"], lambda m: any(_under(m, lib) for lib in SERVICE_LIBRARIES))
    assert not offenders, _report(offenders)


def test_nothing_below_imports_the_demo() -> None:
    folders = [p for p in (*PACKAGES, "bench") if p != "demo"]
    offenders = _offenders(folders, lambda m: _under(m, "demo"))
    assert not offenders, _report(offenders)


def test_streaming_never_imports_batch() -> None:
    offenders = _offenders(["streaming"], lambda m: _under(m, "batch"))
    assert not offenders, _report(offenders)


def test_the_rules_see_an_offender(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks above pass on an empty result: prove the scan finds an import where there is one,
    # at module level or inside a function.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from batch.features import x\n")
    (tmp_path / "pkg" / "b.py").write_text("import producers.replay\n")
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    assert _offenders(["pkg"], lambda m: _under(m, "batch")) == ["pkg/a.py imports batch.features"]
    assert _offenders(["pkg"], lambda m: _under(m, "producers")) == ["pkg/b.py imports producers.replay"]
    assert _offenders(["pkg"], lambda m: _under(m, "batchy")) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_top_level_packages_resolve_inside_the_repo(package: str) -> None:
    # A PyPI package also installs a top-level `streaming`; ours must win.
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(REPO_ROOT)

"""DESIGN section 2: who may import whom, and that our packages are the ones in this repo."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from musicbox.settings import REPO_ROOT

PACKAGES = ("musicbox", "producers", "streaming", "batch", "models", "infra")
SERVICE_LIBRARIES = ("kafka", "aiokafka", "faust", "mode", "pyspark", "confluent_kafka")
# The CLI modules that may import the other packages, and only inside functions.
LAZY_IMPORTERS = {"musicbox/cli.py", "musicbox/demo.py"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top_level))
    return found


def _files(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def _root(module: str) -> str:
    return module.split(".")[0]


def test_models_never_import_kafka_faust_or_spark() -> None:
    offenders = [
        f"{p.relative_to(REPO_ROOT)} imports {m}"
        for p in _files("models")
        for m, _ in _imports(p)
        if _root(m) in SERVICE_LIBRARIES
    ]
    assert not offenders


def test_nothing_imports_producers() -> None:
    offenders = [
        f"{p.relative_to(REPO_ROOT)} imports {m}"
        for pkg in PACKAGES
        if pkg != "producers"
        for p in _files(pkg)
        for m, _ in _imports(p)
        if _root(m) == "producers" and str(p.relative_to(REPO_ROOT)) not in LAZY_IMPORTERS
    ]
    assert not offenders


def test_musicbox_imports_the_others_only_lazily_in_the_cli() -> None:
    others = set(PACKAGES) - {"musicbox"}
    offenders = []
    for p in _files("musicbox"):
        rel = str(p.relative_to(REPO_ROOT))
        for module, top_level in _imports(p):
            if _root(module) in others and (top_level or rel not in LAZY_IMPORTERS):
                offenders.append(f"{rel} imports {module}")
    assert not offenders


@pytest.mark.parametrize("package", PACKAGES)
def test_top_level_packages_resolve_inside_the_repo(package: str) -> None:
    # A PyPI package also installs a top-level `streaming`; ours must win.
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(REPO_ROOT)

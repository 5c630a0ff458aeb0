"""Test tiers come from the folder: tests/unit, tests/component, tests/integration, tests/clusters."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "component", "integration", "clusters")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))

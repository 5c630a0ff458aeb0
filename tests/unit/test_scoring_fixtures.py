"""The scoring inputs (tests/fixtures/scoring.py) are what the scoring tests assume."""

from __future__ import annotations

from pathlib import Path

from models.registry import load_churn
from tests.fixtures.scoring import feature_row, save_churn_model


def test_saved_churn_model_loads_with_its_threshold(tmp_path: Path) -> None:
    # The worker serves what these helpers save: the registry must accept it as is.
    version = save_churn_model(tmp_path, threshold=0.4)
    loaded = load_churn(tmp_path)
    assert loaded.metadata.version == version and loaded.model.threshold == 0.4


def test_feature_row_activity_follows_the_flag() -> None:
    # Live quality reads activity from the 1-day counts: an inactive row must have none.
    idle = feature_row(7, "2017-04-02", active=False)
    busy = feature_row(7, "2017-04-02", active=True)
    assert idle["plays_1d"] + idle["downloads_1d"] + idle["searches_1d"] == 0
    assert busy["plays_1d"] > 0

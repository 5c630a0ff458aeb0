"""The synthetic model inputs (tests/fixtures/synthetic.py) hold what the model tests assume."""

from __future__ import annotations

from musicbox.features import LABEL
from tests.fixtures.synthetic import churn_table


def test_churn_table_label_follows_recency() -> None:
    # The churn tests rely on this: long-silent users churn far more often than recent ones.
    table = churn_table()
    recent = table.loc[table["days_since_play"] <= 3, LABEL].mean()
    silent = table.loc[table["days_since_play"] >= 14, LABEL].mean()
    assert silent > recent + 0.3


def test_churn_table_windows_nest() -> None:
    # A 30-day count is never below the 7-day count of the same user: the table is plausible.
    table = churn_table()
    assert (table["plays_30d"] >= table["plays_7d"]).all()
    assert (table["downloads_14d"] >= table["downloads_1d"]).all()

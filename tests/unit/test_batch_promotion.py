"""The promotion decision and its record: what is compared, what wins, what the reason says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batch.promotion import ServedScore, decide, summary_row

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at_noon() -> datetime:
    return NOW


# (new value, served score, mode, promoted?, words the reason must hold)
CASES = [
    # nothing served yet: the first model is always served
    (0.70, None, "auto", True, "nothing comparable is served"),
    # better than the served model on the same test data
    (0.85, ServedScore("v1", 0.80, 0.90), "auto", True, "vs served 0.8000"),
    # a hair worse, within the tolerance: fresher data wins
    (0.797, ServedScore("v1", 0.80, 0.80), "auto", True, "tolerance 0.005"),
    # worse beyond the tolerance: refused, whatever the served model once recorded (0.70)
    (0.75, ServedScore("v1", 0.80, 0.70), "auto", False, "worse than served 0.8000"),
    # the served model cannot be loaded here (e.g. other library versions): replace it
    (0.60, ServedScore("v1", None, None, "saved under scikit-learn 1.5"), "auto", True, "cannot be scored"),
    # forced either way, with the comparison kept in the reason
    (0.10, ServedScore("v1", 0.80, 0.80), "always", True, "--promote always"),
    (0.99, ServedScore("v1", 0.80, 0.80), "never", False, "--promote never"),
    # an undefined metric is never promoted automatically
    (float("nan"), ServedScore("v1", 0.80, 0.80), "auto", False, "undefined"),
]


@pytest.mark.parametrize(("new", "served", "mode", "promoted", "words"), CASES)
def test_decision(new: float, served: ServedScore | None, mode: str, promoted: bool, words: str) -> None:
    d = decide("churn", "roc_auc", new, served, mode=mode, test_data="snapshot 2017-04-28", now=at_noon)
    assert d.promote is promoted
    assert words in d.reason
    assert d.served_version == (served.version if served else None)
    assert d.decided_at == NOW.isoformat()


def test_the_record_says_which_test_data_both_were_scored_on() -> None:
    d = decide(
        "als", "ndcg", 0.3, ServedScore("v1", 0.2, 0.25), test_data="test window 05-06..05-12", now=at_noon
    )
    record = d.to_dict()
    assert record["served_value"] == 0.2 and record["served_recorded"] == 0.25
    assert "both on test window 05-06..05-12" in record["reason"]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        decide("churn", "roc_auc", 0.8, None, mode="sometimes")


def test_summary_row_shows_both_scores_and_the_verdict() -> None:
    d = decide("churn", "roc_auc", 0.75, ServedScore("v1", 0.8, 0.8), now=at_noon)
    row = summary_row(d, "v2")
    assert row[:5] == ("churn", "v2", "roc_auc 0.7500", "v1: 0.8000", "kept the served one")
    first = summary_row(decide("churn", "roc_auc", 0.75, None, now=at_noon), "v1")
    assert first[3] == "(none): -" and first[4] == "promoted"

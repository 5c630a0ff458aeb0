"""The pure scoring service: batch scores, bots counted not scored, idempotent messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.registry import LoadedChurn, load_churn
from streaming.scoring.errors import NoModelError
from streaming.scoring.feature_rows import feature_frame
from streaming.scoring.reload import Served
from streaming.scoring.service import ScoringService
from tests.fixtures.scoring import encoded, feature_row, save_churn_model

SCORE_FIELDS = {"uid", "as_of", "churn_probability", "churn", "threshold", "model_version", "scored_at_ms"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served[LoadedChurn]:
    root: Path = tmp_path_factory.mktemp("models")
    version = save_churn_model(root, threshold=0.45)
    return Served(load_churn(root), version)


def service(served: Served[LoadedChurn] | None, now_ms: int = 1_700_000_000_000) -> ScoringService:
    return ScoringService(lambda: served, clock_ms=lambda: now_ms)


def rows(*specs: tuple[int, bool]) -> list[bytes]:
    return [encoded(feature_row(uid, "2017-04-20", bot=bot, active=uid % 2 == 0)) for uid, bot in specs]


def test_scores_every_non_bot_row_and_counts_bots(served: Served[LoadedChurn]) -> None:
    frame, _ = feature_frame(rows((1, False), (2, True), (3, False), (4, True), (5, False)))
    scored = service(served).score(frame)
    assert scored.scores["uid"].tolist() == [1, 3, 5]
    assert scored.bots == 2
    assert scored.model_version == served.version


def test_batch_scores_equal_the_model_on_each_row(served: Served[LoadedChurn]) -> None:
    # Batching is an optimisation only: every row's probability is the model's for that row.
    frame, _ = feature_frame(rows(*[(uid, False) for uid in range(1, 41)]))
    scored = service(served).score(frame)
    one_by_one = [served.model.model.predict_proba(frame.iloc[[i]])[0] for i in range(len(frame))]
    np.testing.assert_allclose(scored.scores["churn_probability"], one_by_one, rtol=1e-12)


def test_score_messages_carry_the_contract_fields(served: Served[LoadedChurn]) -> None:
    frame, _ = feature_frame(rows((7, False), (8, False)))
    messages = service(served, now_ms=123).score(frame).messages()
    assert [key for key, _ in messages] == [b"7", b"8"]  # keyed by uid, like every uid topic
    for key, raw in messages:
        value = json.loads(raw)
        assert set(value) == SCORE_FIELDS
        assert value["uid"] == int(key) and value["as_of"] == "2017-04-20"
        assert value["churn"] == (value["churn_probability"] >= 0.45) and value["threshold"] == 0.45
        assert value["model_version"] == served.version and value["scored_at_ms"] == 123


def test_scoring_the_same_rows_again_gives_the_same_identity_and_probability(
    served: Served[LoadedChurn],
) -> None:
    # A re-read batch (restart) must produce duplicates, not different answers: idempotent by
    # (uid, as_of, model_version), and the same probability for that identity.
    frame, _ = feature_frame(rows((1, False), (2, False), (3, True)))
    first = [json.loads(v) for _, v in service(served, now_ms=1).score(frame).messages()]
    again = [json.loads(v) for _, v in service(served, now_ms=2).score(frame).messages()]
    for a, b in zip(first, again, strict=True):
        assert {k: v for k, v in a.items() if k != "scored_at_ms"} == {
            k: v for k, v in b.items() if k != "scored_at_ms"
        }


def test_activity_on_the_day_is_reported_for_live_quality(served: Served[LoadedChurn]) -> None:
    # Bots are not scored, but their activity still counts as activity (labels of nobody else).
    frame, _ = feature_frame(rows((1, False), (2, False), (4, True)))
    scored = service(served).score(frame)
    assert scored.active["uid"].tolist() == [2, 4]


def test_an_empty_batch_scores_nothing(served: Served[LoadedChurn]) -> None:
    frame, _ = feature_frame([])
    scored = service(served).score(frame)
    assert scored.messages() == [] and scored.bots == 0


def test_without_a_model_scoring_refuses_with_what_to_do() -> None:
    frame, _ = feature_frame(rows((1, False)))
    with pytest.raises(NoModelError, match="train-churn"):
        service(None).score(frame)

"""The churn scoring service: a batch of feature rows in, churn scores out. Pure (no Kafka, no Faust).

One model serves a whole batch (read once from the reloader), so a hot reload falls between
batches. Bots are counted, never scored. Scores are idempotent by (uid, as_of, model_version):
the same row scored twice by the same model gives the same message but for `scored_at_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.registry import LoadedChurn
from musicbox.features import AS_OF, COMPUTED_AT_MS, IS_BOT, UID
from streaming.scoring.errors import NoModelError
from streaming.scoring.messages import POSITION, key_of, score_messages
from streaming.scoring.reload import Served

# A user is active on day D when its feature row of D counts an event of that day.
ACTIVITY_1D = ("plays_1d", "downloads_1d", "searches_1d")
PROBABILITY = "churn_probability"


@dataclass(frozen=True)
class ScoredBatch:
    scores: pd.DataFrame  # uid, as_of, churn_probability, computed_at_ms, POSITION: the scored rows
    active: pd.DataFrame  # uid, as_of, POSITION: rows (bots too) with an event on their as-of day
    bots: int
    model_version: str
    threshold: float
    scored_at_ms: int
    predict_s: float  # wall time of predict_proba

    def messages(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of each score, in row order, for `musicbox.churn-scores`."""
        uids = self.scores[UID].tolist()
        values = score_messages(
            uids,
            self.scores[AS_OF].tolist(),
            self.scores[PROBABILITY].tolist(),
            self.threshold,
            self.model_version,
            self.scored_at_ms,
        )
        return [(key_of(uid), value) for uid, value in zip(uids, values, strict=True)]


class ScoringService:
    def __init__(
        self,
        churn: Callable[[], Served[LoadedChurn] | None],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        perf_s: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._churn = churn
        self._clock_ms = clock_ms
        self._perf_s = perf_s

    def score(self, rows: pd.DataFrame) -> ScoredBatch:
        """Scores of the non-bot rows of a valid feature frame (see feature_rows.feature_frame)."""
        served = self._churn()
        if served is None:
            raise NoModelError("no churn model is served: promote one (`musicbox batch train-churn`)")
        model = served.model.model
        is_bot = rows[IS_BOT].to_numpy(dtype=bool)
        scorable = ~is_bot & model.scorable(rows) if len(rows) else np.zeros(0, dtype=bool)
        chosen = rows.loc[scorable]
        started = self._perf_s()
        probability = model.predict_proba(chosen) if len(chosen) else np.empty(0)
        predict_s = self._perf_s() - started
        scores = pd.DataFrame(
            {
                UID: chosen[UID].to_numpy(),
                AS_OF: chosen[AS_OF].to_numpy(),
                PROBABILITY: probability,
                COMPUTED_AT_MS: chosen[COMPUTED_AT_MS].to_numpy(),
                POSITION: chosen[POSITION].to_numpy(),
            }
        )
        activity = rows[list(ACTIVITY_1D)].to_numpy().sum(axis=1) if len(rows) else np.zeros(0)
        active = rows.loc[activity > 0, [UID, AS_OF, POSITION]].reset_index(drop=True)
        return ScoredBatch(
            scores=scores,
            active=active,
            bots=int(is_bot.sum()),
            model_version=served.version,
            threshold=float(model.threshold),
            scored_at_ms=self._clock_ms(),
            predict_s=predict_s,
        )

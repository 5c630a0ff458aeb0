"""The churn side of the worker: a batch of feature-row messages -> scores, dead letters, live quality.

Order within a batch, for at-least-once without loss: publish the scores (and dead letters)
and wait for Kafka's acknowledgement, then record the pending scores, then publish any quality
report that became due and only then forget its state. The caller acknowledges the input
batch after `handle` returns; a crash anywhere before re-reads the batch and repeats it, which
the outputs' identity fields make harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from musicbox.features import AS_OF, COMPUTED_AT_MS, UID
from musicbox.topics import Topics
from streaming.scoring.feature_rows import feature_frame
from streaming.scoring.messages import POSITION, Incoming, Reject, dead_letter, encode
from streaming.scoring.metrics import WorkerMetrics, observe_many
from streaming.scoring.quality import LiveQuality, QualityReport
from streaming.scoring.service import PROBABILITY, ScoringService
from streaming.scoring.sink import Sink


class Prepared(NamedTuple):
    rows: pd.DataFrame
    rejects: list[Reject]
    decode_s: float


@dataclass
class FeatureCounts:
    """What the churn side did, for the end-of-run summary."""

    rows: int = 0
    scored: int = 0
    bots: int = 0
    batches: int = 0
    handle_s: float = 0.0  # wall time inside `handle`: the worker's own share of the cost
    rejected: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)  # scores per model version
    reports: list[QualityReport] = field(default_factory=list)


class FeatureFlow:
    def __init__(
        self,
        service: ScoringService,
        quality: LiveQuality,
        sink: Sink,
        topics: Topics,
        metrics: WorkerMetrics | None = None,
        perf_s: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.service = service
        self.quality = quality
        self.sink = sink
        self.topics = topics
        self.metrics = metrics
        self.perf_s = perf_s
        self.counts = FeatureCounts()

    def prepare(self, batch: Sequence[Incoming]) -> Prepared:
        """Decode and validate a batch: pure CPU work, which the reader does for the next batch
        while this one's model runs."""
        started = self.perf_s()
        rows, rejects = feature_frame([m.value for m in batch])
        return Prepared(rows, rejects, self.perf_s() - started)

    async def handle(self, batch: Sequence[Incoming], prepared: Prepared | None = None) -> None:
        prepared = prepared or self.prepare(batch)
        started = self.perf_s() - prepared.decode_s  # the batch's time includes its decoding
        rows, rejects = prepared.rows, prepared.rejects
        # The model runs in a thread: scikit-learn's predictors release the GIL, so the event loop
        # (the next batch's decoding, Kafka I/O, the recommendation side) goes on beside it.
        scored = await asyncio.to_thread(self.service.score, rows)
        await self.sink.publish(self.topics.churn_scores, scored.messages())
        if rejects:
            letters = [
                (None, dead_letter(r.reason, batch[r.position].value, batch[r.position].source))
                for r in rejects
            ]
            await self.sink.publish(self.topics.dead_letters, letters)
        self._remember(batch, rows, scored.scores, scored.active, scored.model_version, scored.threshold)
        resolution = self.quality.resolve()
        if resolution.reports:
            await self.sink.publish(
                self.topics.model_quality,
                [(r.model_version.encode(), encode(r.value())) for r in resolution.reports],
            )
        self.quality.forget(resolution)

        c = self.counts
        c.rows += len(batch) - len(rejects)
        c.scored += len(scored.scores)
        c.bots += scored.bots
        c.batches += 1
        c.handle_s += self.perf_s() - started
        c.rejected.update(r.reason for r in rejects)
        c.versions[scored.model_version] += len(scored.scores)
        c.reports += resolution.reports
        if self.metrics is not None:
            m = self.metrics
            m.feature_rows.inc(len(batch) - len(rejects))
            m.bot_rows.inc(scored.bots)
            m.scores.inc(len(scored.scores))
            for r in rejects:
                m.rejected.labels("features", r.reason).inc()
            m.batch_rows.observe(len(batch))
            m.batch_seconds.observe(self.perf_s() - started)
            computed = scored.scores[COMPUTED_AT_MS].to_numpy(dtype=np.float64)
            observe_many(m.score_latency, (scored.scored_at_ms - computed[np.isfinite(computed)]) / 1000)
            for report in resolution.reports:
                m.quality(report)
            m.last_input.set_to_current_time()

    def _remember(
        self,
        batch: Sequence[Incoming],
        rows: pd.DataFrame,
        scores: pd.DataFrame,
        active: pd.DataFrame,
        version: str,
        threshold: float,
    ) -> None:
        """Pending scores, active users and write marks, per partition, for the live quality."""
        partition = np.array([m.partition for m in batch], dtype=np.int64)
        offset = np.array([m.offset for m in batch], dtype=np.int64)

        def located(frame: pd.DataFrame) -> pd.DataFrame:
            pos = frame[POSITION].to_numpy(dtype=np.int64)
            return frame.assign(_partition=partition[pos], _offset=offset[pos])

        for (p, as_of), group in located(scores).groupby(["_partition", AS_OF], sort=True):
            self.quality.record_scores(
                int(p), int(group["_offset"].min()), str(as_of), version, threshold,
                group[UID].tolist(), group[PROBABILITY].tolist(),
            )  # fmt: skip
        for (p, day), group in located(active).groupby(["_partition", AS_OF], sort=True):
            self.quality.record_active(int(p), int(group["_offset"].min()), str(day), group[UID].tolist())
        stamped = located(rows.loc[np.isfinite(rows[COMPUTED_AT_MS].to_numpy(dtype=np.float64))])
        # Only the first row of each (partition, computed_at_ms, as_of) in offset order can move
        # the marks (see LiveQuality.observe_writes): the rest repeat it.
        firsts = stamped.sort_values("_offset").drop_duplicates(["_partition", COMPUTED_AT_MS, AS_OF])
        for p, group in firsts.groupby("_partition", sort=True):
            marks = list(
                zip(group[COMPUTED_AT_MS].astype(np.int64).tolist(), group[AS_OF].tolist(), strict=True)
            )
            self.quality.observe_writes(int(p), marks)

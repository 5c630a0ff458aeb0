"""The churn side of the worker: a batch of feature-row messages -> scores, dead letters, live quality.

Order within a batch, for at-least-once without loss: publish the scores (and dead letters)
and wait for Kafka's acknowledgement, then record the pending scores, then publish any quality
report that became due and only then forget its state. The caller acknowledges the input
batch after `handle` returns; a crash anywhere before re-reads the batch and repeats it, which
the outputs' identity fields make harmless.

Two threads beside the event loop, each taking one batch after the other: one decodes (Arrow's
reader releases the GIL, see feature_rows), one runs the model (so do scikit-learn's
predictors). `prepare` hands a batch to both as soon as it is read, so batch N+1 is decoded
and scored while the event loop publishes batch N.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from musicbox.features import AS_OF, COMPUTED_AT_MS, IS_BOT, UID
from musicbox.markers import as_marker, score_day_marker
from musicbox.topics import Topics
from streaming.scoring.day_tally import DayTally
from streaming.scoring.feature_rows import feature_frame
from streaming.scoring.messages import POSITION, Incoming, Reject, dead_letter, encode
from streaming.scoring.metrics import WorkerMetrics, observe_many
from streaming.scoring.quality import LiveQuality, QualityReport
from streaming.scoring.service import PROBABILITY, ScoredBatch, ScoringService
from streaming.scoring.sink import Placed, Sink


class Decoded(NamedTuple):
    rows: pd.DataFrame
    rejects: list[Reject]
    decode_s: float


class Prepared(NamedTuple):
    """A batch on its way through the decoding and model threads: its feature rows (`batch`,
    the messages whose positions the frames refer to) and, aside, its day-complete markers."""

    batch: list[Incoming]
    markers: list[tuple[int, dict[str, Any]]]  # (feature partition, marker)
    values: list[bytes | None]
    decoded: Future[Decoded]
    scored: Future[ScoredBatch]


@dataclass
class FeatureCounts:
    """What the churn side did, for the end-of-run summary."""

    rows: int = 0
    scored: int = 0
    bots: int = 0
    batches: int = 0
    handle_s: float = 0.0  # wall time inside `handle`: the worker's own share of the cost
    markers: int = 0  # day-complete markers passed on to the scores topic
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
        tally: DayTally | None = None,
    ) -> None:
        self.service = service
        self.quality = quality
        self.tally = tally or DayTally(quality.store)
        self.sink = sink
        self.topics = topics
        self.metrics = metrics
        self.perf_s = perf_s
        self.counts = FeatureCounts()
        self._decoding: ThreadPoolExecutor | None = None
        self._scoring: ThreadPoolExecutor | None = None

    def _decode(self, values: list[bytes | None]) -> Decoded:
        started = self.perf_s()
        rows, rejects = feature_frame(values)
        return Decoded(rows, rejects, self.perf_s() - started)

    def _score(self, decoded: Future[Decoded]) -> ScoredBatch:
        return self.service.score(decoded.result().rows)

    def prepare(self, batch: Sequence[Incoming]) -> Prepared:
        """Start decoding and scoring a batch on the flow's threads; returns at once."""
        if self._decoding is None or self._scoring is None:
            self._decoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="features-decode")
            self._scoring = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-model")
        rows: list[Incoming] = []
        markers: list[tuple[int, dict[str, Any]]] = []
        for m in batch:
            marker = as_marker(m.value)
            if marker is None:
                rows.append(m)
            else:
                markers.append((m.partition, marker))
        values = [m.value for m in rows]
        decoded = self._decoding.submit(self._decode, values)
        return Prepared(rows, markers, values, decoded, self._scoring.submit(self._score, decoded))

    async def _results(self, prepared: Prepared) -> tuple[Decoded, ScoredBatch]:
        """What the threads made of the batch; made again when they failed (the batch's retry:
        say no model was served yet)."""
        for job in (prepared.decoded, prepared.scored):
            if job.done() and job.exception() is not None:
                decoded = await asyncio.to_thread(self._decode, prepared.values)
                return decoded, await asyncio.to_thread(self.service.score, decoded.rows)
        return await asyncio.wrap_future(prepared.decoded), await asyncio.wrap_future(prepared.scored)

    async def handle(self, batch: Sequence[Incoming], prepared: Prepared | None = None) -> None:
        entered = self.perf_s()
        prepared = prepared or self.prepare(batch)
        batch = prepared.batch  # the feature rows; the markers go their own way below
        decoded, scored = await self._results(prepared)
        started = entered - decoded.decode_s  # the batch's time: decoding, the model's rest, the rest
        rows, rejects = decoded.rows, decoded.rejects
        await self.sink.publish(self.topics.churn_scores, scored.messages())
        self._tally(batch, rows, scored.scores)
        if prepared.markers:
            # After the day's scores are acknowledged: each marker follows its day's scores.
            await self.sink.publish_at(self.topics.churn_scores, self._markers(prepared.markers, scored))
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
        c.markers += len(prepared.markers)
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

    def _tally(self, batch: Sequence[Incoming], rows: pd.DataFrame, scores: pd.DataFrame) -> None:
        """Count the batch's rows per (partition, as_of): scored, bots (DayTally)."""
        if rows.empty:
            return
        pos = rows[POSITION].to_numpy(dtype=np.int64)
        partition = np.array([batch[i].partition for i in pos], dtype=np.int64)
        offset = np.array([batch[i].offset for i in pos], dtype=np.int64)
        scored = np.isin(pos, scores[POSITION].to_numpy(dtype=np.int64))
        bot = rows[IS_BOT].to_numpy(dtype=bool)
        as_of = rows[AS_OF].to_numpy()
        for p in np.unique(partition):
            for day in np.unique(as_of[partition == p]):
                here = (partition == p) & (as_of == day)
                self.tally.count(int(p), str(day), offset[here], scored[here], bot[here])

    def _markers(self, markers: Sequence[tuple[int, dict[str, Any]]], scored: ScoredBatch) -> list[Placed]:
        """The scores topic's day-complete marker for each feature marker, on the same partition."""
        out: list[Placed] = []
        for partition, marker in markers:
            n, bots = self.tally.complete(partition, str(marker["as_of"]))
            value = score_day_marker(
                str(marker["as_of"]),
                partition,
                int(marker.get("partitions", 0)),
                n,
                bots,
                scored.model_version,
            )
            out.append((partition, None, encode(value)))
        return out

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

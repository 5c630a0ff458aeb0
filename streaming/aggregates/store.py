"""The streaming job's own state, safe against a kill -9 at any moment.

Spark re-runs a micro-batch whose offsets it had not committed, with the same batch id and the
same data. So everything here is keyed by batch id and written before Spark commits:
- bucket deltas: `buckets/batch=<id>/` holds the daily buckets of that batch's events (a re-run
  overwrites it); a compaction folds everything up to a batch into `buckets/compact=<id>/`;
- progress: `progress/<id>.json` (day-close state, compaction point); a batch starts from the
  latest progress of an EARLIER batch, so a re-run redoes exactly what the crashed run did.
Buckets are additive (the features sum them), so deltas never need merging to be correct.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

from musicbox.features import COUNTED, UID
from streaming.aggregates.buckets import BUCKET_DEVICE, DAY, PLAY_SECONDS
from streaming.aggregates.day_close import CloseState

BUCKET_SCHEMA = StructType(
    [
        StructField(UID, LongType()),
        StructField(DAY, DateType()),
        StructField(BUCKET_DEVICE, StringType()),
        *[StructField(name, LongType()) for name in (*COUNTED, PLAY_SECONDS)],
    ]
)
_BATCH_DIR = re.compile(r"^batch=(\d+)$")


@dataclass(frozen=True)
class Progress:
    """The job's state after a batch: the day-close state and where the buckets are."""

    batch_id: int = -1
    close: CloseState = field(default_factory=CloseState)
    compacted_through: int = -1  # batch deltas up to this id live in compact=<id>
    late_events: int = 0
    dead_letters: int = 0
    feature_rows: int = 0

    def to_json(self) -> str:
        c = self.close
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "closed_through": c.closed_through.isoformat() if c.closed_through else None,
                "first_day": c.first_day.isoformat() if c.first_day else None,
                "tick_ms": dict(c.tick_ms),
                "max_time_ms": dict(c.max_time_ms),
                "compacted_through": self.compacted_through,
                "late_events": self.late_events,
                "dead_letters": self.dead_letters,
                "feature_rows": self.feature_rows,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Progress:
        d = json.loads(text)
        close = CloseState(
            closed_through=date.fromisoformat(d["closed_through"]) if d["closed_through"] else None,
            first_day=date.fromisoformat(d["first_day"]) if d["first_day"] else None,
            tick_ms=d["tick_ms"],
            max_time_ms=d["max_time_ms"],
        )
        return cls(
            batch_id=d["batch_id"],
            close=close,
            compacted_through=d["compacted_through"],
            late_events=d["late_events"],
            dead_letters=d["dead_letters"],
            feature_rows=d["feature_rows"],
        )


class StateStore:
    def __init__(self, root: Path, keep_progress: int = 5) -> None:
        self.root = root
        self.buckets_dir = root / "buckets"
        self.progress_dir = root / "progress"
        self.keep_progress = keep_progress

    def progress_before(self, batch_id: int) -> Progress:
        """The state left by the latest batch before `batch_id` (a fresh state if none)."""
        ids = [i for i in self._progress_ids() if i < batch_id]
        if not ids:
            return Progress()
        return Progress.from_json((self.progress_dir / f"{max(ids)}.json").read_text())

    def save_progress(self, progress: Progress) -> None:
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        path = self.progress_dir / f"{progress.batch_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(progress.to_json())
        os.replace(tmp, path)
        for old in sorted(self._progress_ids())[: -self.keep_progress]:
            (self.progress_dir / f"{old}.json").unlink(missing_ok=True)

    def write_delta(self, buckets: DataFrame, batch_id: int) -> None:
        buckets.write.mode("overwrite").parquet(str(self.buckets_dir / f"batch={batch_id}"))

    def read(self, spark: SparkSession, progress: Progress, batch_id: int) -> DataFrame:
        """All buckets as of the end of `batch_id`: the compaction plus later deltas."""
        paths = []
        if progress.compacted_through >= 0:
            paths.append(self.buckets_dir / f"compact={progress.compacted_through}")
        paths += [
            self.buckets_dir / f"batch={i}"
            for i in self._delta_ids()
            if progress.compacted_through < i <= batch_id
        ]
        paths = [p for p in paths if p.is_dir()]
        if not paths:
            return spark.createDataFrame([], BUCKET_SCHEMA)
        return spark.read.schema(BUCKET_SCHEMA).parquet(*[str(p) for p in paths])

    def compact(self, spark: SparkSession, progress: Progress, batch_id: int, keep_from: date) -> int:
        """Fold every bucket up to `batch_id` into one folder, dropping days before `keep_from`
        (users inactive for 30 days leave the state). Returns the compaction's batch id; the
        caller commits it in the progress file, then `collect_garbage` removes what it replaced."""
        buckets = self.read(spark, progress, batch_id).filter(F.col(DAY) >= F.lit(keep_from))
        folded = buckets.groupBy(UID, DAY, BUCKET_DEVICE).agg(
            *[F.sum(name).cast("long").alias(name) for name in (*COUNTED, PLAY_SECONDS)]
        )
        folded.write.mode("overwrite").parquet(str(self.buckets_dir / f"compact={batch_id}"))
        return batch_id

    def collect_garbage(self, progress: Progress, previous: Progress) -> None:
        """Remove what neither this batch's state nor its predecessor's reads.

        The predecessor's files must survive: if Spark re-runs this batch (it had not committed
        its offsets), the re-run starts again from the predecessor's progress."""
        if not self.buckets_dir.is_dir():
            return
        keep = {f"compact={progress.compacted_through}", f"compact={previous.compacted_through}"}
        for child in self.buckets_dir.iterdir():
            name = child.name
            delta = _BATCH_DIR.match(name)
            old_delta = delta is not None and int(delta.group(1)) <= previous.compacted_through
            old_compact = name.startswith("compact=") and name not in keep
            if old_delta or old_compact:
                shutil.rmtree(child, ignore_errors=True)

    def _progress_ids(self) -> list[int]:
        if not self.progress_dir.is_dir():
            return []
        return [int(p.stem) for p in self.progress_dir.glob("*.json")]

    def _delta_ids(self) -> list[int]:
        if not self.buckets_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.buckets_dir.iterdir() if (m := _BATCH_DIR.match(p.name)))

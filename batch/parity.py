"""The parity check: streaming feature rows against batch feature rows, row by row, every column.

DESIGN 5's invariant: for the same logs, the streaming row for (uid, D) equals the batch row for
(uid, D) exactly. A row is `matched` when every feature is equal (null-safe), `differing` when
the key is on both sides but a feature differs, `missing` when only batch has it, `extra` when
only streaming has it; `duplicate` counts streaming keys present more than once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window, WindowSpec

from musicbox.features import AS_OF, FEATURE_NAMES, UID

KEY = (UID, AS_OF)
EXAMPLES = 3


@dataclass
class DayParity:
    as_of: date
    matched: int = 0
    differing: int = 0
    missing: int = 0
    extra: int = 0
    duplicate: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.differing or self.missing or self.extra or self.duplicate)


def compare(stream: DataFrame, batch: DataFrame, days: list[date]) -> list[DayParity]:
    """Per as-of day: how the streaming rows compare with the batch rows."""
    s = stream.select(*KEY, *[F.col(c).alias(f"s_{c}") for c in FEATURE_NAMES]).withColumn("_s", F.lit(True))
    b = batch.select(*KEY, *[F.col(c).alias(f"b_{c}") for c in FEATURE_NAMES]).withColumn("_b", F.lit(True))
    dup_counts = {
        r[AS_OF]: r["n"]
        for r in stream.groupBy(*KEY)
        .count()
        .filter(F.col("count") > 1)
        .groupBy(AS_OF)
        .agg(F.sum(F.col("count") - 1).alias("n"))
        .collect()
    }
    joined = s.dropDuplicates(list(KEY)).join(b, list(KEY), "full_outer")
    equal = F.lit(True)
    diff_cols = []
    for c in FEATURE_NAMES:
        same = F.col(f"s_{c}").eqNullSafe(F.col(f"b_{c}"))
        equal = equal & same
        diff_cols.append(F.when(~same, F.lit(c)))
    status = (
        F.when(F.col("_s").isNull(), F.lit("missing"))
        .when(F.col("_b").isNull(), F.lit("extra"))
        .when(equal, F.lit("matched"))
        .otherwise(F.lit("differing"))
    )
    classified = joined.withColumn("status", status).withColumn("diff", F.concat_ws(",", *diff_cols)).cache()
    try:
        counts = classified.groupBy(AS_OF, "status").count().collect()
        examples = (
            classified.filter(F.col("status") != "matched")
            .withColumn("rn", F.row_number().over(_per_day_status()))
            .filter(F.col("rn") <= EXAMPLES)
            .collect()
        )
    finally:
        classified.unpersist()
    result = {d: DayParity(d) for d in days}
    for r in counts:
        day = result.setdefault(r[AS_OF], DayParity(r[AS_OF]))
        setattr(day, r["status"], r["count"])
    for day, n in dup_counts.items():
        result.setdefault(day, DayParity(day)).duplicate = n
    for r in examples:
        result[r[AS_OF]].examples.append(_describe(r.asDict()))
    return [result[d] for d in sorted(result)]


def _per_day_status() -> WindowSpec:
    return Window.partitionBy(AS_OF, "status").orderBy(UID)


def _describe(row: dict[str, object]) -> str:
    status = row["status"]
    head = f"{status} uid={row[UID]} as_of={row[AS_OF]}"
    if status != "differing":
        return head
    parts = [
        f"{c}: stream={row[f's_{c}']!r} batch={row[f'b_{c}']!r}" for c in str(row["diff"]).split(",") if c
    ]
    return f"{head}: " + "; ".join(parts)

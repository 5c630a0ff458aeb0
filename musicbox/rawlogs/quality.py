"""Data-quality report per day and type: shards present, rows, dead letters, and warnings.

Collection artefacts of the real logs (SEED_FACTS 1) look exactly like changes in user
activity, so they are called out: a missing day, a missing shard, a truncated shard, a
near-copy of another day's file, and a damaged file the reader could only partly read. A pure
function over the fingerprints the reader collected while reading.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations, pairwise

from musicbox.rawlogs.names import TYPE_ORDER
from musicbox.rawlogs.parse import DAMAGED_FILE  # the warning kind is the dead letter's reason

MISSING_DAY = "missing_day"
MISSING_SHARD = "missing_shard"
TRUNCATED_SHARD = "truncated_shard"
NEAR_COPY = "near_copy"
ALL_TYPES = "all"  # the file_type of a warning about every type of a day (a missing day)

TRUNCATED_BELOW = 0.30  # rows under this share of the median of that type/shard over days
# ... judged only where that median is at least this many rows. A shard's rows are a sum over
# its users, and in a small one a few heavy users are most of it: in a generated 300-user set
# one bot makes 90 % of a ~3,300-row play shard, so each day it skips looks like a 90 % cut,
# and a shard of a dozen downloads loses 70 % by chance. The real logs' shards hold ~60 K
# (down, search) to ~1 M (play) rows a day; so does a truncation worth finding.
TRUNCATED_MIN_ROWS = 10_000
COPY_ROWS_WITHIN = 0.01  # near-copy: row counts within 1 % ...
COPY_SAMPLE_SHARED = 0.90  # ... and at least 90 % of the sampled line hashes in common
# Files this small are not compared: two days of a tiny data set can hold the same few lines
# (a user downloading the same song again) without anything being copied.
COPY_MIN_ROWS = 50


@dataclass(frozen=True)
class FileFingerprint:
    """What the quality checks need of one file; `sample` is a bottom-k set of line hashes."""

    date: dt.date
    file_type: str
    shard: int
    log_name: str
    rows: int
    dead_letters: int
    sample: frozenset[int]
    complete: bool = True  # False when the read stopped before the end of the file
    damage: str | None = None  # where and why the reader stopped, when the file is damaged


@dataclass(frozen=True)
class QualityWarning:
    date: dt.date
    file_type: str  # or ALL_TYPES
    shard: int | None
    kind: str  # MISSING_DAY | MISSING_SHARD | TRUNCATED_SHARD | NEAR_COPY | DAMAGED_FILE
    message: str

    def concerns(self, day: dt.date, file_type: str) -> bool:
        return self.date == day and self.file_type in (file_type, ALL_TYPES)


@dataclass(frozen=True)
class DayTypeRow:
    """One (day, type) line of the report."""

    date: dt.date
    file_type: str
    shards: tuple[int, ...]
    rows: int
    dead_letters: int
    warnings: tuple[QualityWarning, ...]


@dataclass(frozen=True)
class QualityReport:
    rows: list[DayTypeRow]
    warnings: list[QualityWarning]
    # (type, shard) whose median day is under TRUNCATED_MIN_ROWS: not judged for truncation.
    not_judged_for_truncation: list[tuple[str, int]] = field(default_factory=list)


def quality_report(prints: Sequence[FileFingerprint]) -> QualityReport:
    """Rows for every (day, type) from the first day read to the last, with the warnings of each:
    a day with no file at all has its rows too (no shards, no rows) and a missing-day warning."""
    found = sorted({p.date for p in prints})
    days = [found[0] + dt.timedelta(days=n) for n in range((found[-1] - found[0]).days + 1)] if found else []
    types = sorted({p.file_type for p in prints}, key=TYPE_ORDER.__getitem__)
    truncated, not_judged = _truncated(prints)
    warnings = (
        _missing_days(found)
        + _missing_shards(prints, found, types)
        + truncated
        + _near_copies(prints)
        + _damaged(prints)
    )
    by_cell: dict[tuple[dt.date, str], list[FileFingerprint]] = defaultdict(list)
    for p in prints:
        by_cell[(p.date, p.file_type)].append(p)
    rows = []
    for day in days:
        for file_type in types:
            cell = by_cell.get((day, file_type), [])
            rows.append(
                DayTypeRow(
                    date=day,
                    file_type=file_type,
                    shards=tuple(sorted(p.shard for p in cell)),
                    rows=sum(p.rows for p in cell),
                    dead_letters=sum(p.dead_letters for p in cell),
                    warnings=tuple(w for w in warnings if w.concerns(day, file_type)),
                )
            )
    warnings.sort(key=lambda w: (w.date, TYPE_ORDER.get(w.file_type, -1), w.shard or 0, w.kind))
    return QualityReport(rows=rows, warnings=warnings, not_judged_for_truncation=not_judged)


def _missing_days(found: list[dt.date]) -> list[QualityWarning]:
    """One warning per day between the first and the last day read that has no file at all."""
    warnings = []
    for before, after in pairwise(found):
        gap = (after - before).days - 1
        if gap < 1:
            continue
        first, last = before + dt.timedelta(days=1), after - dt.timedelta(days=1)
        span = first.isoformat() if gap == 1 else f"{gap} days, {first.isoformat()} to {last.isoformat()}"
        message = (
            f"no file of any type (missing: {span}; the logs run from {found[0].isoformat()} "
            f"to {found[-1].isoformat()}): a day absent from the logs, not a day without activity"
        )
        for n in range(gap):
            day = first + dt.timedelta(days=n)
            warnings.append(QualityWarning(day, ALL_TYPES, None, MISSING_DAY, message))
    return warnings


def _missing_shards(
    prints: Sequence[FileFingerprint], days: list[dt.date], types: list[str]
) -> list[QualityWarning]:
    """A day with fewer shards of a type than the usual count (the mode over the days read)."""
    warnings = []
    for file_type in types:
        present = {day: set[int]() for day in days}
        for p in prints:
            if p.file_type == file_type:
                present[p.date].add(p.shard)
        counts = Counter(len(shards) for shards in present.values())
        # Mode over days; on a tie the larger count, so that a gap is reported rather than hidden.
        usual = max(counts, key=lambda n: (counts[n], n))
        usual_shards = set(range(1, usual + 1))
        for day, shards in present.items():
            if len(shards) < usual:
                missing = sorted(usual_shards - shards)
                which = f" (missing: {', '.join(map(str, missing))})" if missing else ""
                message = (
                    f"{len(shards)} of the usual {usual} {file_type} shards{which}: "
                    "looks like a drop in activity but is a collection gap"
                )
                warnings.append(QualityWarning(day, file_type, None, MISSING_SHARD, message))
    return warnings


def _truncated(prints: Sequence[FileFingerprint]) -> tuple[list[QualityWarning], list[tuple[str, int]]]:
    """A file with rows under 30 % of the median of its type and shard over the days read, where
    that median is at least TRUNCATED_MIN_ROWS; and the (type, shard) too small to judge."""
    warnings, not_judged = [], []
    for (file_type, shard), group in _by_type_and_shard(prints).items():
        median = statistics.median(p.rows for p in group)
        if median < TRUNCATED_MIN_ROWS:
            not_judged.append((file_type, shard))
            continue
        for p in group:
            if p.rows < TRUNCATED_BELOW * median:
                message = (
                    f"shard {shard} holds {p.rows:,} rows, {p.rows / median:.0%} of the median "
                    f"{median:,.0f} of {file_type} shard {shard}: probably truncated"
                )
                warnings.append(QualityWarning(p.date, file_type, shard, TRUNCATED_SHARD, message))
    return warnings, sorted(not_judged, key=lambda key: (TYPE_ORDER[key[0]], key[1]))


def _near_copies(prints: Sequence[FileFingerprint]) -> list[QualityWarning]:
    """A file nearly identical to the same type and shard of an earlier day (reported on the later)."""
    warnings = []
    for (file_type, shard), group in _by_type_and_shard(prints).items():
        for earlier, later in combinations(sorted(group, key=lambda p: p.date), 2):
            if min(earlier.rows, later.rows) < COPY_MIN_ROWS:
                continue
            if abs(earlier.rows - later.rows) > COPY_ROWS_WITHIN * max(earlier.rows, later.rows):
                continue
            shared = sample_similarity(earlier.sample, later.sample)
            if shared >= COPY_SAMPLE_SHARED:
                message = (
                    f"shard {shard} is a near-copy of {earlier.date.isoformat()}'s "
                    f"({later.rows:,} vs {earlier.rows:,} rows, {shared:.0%} of sampled lines shared)"
                )
                warnings.append(QualityWarning(later.date, file_type, shard, NEAR_COPY, message))
    return warnings


def _damaged(prints: Sequence[FileFingerprint]) -> list[QualityWarning]:
    """A file the reader could not read to its end: the file, where reading stopped, and why."""
    return [
        QualityWarning(
            p.date,
            p.file_type,
            p.shard,
            DAMAGED_FILE,
            f"{p.damage}. Read before it: {p.rows - 1:,} line{'' if p.rows == 2 else 's'}; "
            "the rest of the file is lost: fetch the file again",
        )
        for p in prints
        if p.damage is not None
    ]


def sample_similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """Estimated share of lines two files have in common (Jaccard), from their bottom-k samples.

    The k smallest hashes of the union are a random sample of the union's distinct lines; the
    share of them present in both samples estimates |A & B| / |A | B|."""
    if not a or not b:
        return 0.0
    k = min(len(a), len(b))
    union_bottom = sorted(a | b)[:k]
    return sum(1 for h in union_bottom if h in a and h in b) / k


def _by_type_and_shard(prints: Sequence[FileFingerprint]) -> dict[tuple[str, int], list[FileFingerprint]]:
    """Complete files only: a file whose read stopped early has no meaningful row count."""
    groups: dict[tuple[str, int], list[FileFingerprint]] = defaultdict(list)
    for p in prints:
        if p.complete:
            groups[(p.file_type, p.shard)].append(p)
    return groups

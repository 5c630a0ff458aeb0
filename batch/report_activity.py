"""The report's activity data: daily active users and events per type (from the events table), and
the reader's data-quality warnings (`musicbox.rawlogs.quality_report`) to mark on the graph.

The warnings need the per-file fingerprints the reader collects while reading the raw logs.
They are there when the events table was just built; a reused table has none, so the logs are
read once more (progress shown) and the fingerprints cached under
`var/cache/quality/<events table fingerprint>.json` for the next report.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

from batch.events_table import EventsTable
from musicbox.events import EVENT_TYPES
from musicbox.rawlogs import ReadStats, iter_logs, quality_report
from musicbox.rawlogs.quality import FileFingerprint, QualityWarning


@dataclass(frozen=True)
class Activity:
    days: list[date]
    active_users: list[int]
    events: dict[str, list[int]]  # per event type, one count per day


def activity(table: EventsTable) -> Activity:
    """Distinct users and events per type for every day of the table (one small scan a day)."""
    first, last = table.first_day, table.last_day
    assert first is not None and last is not None
    dataset = ds.dataset(str(table.path), format="parquet")
    days, users = [], []
    events: dict[str, list[int]] = {t: [] for t in EVENT_TYPES}
    day = first
    while day <= last:
        rows = dataset.to_table(columns=["uid", "type"], filter=ds.field("date") == day)
        days.append(day)
        users.append(len(pc.unique(rows["uid"])) if rows.num_rows else 0)
        counts = dict.fromkeys(EVENT_TYPES, 0)
        if rows.num_rows:
            for entry in pc.value_counts(rows["type"]).to_pylist():
                counts[entry["values"]] = entry["counts"]
        for t in EVENT_TYPES:
            events[t].append(counts[t])
        day += timedelta(days=1)
    return Activity(days, users, events)


def _to_json(p: FileFingerprint) -> dict:
    return {
        "date": p.date.isoformat(),
        "file_type": p.file_type,
        "shard": p.shard,
        "log_name": p.log_name,
        "rows": p.rows,
        "dead_letters": p.dead_letters,
        "sample": sorted(p.sample),
        "complete": p.complete,
    }


def _from_json(d: dict) -> FileFingerprint:
    return FileFingerprint(
        date.fromisoformat(d["date"]),
        d["file_type"],
        d["shard"],
        d["log_name"],
        d["rows"],
        d["dead_letters"],
        frozenset(d["sample"]),
        d["complete"],
    )


def fingerprints(
    var_dir: Path, logs_dir: Path, table: EventsTable, progress: Callable[[int], None] | None = None
) -> list[FileFingerprint]:
    """The reader's per-file fingerprints: from the table's read, the cache, or a new read of the logs."""
    if table.stats is not None:
        prints = table.stats.fingerprints()
    else:
        cache = var_dir / "cache" / "quality" / f"{table.fingerprint}.json"
        if cache.is_file():
            return [_from_json(d) for d in json.loads(cache.read_text())]
        stats = ReadStats()
        for n, _ in enumerate(iter_logs(logs_dir, stats=stats), 1):
            if progress is not None and n % 1_000_000 == 0:
                progress(n)
        prints = stats.fingerprints()
    cache = var_dir / "cache" / "quality" / f"{table.fingerprint}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps([_to_json(p) for p in prints]))
    os.replace(tmp, cache)
    return prints


def warnings_by_day(prints: list[FileFingerprint]) -> tuple[list[QualityWarning], dict[date, list[str]]]:
    """(every warning, day -> short labels like `play: missing_shard`) for the graph."""
    warnings = quality_report(prints).warnings
    by_day: dict[date, list[str]] = defaultdict(list)
    for w in warnings:
        by_day[w.date].append(f"{w.file_type}: {w.kind}")
    return warnings, dict(by_day)

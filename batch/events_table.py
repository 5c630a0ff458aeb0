"""The events table: raw logs read once into a Parquet cache that every batch job reads with Spark.

Reading the raw logs (text, gzip, tarballs, dirty lines) is slow Python work; the table holds the
accepted events' feature columns only and is reused while the logs directory is unchanged
(same file names, sizes and modification times). Written chunk by chunk with pyarrow, so the
data set never has to fit in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from batch.errors import EventsTableError
from musicbox.events import DeadLetter, Event
from musicbox.rawlogs import ReadStats, find_log_files, iter_logs
from musicbox.settings import Settings

# Bump when the columns or the layout change: tables written by an older version are then ignored.
TABLE_VERSION = 1
CHUNK_ROWS = 500_000
MANIFEST = "_manifest.json"  # a leading underscore: Spark's Parquet reader skips the file
ARROW_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("uid", pa.int64()),
        ("date", pa.date32()),
        ("event_time_ms", pa.int64()),
        ("device", pa.string()),
        ("song_id", pa.int64()),
        ("play_time_s", pa.int64()),
        ("song_length_s", pa.int64()),
    ]
)
_EVENT_COLUMNS = tuple(name for name in ARROW_SCHEMA.names if name != "date")


class LogReader(Protocol):
    """`musicbox.rawlogs.iter_logs`: events and dead letters of a logs directory, day by day."""

    def __call__(self, root: Path, *, stats: ReadStats | None = None) -> Iterable[Event | DeadLetter]: ...


# Called when the reader moves to a new day: (day, events so far, dead letters so far).
Progress = Callable[[str, int, int], None]


@dataclass
class TableSummary:
    """What the table holds: stored in its manifest, so a reused table can still be reported."""

    rows: int = 0
    rows_by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    first_day: str | None = None
    last_day: str | None = None
    files: int = 0

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())


@dataclass(frozen=True)
class EventsTable:
    """A ready events table. `stats` is the reader's when the logs were read now, None when reused
    (the summary, kept in the table's manifest, then says what the table holds)."""

    path: Path
    fingerprint: str
    summary: TableSummary
    from_cache: bool
    stats: ReadStats | None = None

    @property
    def first_day(self) -> date | None:
        return date.fromisoformat(self.summary.first_day) if self.summary.first_day else None

    @property
    def last_day(self) -> date | None:
        return date.fromisoformat(self.summary.last_day) if self.summary.last_day else None


def logs_fingerprint(log_files: Iterable[Path], root: Path) -> str:
    """A short hash of the log files' names (relative to `root`), sizes and modification times."""
    digest = hashlib.sha256(f"events-table-v{TABLE_VERSION}\n".encode())
    for path in sorted(log_files):
        st = path.stat()
        digest.update(f"{path.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def write_events(
    items: Iterable[Event | DeadLetter],
    folder: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> TableSummary:
    """Write the events of `items` as Parquet files of at most `chunk_rows` rows, one day per file.

    Files are `events-<date>-<n>.parquet`; dead letters are counted by reason, not written.
    """
    summary = TableSummary()
    by_type: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    columns: dict[str, list[Any]] = {name: [] for name in _EVENT_COLUMNS}
    day: str | None = None
    part_of_day = 0

    def flush() -> None:
        nonlocal part_of_day
        if day is None or not columns["uid"]:
            return
        n = len(columns["uid"])
        arrays = {name: pa.array(values, ARROW_SCHEMA.field(name).type) for name, values in columns.items()}
        arrays["date"] = pa.array([date.fromisoformat(day)] * n, pa.date32())
        table = pa.Table.from_pydict(arrays, schema=ARROW_SCHEMA)
        pq.write_table(table, folder / f"events-{day}-{part_of_day:04d}.parquet")
        part_of_day += 1
        summary.files += 1
        for values in columns.values():
            values.clear()

    for item in items:
        if isinstance(item, DeadLetter):
            dead[item.reason] += 1
            continue
        if item.date != day:
            flush()
            if progress is not None and day is not None:
                progress(day, summary.rows, sum(dead.values()))
            day, part_of_day = item.date, 0
            summary.first_day = min(summary.first_day or day, day)
            summary.last_day = max(summary.last_day or day, day)
        for name in _EVENT_COLUMNS:
            columns[name].append(getattr(item, name))
        summary.rows += 1
        by_type[item.type] += 1
        if len(columns["uid"]) >= chunk_rows:
            flush()
    flush()
    if progress is not None and day is not None:
        progress(day, summary.rows, sum(dead.values()))
    summary.rows_by_type = dict(by_type)
    summary.dead_letters_by_reason = dict(dead)
    return summary


def events_table(
    settings: Settings,
    logs_dir: Path,
    *,
    progress: Progress | None = None,
    reader: LogReader = iter_logs,
) -> EventsTable:
    """The events table of `logs_dir` under `var/cache/events/<fingerprint>`, read now or reused.

    A table is published by renaming a finished temporary folder, so a crash never leaves a
    half-written table that a later run would trust.
    """
    logs_dir = Path(logs_dir)
    if not logs_dir.is_dir():
        raise EventsTableError(f"{logs_dir} is not a directory: pass the folder that holds the log files")
    files = [log.path for log in find_log_files(logs_dir)]
    if not files:
        raise EventsTableError(
            f"no log files under {logs_dir}: expected names like 20170330_1_play.log(.gz|.tar.gz)"
        )
    fingerprint = logs_fingerprint(files, logs_dir)
    cache = settings.cache_dir / "events"
    final = cache / fingerprint
    if (final / MANIFEST).is_file():
        manifest = json.loads((final / MANIFEST).read_text())
        return EventsTable(final, fingerprint, TableSummary(**manifest["summary"]), from_cache=True)

    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{fingerprint}-", dir=cache))
    work.chmod(0o755)  # mkdtemp's 0700 would otherwise stay on the published table
    try:
        stats = ReadStats()
        summary = write_events(reader(logs_dir, stats=stats), work, progress=progress)
        if summary.rows == 0:
            raise EventsTableError(f"the log files under {logs_dir} hold no valid event")
        manifest = {"version": TABLE_VERSION, "logs_dir": str(logs_dir.resolve()), "summary": asdict(summary)}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if final.exists() and not (final / MANIFEST).is_file():
            shutil.rmtree(final)  # the remains of an older layout or a hand edit: not trusted
        try:
            os.rename(work, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # not another run that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _drop_stale_tables(cache, logs_dir, keep=fingerprint)
    return EventsTable(final, fingerprint, summary, from_cache=False, stats=stats)


def _drop_stale_tables(cache: Path, logs_dir: Path, keep: str) -> None:
    """Delete the tables of earlier states of the same logs folder: they can never be reused."""
    for manifest_path in cache.glob(f"*/{MANIFEST}"):
        folder = manifest_path.parent
        if folder.name == keep:
            continue
        try:
            same_logs = json.loads(manifest_path.read_text()).get("logs_dir") == str(logs_dir.resolve())
        except (OSError, ValueError):
            continue
        if same_logs:
            shutil.rmtree(folder, ignore_errors=True)

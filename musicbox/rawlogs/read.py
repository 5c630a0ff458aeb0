"""Streaming reader of raw log files: one file, one day (files merged in event-time order), or a
whole directory day by day. Never loads a whole file; counts into an optional ReadStats.

Play and download lines carry no time: each is placed in its day by the byte offset of the
line in the uncompressed file (DESIGN 3), which is deterministic and needs a single pass.

A damaged file (cut short, a corrupt byte, not what its name says) does not stop the read: its
lines up to the damage are read as usual, the damage becomes one dead letter (reason
`damaged_file`) that counts as one line, so lines = events + dead letters still holds, and the
lines after it, which cannot be known, are not counted. The data-quality report warns of it.
"""

from __future__ import annotations

import datetime as dt
import heapq
import zlib
from collections.abc import Iterable, Iterator
from itertools import chain, groupby, islice
from pathlib import Path

from musicbox.events import DAY_MS, DeadLetter, Event, day_start_ms
from musicbox.rawlogs.errors import NoLogFilesError
from musicbox.rawlogs.files import READ_ERRORS, open_log
from musicbox.rawlogs.names import NAME_PATTERN, TYPE_ORDER, LogFile, scan_log_dir
from musicbox.rawlogs.parse import DAMAGED_FILE, READ_STAGE, LineContext, parse_line
from musicbox.rawlogs.stats import ReadStats

__all__ = ["ReadStats", "group_by_day", "iter_day", "iter_file", "iter_logs", "open_log", "select_logs"]

Item = Event | DeadLetter
# (sort time, type order, shard, file index, line number, item): heapq.merge compares these
# tuples, and the file index makes them unique before the item itself is ever compared.
_Keyed = tuple[int, int, int, int, int, Item]
_BOM = b"\xef\xbb\xbf"


def iter_file(log: LogFile, stats: ReadStats | None = None) -> Iterator[Item]:
    """Every line of one file as an Event or a DeadLetter, in file order."""
    return (keyed[-1] for keyed in _keyed_items(log, stats, 0))


def iter_day(
    logs_of_one_day: Iterable[LogFile], stats: ReadStats | None = None, skip: int = 0
) -> Iterator[Item]:
    """The day's files merged by (event time, play < download < search, shard, line number).

    A dead letter keeps its place in its file. `skip` drops the first items of the day, for a
    resumed replay: the order is deterministic, so item N is the same item on every read. Skipped
    lines are still read and counted in `stats` (the stats describe the files)."""
    logs = sorted(logs_of_one_day, key=lambda log: log.sort_key)
    if len({log.date for log in logs}) > 1:
        raise ValueError("iter_day takes the files of a single day")
    merged = heapq.merge(*(_keyed_items(log, stats, index) for index, log in enumerate(logs)))
    return (keyed[-1] for keyed in islice(merged, skip, None))


def select_logs(
    root: Path | str,
    from_day: dt.date | str | None = None,
    to_day: dt.date | str | None = None,
    stats: ReadStats | None = None,
) -> list[LogFile]:
    """The log files under `root` within [from_day, to_day], sorted; skipped files go to `stats`."""
    root = Path(root)
    low, high = _as_date(from_day), _as_date(to_day)
    if low and high and low > high:
        raise NoLogFilesError(f"the first day {low} is after the last day {high}: swap --from and --to")
    if not root.is_dir():
        raise NoLogFilesError(f"{root} is not a directory: give the folder that holds the log files")
    logs, skipped = scan_log_dir(root)
    if stats is not None:
        stats.skipped.extend(skipped)
    if not logs:
        raise NoLogFilesError(
            f"no log file under {root} ({len(skipped)} other files there): "
            f"log files are named {NAME_PATTERN}, e.g. 20170330_1_play.log.tar.gz"
        )
    chosen = [log for log in logs if (low is None or log.date >= low) and (high is None or log.date <= high)]
    if not chosen:
        raise NoLogFilesError(
            f"no log file from {low or 'the start'} to {high or 'the end'} under {root}: "
            f"its files cover {logs[0].iso_date} to {logs[-1].iso_date}"
        )
    return chosen


def group_by_day(logs: Iterable[LogFile]) -> list[tuple[dt.date, list[LogFile]]]:
    """The files grouped by day, days in order."""
    ordered = sorted(logs, key=lambda log: log.sort_key)
    return [(day, list(group)) for day, group in groupby(ordered, key=lambda log: log.date)]


def iter_logs(
    root: Path | str,
    from_day: dt.date | str | None = None,
    to_day: dt.date | str | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Item]:
    """Every line under `root`, day by day, each day merged by iter_day.

    Raises NoLogFilesError at once (not at the first item) when there is nothing to read."""
    days = group_by_day(select_logs(root, from_day, to_day, stats))
    return chain.from_iterable(iter_day(logs, stats) for _, logs in days)


def _keyed_items(log: LogFile, stats: ReadStats | None, file_index: int) -> Iterator[_Keyed]:
    """The file's items with their merge keys. The sort time of play and download is their own
    byte-offset time; in a search file, the latest clock time so far, so that each file's keys
    never decrease (heapq.merge needs that) and an out-of-order line stays in its file position."""
    file_stats = stats.start_file(log) if stats is not None else None
    day_ms = day_start_ms(log.date)
    day_last_ms = day_ms + DAY_MS - 1
    ctx = LineContext(log.log_name, log.iso_date, log.event_type, 0, day_ms, day_ms)
    order, shard = TYPE_ORDER[log.file_type], log.shard
    by_offset = log.file_type != "search"
    sort_ms = day_ms
    line_no = offset = 0
    try:
        with open_log(log) as (stream, total_bytes):
            total_bytes = max(total_bytes, 1)
            for line_no, raw in enumerate(stream, 1):
                size = len(raw)
                if line_no == 1 and raw[:3] == _BOM:
                    raw = raw[3:]
                ctx.line_no = line_no
                if by_offset:
                    # min(): a wrong size would otherwise push the last lines into the next day.
                    sort_ms = min(day_ms + offset * DAY_MS // total_bytes, day_last_ms)
                    ctx.event_time_ms = sort_ms
                offset += size
                item, repairs = parse_line(raw, ctx)
                if not by_offset and isinstance(item, Event) and item.event_time_ms > sort_ms:
                    sort_ms = item.event_time_ms
                if file_stats is not None:  # inlined: this runs for every line
                    file_stats.lines = line_no
                    if type(item) is DeadLetter:
                        file_stats.dead_letters[item.reason] += 1
                    else:
                        file_stats.events += 1
                    for name in repairs:
                        file_stats.repairs[name] += 1
                    line_hash = zlib.crc32(raw)
                    if line_hash < file_stats.sample_limit:
                        file_stats.offer(line_hash)
                yield (sort_ms, order, shard, file_index, line_no, item)
    except READ_ERRORS as exc:
        # Every line before the damage was yielded; the damage takes the next line number.
        damage = _damage(log, line_no + 1, offset, exc)
        if file_stats is not None:
            file_stats.lines = line_no + 1
            file_stats.dead_letters[DAMAGED_FILE] += 1
            file_stats.damage = damage.raw
        yield (sort_ms, order, shard, file_index, line_no + 1, damage)
        return
    if file_stats is not None:
        file_stats.complete = True


def _damage(log: LogFile, line_no: int, offset: int, exc: BaseException) -> DeadLetter:
    """The dead letter standing for a damaged file's unreadable rest: where reading stopped, and why."""
    what = str(exc) or type(exc).__name__
    raw = (
        f"{log.path.name} is damaged: reading stopped at line {line_no:,} "
        f"(byte {offset:,} of the uncompressed data): {what}"
    )
    return DeadLetter(READ_STAGE, DAMAGED_FILE, raw, f"{log.log_name}:{line_no}")


def _as_date(day: dt.date | str | None) -> dt.date | None:
    if day is None or isinstance(day, dt.date):
        return day
    return dt.date.fromisoformat(day)

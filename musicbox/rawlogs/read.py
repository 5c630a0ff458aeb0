"""Streaming reader of raw log files: one file, one day (files merged in event-time order), or a
whole directory day by day. Never loads a whole file; counts into an optional ReadStats.

Play and download lines carry no time: each is placed in its day by the byte offset of the
line in the uncompressed file (DESIGN 3), which is deterministic and needs a single pass.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, groupby, islice
from pathlib import Path

from musicbox.events import DAY_MS, DeadLetter, Event, day_start_ms
from musicbox.rawlogs.errors import NoLogFilesError, UnreadableLogError
from musicbox.rawlogs.names import NAME_PATTERN, TYPE_ORDER, LogFile, scan_log_dir
from musicbox.rawlogs.parse import LineContext, parse_line
from musicbox.rawlogs.stats import ReadStats

__all__ = ["ReadStats", "group_by_day", "iter_day", "iter_file", "iter_logs", "open_log", "select_logs"]

Item = Event | DeadLetter
# (sort time, type order, shard, file index, line number, item): heapq.merge compares these
# tuples, and the file index makes them unique before the item itself is ever compared.
_Keyed = tuple[int, int, int, int, int, Item]
_BUFFER = 1 << 20
_BOM = b"\xef\xbb\xbf"
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)


@contextmanager
def open_log(log: LogFile) -> Iterator[tuple[Iterable[bytes], int]]:
    """The file's uncompressed byte stream and its uncompressed size in bytes."""
    if log.compression == "none":
        with open(log.path, "rb", buffering=_BUFFER) as stream:
            yield stream, os.fstat(stream.fileno()).st_size
    elif log.compression == "gz":
        size = _gzip_size(log.path)
        # A BufferedReader on top: GzipFile's own readline costs a Python call per line.
        with gzip.open(log.path, "rb") as packed, io.BufferedReader(packed, _BUFFER) as stream:
            yield stream, size
    else:
        with tarfile.open(log.path, mode="r|gz") as archive:
            for member in archive:
                name = os.path.basename(member.name)
                # "._x.log" are macOS resource forks that tar picks up beside the real file.
                if member.isfile() and name.endswith(".log") and not name.startswith("._"):
                    member_stream = archive.extractfile(member)
                    if member_stream is not None:
                        yield member_stream, member.size
                        return
        raise UnreadableLogError(f"{log.path} holds no .log file: a .log.tar.gz must hold exactly one")


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
    try:
        with open_log(log) as (stream, total_bytes):
            total_bytes = max(total_bytes, 1)
            offset = 0
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
    except _READ_ERRORS as exc:
        raise UnreadableLogError(
            f"cannot read {log.path}: {exc}. The file is damaged or not what its name says: "
            "fetch it again, or move it out of the log folder"
        ) from exc
    if file_stats is not None:
        file_stats.complete = True


def _gzip_size(path: Path) -> int:
    """Uncompressed size: the gzip trailer's ISIZE, or a counting pass when ISIZE cannot be it.

    ISIZE is the size mod 2^32 of the last member only; text never comes out smaller than its
    compressed form, so an ISIZE below the compressed size means a wrapped (> 4 GiB) or
    multi-member file, and only decompressing tells the true size."""
    compressed = path.stat().st_size
    with open(path, "rb") as stream:
        stream.seek(max(compressed - 4, 0))
        isize = int.from_bytes(stream.read(4), "little")
    if isize >= compressed:
        return isize
    total = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(_BUFFER):
            total += len(chunk)
    return total


def _as_date(day: dt.date | str | None) -> dt.date | None:
    if day is None or isinstance(day, dt.date):
        return day
    return dt.date.fromisoformat(day)

"""Log file names (`YYYYMMDD_<k>_<type>.log[.gz|.tar.gz]`) and finding them under a directory.

The date, shard and type of a file come from its name only; a file whose name does not fit
is skipped, with the reason kept so that the user sees it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from musicbox.events import FILE_TYPE_TO_EVENT_TYPE

# Merge and sort order of the types within a day (play < download < search).
TYPE_ORDER: dict[str, int] = {"play": 0, "down": 1, "search": 2}
# Preferred copy when one shard is present twice (e.g. a tarball next to its extracted log).
_COMPRESSION_ORDER = {"none": 0, "gz": 1, "tar.gz": 2}
_NAME = re.compile(r"(\d{8})_(\d+)_(play|down|search)\.log(\.gz|\.tar\.gz)?")
NAME_PATTERN = "YYYYMMDD_<k>_<play|down|search>.log[.gz|.tar.gz]"


@dataclass(frozen=True, slots=True)
class LogFile:
    """One day/shard/type file. `log_name` is the `.log` name, the base of every event_id."""

    path: Path
    date: dt.date
    shard: int
    file_type: str  # "play" | "down" | "search": the word in the file name
    event_type: str  # "play" | "download" | "search": the type of its events
    log_name: str
    compression: str  # "none" | "gz" | "tar.gz"

    @property
    def iso_date(self) -> str:
        return self.date.isoformat()

    @property
    def sort_key(self) -> tuple[dt.date, int, int]:
        return (self.date, TYPE_ORDER[self.file_type], self.shard)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file under the log directory that is not read, and why."""

    path: Path
    reason: str


def parse_log_name(path: Path | str) -> LogFile | None:
    """The LogFile a path names, or None when its name is not a log name (or its date is invalid)."""
    path = Path(path)
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    day_s, shard_s, file_type, suffix = match.groups()
    try:
        day = dt.date(int(day_s[:4]), int(day_s[4:6]), int(day_s[6:]))
    except ValueError:
        return None
    shard = int(shard_s)
    if shard < 1:
        return None
    return LogFile(
        path=path,
        date=day,
        shard=shard,
        file_type=file_type,
        event_type=FILE_TYPE_TO_EVENT_TYPE[file_type],
        log_name=f"{day_s}_{shard_s}_{file_type}.log",
        compression={None: "none", ".gz": "gz", ".tar.gz": "tar.gz"}[suffix],
    )


def scan_log_dir(root: Path | str) -> tuple[list[LogFile], list[SkippedFile]]:
    """Every log file under `root` (recursively), sorted by (date, type, shard), and the skipped rest.

    One shard present twice (say `x.log` and `x.log.tar.gz`) is read once: the plain copy wins,
    the other is reported as skipped, because reading both would double its events.
    """
    logs: dict[tuple[dt.date, int, int], LogFile] = {}
    skipped: list[SkippedFile] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            log = parse_log_name(path)
            if log is None:
                skipped.append(SkippedFile(path, f"name is not {NAME_PATTERN}"))
                continue
            kept = logs.get(log.sort_key)
            if kept is None:
                logs[log.sort_key] = log
                continue
            first, second = sorted((kept, log), key=_copy_preference)
            logs[log.sort_key] = first
            skipped.append(SkippedFile(second.path, f"same day, type and shard as {first.path}"))
    return sorted(logs.values(), key=lambda log: log.sort_key), skipped


def find_log_files(root: Path | str) -> list[LogFile]:
    """Every log file under `root`, sorted by (date, type, shard); other files are ignored."""
    return scan_log_dir(root)[0]


def _copy_preference(log: LogFile) -> tuple[int, str]:
    return (_COMPRESSION_ORDER[log.compression], str(log.path))

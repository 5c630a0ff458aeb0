"""What a read counted: lines, events, dead letters, repairs, and per-file fingerprints.

The reader fills one FileStats per file as it goes (cheap counters on the hot path); ReadStats
sums them for the summary and hands their fingerprints to the data-quality report, so the
quality checks need no second pass over the data.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from musicbox.events import EVENT_TYPES
from musicbox.rawlogs.names import LogFile, SkippedFile
from musicbox.rawlogs.quality import FileFingerprint

# Lines kept in a file's fingerprint: the SAMPLE_SIZE smallest CRC-32s of its lines (a
# bottom-k sketch), the same "random" lines for every file, so two files can be compared.
SAMPLE_SIZE = 256


@dataclass(slots=True)
class FileStats:
    """Counters of one file; `complete` turns True once its last line has been read."""

    log: LogFile
    lines: int = 0
    events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    repairs: Counter[str] = field(default_factory=Counter)
    complete: bool = False
    damage: str | None = None  # where and why reading stopped, when the file is damaged
    # Max-heap (negated) of the smallest line hashes seen, and its current largest member.
    _heap: list[int] = field(default_factory=list)
    _members: set[int] = field(default_factory=set)
    sample_limit: int = 2**32  # hashes at or above this cannot enter the sample

    def offer(self, line_hash: int) -> None:
        """Keep `line_hash` if it is among the SAMPLE_SIZE smallest distinct hashes so far."""
        if line_hash in self._members:
            return
        self._members.add(line_hash)
        if len(self._heap) < SAMPLE_SIZE:
            heapq.heappush(self._heap, -line_hash)
            if len(self._heap) < SAMPLE_SIZE:
                return
        else:
            self._members.discard(-heapq.heappushpop(self._heap, -line_hash))
        self.sample_limit = -self._heap[0]

    def fingerprint(self) -> FileFingerprint:
        return FileFingerprint(
            date=self.log.date,
            file_type=self.log.file_type,
            shard=self.log.shard,
            log_name=self.log.log_name,
            rows=self.lines,
            dead_letters=sum(self.dead_letters.values()),
            sample=frozenset(self._members),
            complete=self.complete,
            damage=self.damage,
        )


@dataclass
class ReadStats:
    """Everything one read counted, over all the files it opened, plus the files it skipped."""

    files: list[FileStats] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def start_file(self, log: LogFile) -> FileStats:
        file_stats = FileStats(log)
        self.files.append(file_stats)
        return file_stats

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def events_by_type(self) -> dict[str, int]:
        counts = dict.fromkeys(EVENT_TYPES, 0)
        for f in self.files:
            counts[f.log.event_type] += f.events
        return counts

    @property
    def events(self) -> int:
        return sum(f.events for f in self.files)

    @property
    def dead_letters_by_reason(self) -> Counter[str]:
        return sum((f.dead_letters for f in self.files), Counter())

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())

    @property
    def repairs_by_field(self) -> Counter[str]:
        return sum((f.repairs for f in self.files), Counter())

    def by_day_and_type(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """(ISO date, file type) -> (rows, dead letters, shards read)."""
        table: dict[tuple[str, str], tuple[int, int, int]] = {}
        for f in self.files:
            key = (f.log.iso_date, f.log.file_type)
            rows, dead, shards = table.get(key, (0, 0, 0))
            table[key] = (rows + f.lines, dead + sum(f.dead_letters.values()), shards + 1)
        return dict(sorted(table.items()))

    def fingerprints(self) -> list[FileFingerprint]:
        return [f.fingerprint() for f in self.files]

    def summary_rows(self) -> list[tuple[str, int]]:
        """(label, count) rows for printing: lines = events + dead letters, then the breakdowns.

        Indented labels break down the unindented total above them."""
        rows = [("lines read", self.lines), ("events", self.events)]
        rows += [(f"  {kind}", n) for kind, n in self.events_by_type.items()]
        rows.append(("dead letters", self.dead_letters))
        rows += [(f"  {reason}", n) for reason, n in sorted(self.dead_letters_by_reason.items())]
        repairs = self.repairs_by_field
        rows.append(("field repairs (a value set to null)", sum(repairs.values())))
        rows += [(f"  {name}", n) for name, n in sorted(repairs.items())]
        rows.append(("files read", len(self.files)))
        rows.append(("files skipped", len(self.skipped)))
        return rows

"""The replay ledger: what each partition already holds of each day, committed with the data.

The replay sends in transactions. Each transaction carries, beside its events, one ledger
record per (day, topic, partition) it wrote to: how many of that day's items for that
partition are now in Kafka, counted in the replay's own deterministic order (`routing`), and
whether the day is done there (its tick sent). A transaction commits or aborts as a whole, so
the ledger read back with `read_committed` is exactly what consumers of the topics see.

A replay started again on the same logs (after a crash, with `--from`/`--to` over days sent
before, or by mistake) reads the ledger first and sends only what is not there yet: a done day
is skipped, a day cut short goes on from each partition's count. So the topics hold every line
once, whatever was killed when. Pure: the Kafka reading and writing live in `kafka_sink`.

Record: key `"<day>|<topic>|<partition>"`, value `{"sent": n, "done": bool, "files": fingerprint,
"of": partition count}`; the fingerprint (names and sizes of the day's files) refuses to mix two
data sets' same day, the partition count a topic whose partitions changed under the ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from musicbox.rawlogs import LogFile
from producers.replay.errors import ReplayError

Slot = tuple[str, int]  # (topic, partition)
LedgerRecord = tuple[bytes, bytes]  # (key, value) on the ledger topic


class LedgerMismatchError(ReplayError):
    """The topics hold a day of other logs, or were laid out with other partition counts."""


def day_fingerprint(logs: Iterable[LogFile]) -> str:
    """Names and sizes of a day's files: a day replayed again must be the same data."""
    h = hashlib.sha256()
    for log in sorted(logs, key=lambda x: x.path.name):
        h.update(f"{log.path.name}:{log.path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    sent: int  # the day's items on this partition that are in Kafka
    done: bool  # the partition has the day's tick
    files: str  # fingerprint of the day's files
    of: int  # partitions of the topic when it was written


def encode(day: str, slot: Slot, entry: Entry) -> LedgerRecord:
    topic, partition = slot
    key = f"{day}|{topic}|{partition}".encode()
    value = {"sent": entry.sent, "done": entry.done, "files": entry.files, "of": entry.of}
    return key, json.dumps(value).encode()


@dataclass(frozen=True)
class DayStatus:
    """What the topics hold of one day: per slot, the items already there."""

    sent: dict[Slot, int]
    done: bool

    @property
    def items(self) -> int:
        return sum(self.sent.values())


@dataclass
class Ledger:
    """The committed ledger records, latest value per key."""

    entries: dict[tuple[str, Slot], Entry] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[tuple[bytes | None, bytes | None]]) -> Ledger:
        """Records in offset order; a later record of a key replaces an earlier one."""
        ledger = cls()
        for key, value in records:
            if key is None or value is None:
                continue
            day, topic, partition = key.decode().rsplit("|", 2)
            v = json.loads(value)
            entry = Entry(int(v["sent"]), bool(v["done"]), str(v["files"]), int(v["of"]))
            ledger.entries[(day, (topic, int(partition)))] = entry
        return ledger

    def day(
        self, day: str, files: str, partitions: Mapping[str, int], event_topics: Sequence[str]
    ) -> DayStatus:
        """The status of `day` for logs whose fingerprint is `files`, with topics of
        `partitions` (count per topic); done only when every partition of `event_topics` is done
        (each has its tick). Raises when the ledger knows the day from other files, or from
        topics with other partition counts."""
        mine = {slot: e for (d, slot), e in self.entries.items() if d == day}
        other = {e.files for e in mine.values()} - {files}
        if other:
            raise LedgerMismatchError(
                f"the topics already hold {day} from other log files (fingerprint {sorted(other)[0]}, "
                f"these are {files}): replay them into fresh topics (another MUSICBOX_TOPIC_PREFIX, "
                "or `musicbox down` and remove var/kafka)"
            )
        for (topic, _), entry in mine.items():
            if partitions.get(topic) != entry.of:
                raise LedgerMismatchError(
                    f"{topic} had {entry.of} partitions when the replay wrote {day}, and has "
                    f"{partitions.get(topic)} now: replay into fresh topics (the partition count changed)"
                )
        event_slots = [(t, p) for t in event_topics for p in range(partitions[t])]
        done = bool(event_slots) and all(slot in mine and mine[slot].done for slot in event_slots)
        return DayStatus({slot: e.sent for slot, e in mine.items()}, done)

    def days(self) -> set[str]:
        return {day for day, _ in self.entries}

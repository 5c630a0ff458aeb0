"""What `musicbox replay --summary-json FILE` writes: the counts Kafka acknowledged, as JSON.

A contract between the replay and whoever runs it as a process (the demo): read the numbers,
never the printed table. Reconciliation is defined here, once: every line read is an event
sent, a dead letter sent, or was in Kafka already (an earlier replay of the same logs had
committed it: the replay ledger), or was read into a transaction Kafka did not take (Kafka went
away; the line was read again, and sent, once it was back).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from musicbox.errors import MusicboxError


class ReplaySummaryError(MusicboxError):
    """A replay summary file is missing or is not one."""


@dataclass(frozen=True)
class ReplaySummary:
    lines: int  # lines read from the logs by this run
    events_by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    already_in_kafka: int = 0  # lines read that an earlier replay had committed: not sent again
    aborted: int = 0  # lines read into a transaction Kafka did not take: read and sent again later
    days_already_done: list[str] = field(default_factory=list)  # days held whole: not even read
    days_completed: int = 0
    ticks: int = 0
    commits: int = 0  # Kafka transactions

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())

    @property
    def reconciles(self) -> bool:
        return self.events + self.dead_letters + self.already_in_kafka + self.aborted == self.lines

    def to_dict(self) -> dict[str, Any]:
        """The counts plus the derived totals and verdict, for readers that are not Python."""
        return {
            **asdict(self),
            "events": self.events,
            "dead_letters": self.dead_letters,
            "reconciles": self.reconciles,
        }

    def write(self, path: Path) -> None:
        """Write atomically: a reader sees the whole summary or none."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> ReplaySummary:
        """The summary in `path`; totals and verdict are derived again from the counts."""
        try:
            data = json.loads(path.read_text())
            return cls(
                lines=int(data["lines"]),
                events_by_type={str(k): int(v) for k, v in data["events_by_type"].items()},
                dead_letters_by_reason={str(k): int(v) for k, v in data["dead_letters_by_reason"].items()},
                already_in_kafka=int(data.get("already_in_kafka", 0)),
                aborted=int(data.get("aborted", 0)),
                days_already_done=[str(d) for d in data.get("days_already_done", [])],
                days_completed=int(data.get("days_completed", 0)),
                ticks=int(data.get("ticks", 0)),
                commits=int(data.get("commits", 0)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReplaySummaryError(f"{path} is not a replay summary ({exc})") from exc

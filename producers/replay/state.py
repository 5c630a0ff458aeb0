"""The resume point of a replay: a small JSON file under var/replay, replaced atomically."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from musicbox.rawlogs import LogFile


@dataclass(frozen=True)
class Position:
    """Days before `day` are complete (events and ticks acknowledged); `items` of `day` are too."""

    day: str
    items: int = 0


def logs_fingerprint(logs: list[LogFile]) -> str:
    """Identifies a set of log files (names, sizes, mtimes): a state file only resumes its own."""
    h = hashlib.sha256()
    for log in sorted(logs, key=lambda x: str(x.path)):
        st = log.path.stat()
        h.update(f"{log.path.name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class StateFile:
    path: Path
    fingerprint: str

    def load(self) -> Position | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        if data.get("fingerprint") != self.fingerprint:
            return None
        return Position(day=data["day"], items=int(data["items"]))

    def save(self, position: Position, extra: dict[str, object] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, **asdict(position), **(extra or {})}))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

"""Where the replay writes: a protocol, a list-backed sink for tests; Kafka in `kafka_sink`.

A sink takes placed messages (`send`) and makes everything sent since the last `commit`
visible at once, together with the ledger records that say what is now there (`commit`), or
none of it. With Kafka that is a transaction; consumers read `read_committed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from producers.replay.errors import NotAcknowledgedError
from producers.replay.ledger import LedgerRecord
from producers.replay.routing import Placed


class Sink(Protocol):
    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None: ...

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        """Make what was sent since the last commit visible with `ledger`, atomically; raise
        NotAcknowledgedError (and make none of it visible) when Kafka did not take it all."""

    def close(self) -> None: ...


@dataclass
class ListSink:
    """In-memory sink for tests (quix's `sdf.test()` idea): what consumers would see.

    `fail_after`: the commit that would make more than this many messages visible fails, and
    what it held is discarded, as Kafka aborts a transaction that did not commit."""

    records: list[Placed] = field(default_factory=list)  # committed, in order
    ledger: list[LedgerRecord] = field(default_factory=list)  # committed ledger records
    transactions: list[list[Placed]] = field(default_factory=list)  # what each commit made visible
    pending: list[Placed] = field(default_factory=list)
    fail_after: int | None = None

    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        self.pending.append((topic, partition, key, value))

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        if self.fail_after is not None and len(self.records) + len(self.pending) > self.fail_after:
            lost, self.pending = len(self.pending), []
            raise NotAcknowledgedError(f"{lost} messages not acknowledged")
        self.records += self.pending
        self.ledger += ledger
        self.transactions.append(self.pending)
        self.pending = []

    def close(self) -> None:
        self.pending = []

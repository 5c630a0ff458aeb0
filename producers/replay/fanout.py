"""Sending from several processes: a `Sink` that hands each message to the process owning its
partition, each process a transactional kafka-python producer of its own.

Why: kafka-python builds every record in Python (~15 us a message here), so one process tops
out far below what the reader parses and encodes (BENCHMARKS.md). The replay process keeps
reading, merging and placing (one order, one ledger); sender k owns partition p of every topic
where p % senders == k, so a user's events (one partition) still go out in order from one
producer. A commit is a barrier: every sender commits its own transaction, carrying the ledger
records of its own partitions, and the replay goes on once all have. The senders' transactions
are not one transaction, and need not be: each partition's messages and its ledger record
commit together, so after a kill the ledger is exact partition by partition, which is all the
replay's skipping needs (`ledger`). A day's ticks go out only after every sender committed
every line of the day (the commit before them is such a barrier).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from producers.replay.errors import NotAcknowledgedError, ReplayError
from producers.replay.ledger import LedgerRecord

CHUNK = 2_000  # messages handed over at once: one pickle and one pipe write per chunk


def owner(partition: int, senders: int) -> int:
    return partition % senders


def _sender_main(
    conn: Connection, bootstrap: str, ledger_topic: str, tid: str, topics: list[str], producer: dict[str, Any]
) -> None:
    """A sender process: a transactional sink fed over `conn` until told to close, or until the
    replay process is gone (a kill -9 of it must not leave senders behind)."""
    from producers.replay.kafka_sink import KafkaSink

    _exit_when_orphaned(os.getppid())

    try:
        sink = KafkaSink(bootstrap, ledger_topic, tid, **producer)
    except BaseException as exc:  # reported to the replay process, which stops with it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    send = sink.send
    try:
        while True:
            try:
                kind, payload = conn.recv()
            except EOFError:  # the replay process is gone: its open transaction is left to fencing
                return
            if kind == "send":
                try:
                    for topic, partition, key, value in payload:
                        send(topics[topic], partition, key, value)
                except NotAcknowledgedError as exc:  # said at the next commit, which then fails
                    conn.send(("error", str(exc)))
                    return
            elif kind == "commit":
                try:
                    sink.commit(payload)
                    conn.send(("ok", None))
                except NotAcknowledgedError as exc:
                    conn.send(("error", str(exc)))
                    return
            else:
                return
    finally:
        sink.close()


def _exit_when_orphaned(parent: int, every_s: float = 1.0) -> None:
    """A thread that ends this process once its parent is gone (it is re-parented then)."""

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if os.getppid() != parent:
                os._exit(1)  # the replay is gone; its open transaction is left to fencing

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


class FanOutSink:
    """`senders` processes, each a `KafkaSink` with transactional id `tid_of(k)`."""

    def __init__(
        self,
        bootstrap: str,
        ledger_topic: str,
        transactional_ids: Sequence[str],
        topics: Sequence[str],
        producer: dict[str, Any] | None = None,
    ) -> None:
        context = mp.get_context("spawn")  # a clean interpreter: no inherited client threads
        self._topics = {t: i for i, t in enumerate(topics)}
        self._senders = len(transactional_ids)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._chunks: list[list[tuple[int, int, bytes | None, bytes]]] = [[] for _ in transactional_ids]
        for tid in transactional_ids:
            mine, theirs = context.Pipe()
            proc = context.Process(
                target=_sender_main,
                args=(theirs, bootstrap, ledger_topic, tid, list(topics), producer or {}),
                daemon=True,
            )
            proc.start()
            theirs.close()
            self._conns.append(mine)
            self._procs.append(proc)
        try:
            self._gather("start")
        except BaseException:
            self.close()
            raise

    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        k = partition % self._senders
        chunk = self._chunks[k]
        chunk.append((self._topics[topic], partition, key, value))
        if len(chunk) >= CHUNK:
            self._hand_over(k, ("send", chunk))
            self._chunks[k] = []

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        """Every sender commits what it was given with the ledger records of its partitions."""
        theirs: list[list[LedgerRecord]] = [[] for _ in range(self._senders)]
        for key, value in ledger:
            theirs[int(key.rsplit(b"|", 1)[1]) % self._senders].append((key, value))
        for k in range(self._senders):
            if self._chunks[k]:
                self._hand_over(k, ("send", self._chunks[k]))
                self._chunks[k] = []
            self._hand_over(k, ("commit", theirs[k]))
        self._gather("commit")

    def _hand_over(self, k: int, message: tuple[str, Any]) -> None:
        try:
            self._conns[k].send(message)
        except (BrokenPipeError, OSError) as exc:  # the sender stopped (its Kafka failed)
            raise NotAcknowledgedError(f"sender {k} stopped (exit {self._procs[k].exitcode})") from exc

    def _gather(self, what: str) -> None:
        """One answer from every sender; the first error (after all have answered) is raised."""
        errors = []
        for k, conn in enumerate(self._conns):
            try:
                kind, detail = conn.recv()
            except EOFError:
                kind, detail = "error", f"sender {k} exited (code {self._procs[k].exitcode})"
            if kind == "error":
                errors.append(detail)
        if errors:
            cls = NotAcknowledgedError if what == "commit" else ReplayError
            raise cls(f"{len(errors)} of {self._senders} senders failed at {what}: {errors[0]}")

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):  # a sender that died already
                conn.send(("close", None))
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        for conn in self._conns:
            conn.close()

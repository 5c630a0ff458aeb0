"""A downstream consumer of `musicbox.churn-scores`: wait until day D is complete, then use it.

    python examples/wait_for_day.py --as-of 2017-05-12 [--bootstrap 127.0.0.1:9092]
        [--topic musicbox.churn-scores] [--timeout-s 600] [--out scores.csv]

It reads the topic from the beginning (`read_committed`, as every musicbox consumer), keeps the
scores of the day, and stops once every partition has carried the day's `day_complete` marker
(the worker writes it after every score of that day on that partition). A score sent twice (a
worker restarted before it committed its input) is the same (uid, as_of, model_version) with
the same probability: it is kept once. Prints what it got and, with --out, writes it as CSV.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from musicbox.markers import as_marker


@dataclass
class DayCollector:
    """Folds records of the scores topic; `complete` once every partition marked the day."""

    as_of: str
    partitions: int
    scores: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (uid, version)
    marked: dict[int, dict[str, Any]] = field(default_factory=dict)  # partition -> its marker

    def add(self, partition: int, value: bytes) -> None:
        marker = as_marker(value)
        if marker is not None:
            if marker["as_of"] == self.as_of:
                self.marked[partition] = marker
            return
        score = orjson.loads(value)
        if score["as_of"] == self.as_of:
            self.scores[(score["uid"], score["model_version"])] = score  # a copy replaces itself

    @property
    def complete(self) -> bool:
        return len(self.marked) == self.partitions

    def summary(self) -> str:
        scored = sum(m["scored"] for m in self.marked.values())
        bots = sum(m["bots_skipped"] for m in self.marked.values())
        churners = sum(s["churn"] for s in self.scores.values())
        return (
            f"{self.as_of}: {len(self.scores):,} scores ({scored:,} by the markers' count), "
            f"{bots:,} bots skipped, {churners:,} flagged as churners"
        )


def collect(bootstrap: str, topic: str, as_of: str, timeout_s: float) -> DayCollector:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            raise SystemExit(f"topic {topic} does not exist")
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        day = DayCollector(as_of, len(parts))
        deadline = time.monotonic() + timeout_s
        while not day.complete:
            if time.monotonic() > deadline:
                missing = sorted({p.partition for p in parts} - set(day.marked))
                raise SystemExit(f"{as_of} not complete after {timeout_s:.0f} s: no marker yet on {missing}")
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    day.add(tp.partition, r.value)
        return day
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--as-of", required=True, help="the day to wait for, YYYY-MM-DD")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="musicbox.churn-scores")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--out", help="write the day's scores to this CSV file")
    args = parser.parse_args(argv)
    day = collect(args.bootstrap, args.topic, args.as_of, args.timeout_s)
    print(day.summary())
    if args.out:
        with open(args.out, "w", newline="") as f:
            columns = ["uid", "as_of", "churn_probability", "churn", "model_version"]
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for s in sorted(day.scores.values(), key=lambda s: s["uid"]):
                writer.writerow({k: s[k] for k in columns})
    return 0


if __name__ == "__main__":
    sys.exit(main())

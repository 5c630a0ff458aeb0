"""Topic names of DESIGN section 4, derived from one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

# Replay topics keep every record (retention.ms=-1): their record timestamps are wall-clock
# times, but a replay may be read again long after it was written.
REPLAY_TOPIC_CONFIG = {"retention.ms": "-1"}
# The replay ledger keeps the latest record per key (what each partition holds of each day).
LEDGER_TOPIC_CONFIG = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class Topics:
    prefix: str = "musicbox."

    @property
    def plays(self) -> str:
        return f"{self.prefix}plays"

    @property
    def downloads(self) -> str:
        return f"{self.prefix}downloads"

    @property
    def searches(self) -> str:
        return f"{self.prefix}searches"

    @property
    def features(self) -> str:
        return f"{self.prefix}features"

    @property
    def churn_scores(self) -> str:
        return f"{self.prefix}churn-scores"

    @property
    def recommendations(self) -> str:
        return f"{self.prefix}recommendations"

    @property
    def model_quality(self) -> str:
        return f"{self.prefix}model-quality"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead-letters"

    @property
    def replay_ledger(self) -> str:
        """What the replay has committed of each day, per partition (producers.replay.ledger)."""
        return f"{self.prefix}replay-ledger"

    @property
    def events(self) -> tuple[str, str, str]:
        """The three event topics, which also carry the day ticks."""
        return (self.plays, self.downloads, self.searches)

    def for_event_type(self, event_type: str) -> str:
        return {"play": self.plays, "download": self.downloads, "search": self.searches}[event_type]

    def all(self) -> dict[str, dict[str, str]]:
        """Every topic `musicbox up` creates, with its topic config."""
        topics: dict[str, dict[str, str]] = {t: dict(REPLAY_TOPIC_CONFIG) for t in self.events}
        for t in (self.features, self.churn_scores, self.recommendations, self.model_quality):
            topics[t] = {}
        topics[self.dead_letters] = dict(REPLAY_TOPIC_CONFIG)
        topics[self.replay_ledger] = dict(LEDGER_TOPIC_CONFIG)
        return topics

    def partitions_of(self, topic: str, default: int) -> int:
        """Partitions to create `topic` with: one for the ledger (read whole, in order), else `default`."""
        return 1 if topic == self.replay_ledger else default

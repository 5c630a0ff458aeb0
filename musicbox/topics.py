"""Topic names of DESIGN section 4, derived from one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

# Replay topics keep every record (retention.ms=-1): their record timestamps are wall-clock
# times, but a replay may be read again long after it was written.
REPLAY_TOPIC_CONFIG = {"retention.ms": "-1"}


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
        return topics

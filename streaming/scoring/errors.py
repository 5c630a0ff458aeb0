"""The errors of the scoring worker: each says what went wrong and what to do."""

from __future__ import annotations

from musicbox.errors import MusicboxError


class ScoringError(MusicboxError):
    """Base of every error raised by `streaming.scoring`."""


class NoModelError(ScoringError):
    """No churn model can be served at start-up: none promoted, or the promoted one is refused."""


class TopicSetupError(ScoringError):
    """The worker's source topics are missing or not co-partitioned."""

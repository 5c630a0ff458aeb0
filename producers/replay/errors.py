"""Errors of the replay producer."""

from musicbox.errors import MusicboxError


class ReplayError(MusicboxError):
    """The replay cannot go on; what was acknowledged is in the state file, `--resume` continues."""


class NotAcknowledgedError(ReplayError):
    """Kafka did not acknowledge some messages: they are not counted as sent."""

"""Errors of the raw-log reader: each message says what went wrong and what to do."""

from __future__ import annotations

from musicbox.errors import MusicboxError


class RawLogError(MusicboxError):
    """Base of every raw-log reader error."""


class NoLogFilesError(RawLogError):
    """The directory (or the chosen date range) holds no log file."""


class UnreadableLogError(RawLogError):
    """A log file that cannot be opened or decompressed (damaged, or not what its name says)."""

"""Errors of the streaming feature job and the parity check."""

from musicbox.errors import MusicboxError


class StreamError(MusicboxError):
    """The streaming job cannot start or go on as configured."""

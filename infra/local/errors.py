"""Errors of the local stack (`musicbox up` / `down` / `status`)."""

from musicbox.errors import MusicboxError


class StackError(MusicboxError):
    """A local service could not be started, reached or stopped."""

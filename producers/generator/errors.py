"""Errors of `musicbox generate`: each message says what to do."""

from musicbox.errors import MusicboxError


class GeneratorError(MusicboxError):
    """A user error of the generator (bad option, unusable output directory)."""

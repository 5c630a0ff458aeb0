"""The base exception of musicbox; each package derives its own specific errors from it."""


class MusicboxError(Exception):
    """An error a user can act on: its message says what went wrong and what to do."""

"""The errors of the models package: each says what went wrong and what to do about it."""

from __future__ import annotations

from musicbox.errors import MusicboxError


class ModelError(MusicboxError):
    """Base of every error raised by `models`."""


class ModelInputError(ModelError):
    """The data handed to a model cannot be used: missing columns, no rows, a single class."""


class UnknownUserError(ModelError):
    """A recommendation was asked for a user the model was not trained on."""


class ModelNotFoundError(ModelError):
    """No such model kind or version in the registry, or none promoted yet."""


class CorruptArtifactError(ModelError):
    """A registry entry whose files are missing, altered or unreadable."""


class FeatureMismatchError(ModelError):
    """A churn model trained on another feature list than the running code's."""


class LibraryMismatchError(ModelError):
    """An artifact written under other library versions than the running ones."""

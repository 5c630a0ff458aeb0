"""Errors of the batch jobs: one base, one subclass per kind of failure. Library errors (pandas,
pyarrow, the file system) are translated where batch calls the library, with the cause chained;
every message is one line, so the CLI's error is one line."""

from __future__ import annotations

from musicbox.errors import MusicboxError

_CAUSE_CHARS = 300  # a library message can be a page (a parser's dump); the chained cause keeps it all


class BatchError(MusicboxError):
    """A batch job cannot run as asked, or its inputs cannot be used."""


class EventsTableError(BatchError):
    """The logs cannot be turned into an events table."""


class FeaturesJobError(BatchError):
    """The batch feature job cannot run as asked."""


class FeatureLogError(BatchError):
    """The feature log cannot be read or holds no usable day."""


class TrainingError(BatchError):
    """The training data or the training run asked for cannot be made from what is there."""


class ReportError(BatchError):
    """The report has nothing to show, or cannot be written."""


def cause(exc: BaseException) -> str:
    """A library error on one line: its type and message, whitespace collapsed, shortened."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _CAUSE_CHARS else text[: _CAUSE_CHARS - 3] + "..."

"""Hot reload of served models: follow the registry's CURRENT, refuse what cannot be served.

`poll()` reads CURRENT; when it names a version other than the served one, the new model is
loaded beside the old one and replaces it in one assignment, so a batch that read `served`
keeps one model from start to end and the switch falls between batches. A version the loader
refuses (damaged, other features, other libraries: models.registry's errors) is counted and
logged once, and the old model keeps serving; it is not retried (versions are immutable), but
the next version promoted is.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from models.errors import ModelError

M = TypeVar("M")
log = logging.getLogger(__name__)

UNREADABLE_CURRENT = "unreadable_current"
UNEXPECTED = "unexpected"


def _error_names(base: type[Exception]) -> list[str]:
    return [base.__name__] + [name for sub in base.__subclasses__() for name in _error_names(sub)]


# Every `reason` a refusal can carry (the metrics start each at 0, so the first refusal counts).
REFUSAL_REASONS: tuple[str, ...] = (UNREADABLE_CURRENT, UNEXPECTED, *_error_names(ModelError))


@dataclass(frozen=True)
class Served(Generic[M]):
    model: M
    version: str


@dataclass(frozen=True)
class ReloadEvent:
    kind: str
    outcome: str  # "loaded" (first model), "switched", "refused"
    version: str
    previous: str | None
    reason: str | None = None  # for a refusal: the error's class name (CorruptArtifactError, ...)
    message: str = ""


class ModelReloader(Generic[M]):
    """The served model of one kind, following `current()` through `load(version)`."""

    def __init__(
        self,
        kind: str,
        current: Callable[[], str | None],
        load: Callable[[str], M],
        on_event: Callable[[ReloadEvent], None] = lambda event: None,
    ) -> None:
        self.kind = kind
        self._current = current
        self._load = load
        self._on_event = on_event
        self.served: Served[M] | None = None
        self.refused: dict[str, str] = {}  # version -> reason
        self.switches = 0
        self.failures: Counter[str] = Counter()

    @property
    def version(self) -> str | None:
        return self.served.version if self.served else None

    def poll(self) -> ReloadEvent | None:
        """Load and switch to the promoted version if it is new; None when nothing changed."""
        try:
            wanted = self._current()
        except OSError as exc:
            return self._refuse("CURRENT", UNREADABLE_CURRENT, f"cannot read {self.kind} CURRENT: {exc}")
        if wanted is None or wanted == self.version or wanted in self.refused:
            return None
        try:
            model = self._load(wanted)
        except ModelError as exc:
            return self._refuse(wanted, type(exc).__name__, str(exc))
        except Exception as exc:  # an unforeseen failure must not take the served model down either
            log.exception("loading %s model %s failed unexpectedly", self.kind, wanted)
            return self._refuse(wanted, UNEXPECTED, f"{type(exc).__name__}: {exc}")
        previous = self.version
        self.served = Served(model, wanted)  # one assignment: readers see the old or the new model
        if previous is not None:
            self.switches += 1
        outcome = "switched" if previous is not None else "loaded"
        event = ReloadEvent(self.kind, outcome, wanted, previous)
        log.info(
            "%s model %s %s%s", self.kind, wanted, event.outcome, f" (was {previous})" if previous else ""
        )
        self._on_event(event)
        return event

    def _refuse(self, version: str, reason: str, message: str) -> ReloadEvent:
        if version != "CURRENT":
            self.refused[version] = reason
        self.failures[reason] += 1
        keeps = f"; still serving {self.version}" if self.version else "; no model is served"
        log.error("refused %s model %s (%s): %s%s", self.kind, version, reason, message, keeps)
        event = ReloadEvent(self.kind, "refused", version, self.version, reason, message)
        self._on_event(event)
        return event

"""Whether a newly trained model replaces the served one, and the record of why (or why not).

The comparison is fair only on the same data: the served model is scored on the NEW model's
test data (champion vs challenger), and that score, not the one in its old metadata, goes to
`models.registry.should_promote`. The decision is stored in the new version's metadata
(`metrics["promotion"]`) before the version is published, and printed by the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.registry import DEFAULT_TOLERANCE, promote, should_promote

MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class ServedScore:
    """The served model measured on the new model's test data."""

    version: str
    value: float | None  # None when it could not be loaded or scored here
    recorded: float | None  # the same metric as its own metadata recorded it (other test data)
    note: str = ""  # why `value` is None


@dataclass(frozen=True)
class PromotionDecision:
    kind: str
    metric: str
    new_value: float
    served_version: str | None
    served_value: float | None
    served_recorded: float | None
    tolerance: float
    mode: str
    promote: bool
    reason: str
    decided_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def decide(
    kind: str,
    metric: str,
    new_value: float,
    served: ServedScore | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    mode: str = "auto",
    test_data: str = "",
    now: Callable[[], datetime] = _utc_now,
) -> PromotionDecision:
    """The decision for a new `kind` model whose `metric` (higher is better) is `new_value`."""
    if mode not in MODES:
        raise ValueError(f"promotion mode {mode!r} is not one of {MODES}")
    on = f" (both on {test_data})" if test_data and served is not None and served.value is not None else ""
    if served is not None and served.value is None:
        ok, why = (
            True,
            f"the served version {served.version} cannot be scored here ({served.note}): replace it",
        )
    else:
        served_metrics = None if served is None or served.value is None else {metric: served.value}
        ok, why = should_promote({metric: new_value}, served_metrics, tolerance, metric)
        why += on
    if mode == "always":
        ok, why = True, f"--promote always (the comparison said: {why})"
    elif mode == "never":
        ok, why = False, f"--promote never (the comparison said: {why})"
    return PromotionDecision(
        kind=kind,
        metric=metric,
        new_value=float(new_value),
        served_version=served.version if served else None,
        served_value=served.value if served else None,
        served_recorded=served.recorded if served else None,
        tolerance=tolerance,
        mode=mode,
        promote=ok,
        reason=why,
        decided_at=now().isoformat(),
    )


def apply(root: Path, kind: str, version: str, decision: PromotionDecision) -> str | None:
    """Switch CURRENT to `version` when the decision says so; returns the version it replaced."""
    return promote(root, kind, version) if decision.promote else None


def summary_row(decision: PromotionDecision, version: str) -> tuple[str, ...]:
    """One line of a command's end-of-run table: kind, version, metric values, decision, reason."""

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    served = decision.served_version or "(none)"
    return (
        decision.kind,
        version,
        f"{decision.metric} {num(decision.new_value)}",
        f"{served}: {num(decision.served_value)}",
        "promoted" if decision.promote else "kept the served one",
        decision.reason,
    )


SUMMARY_COLUMNS = ("model", "new version", "new", "served (same test data)", "decision", "why")

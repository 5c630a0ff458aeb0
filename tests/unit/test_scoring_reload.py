"""Hot reload: a new CURRENT switches the model; a refused artifact is counted, the old keeps serving."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from models.registry import LoadedChurn, current_version, load_churn, promote
from streaming.scoring.reload import ModelReloader, ReloadEvent
from tests.fixtures.scoring import save_churn_model


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, list[str]]:
    """A registry with three churn versions: good (promoted), good, and damaged after saving."""
    first = save_churn_model(tmp_path, seed=0, hour=9)
    second = save_churn_model(tmp_path, seed=1, hour=10, promote_it=False)
    broken = save_churn_model(tmp_path, seed=2, hour=11, promote_it=False)
    (tmp_path / "churn" / broken / "churn.joblib").write_bytes(b"not a model")
    return tmp_path, [first, second, broken]


def reloader(root: Path, events: list[ReloadEvent]) -> ModelReloader[LoadedChurn]:
    return ModelReloader(
        "churn", partial(current_version, root, "churn"), partial(load_churn, root), events.append
    )


def test_a_new_current_version_is_switched_to(registry: tuple[Path, list[str]]) -> None:
    root, (first, second, _) = registry
    events: list[ReloadEvent] = []
    r = reloader(root, events)
    assert r.poll() is not None and r.version == first
    assert r.poll() is None  # nothing changed: nothing loaded again
    promote(root, "churn", second)
    event = r.poll()
    assert event is not None and (event.outcome, event.version, event.previous) == ("switched", second, first)
    assert r.version == second and r.served is not None and r.served.model.metadata.version == second
    assert r.switches == 1 and [e.outcome for e in events] == ["loaded", "switched"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        # the artifact's bytes changed after saving: its sha256 no longer matches
        (lambda d: (d / "churn.joblib").write_bytes(b"garbage"), "CorruptArtifactError"),
        # made for another feature list (as if the feature contract moved on)
        (lambda d: _edit(d, lambda m: m.update(feature_list_hash="0" * 16)), "FeatureMismatchError"),
        # saved under another scikit-learn: unpickling it would be unsafe
        (lambda d: _edit(d, lambda m: m["library_versions"].update(sklearn="0.1")), "LibraryMismatchError"),
        # CURRENT names a version that is not there
        (None, "ModelNotFoundError"),
    ],
)
def test_a_refused_version_is_counted_and_the_old_model_keeps_serving(
    registry: tuple[Path, list[str]], damage, reason: str
) -> None:
    root, (first, second, _) = registry
    events: list[ReloadEvent] = []
    r = reloader(root, events)
    r.poll()
    if damage is None:
        (root / "churn" / "CURRENT").write_text("20990101T000000Z-deadbeef\n")
    else:
        damage(root / "churn" / second)
        promote(root, "churn", second)
    event = r.poll()
    assert event is not None and event.outcome == "refused" and event.reason == reason
    assert r.version == first and r.served is not None and r.served.model.metadata.version == first
    assert r.failures == {reason: 1}
    assert r.poll() is None and r.failures == {reason: 1}  # refused once, not retried every poll


def test_after_a_refusal_the_next_good_version_is_served(registry: tuple[Path, list[str]]) -> None:
    root, (first, second, broken) = registry
    r = reloader(root, [])
    r.poll()
    promote(root, "churn", broken)
    assert r.poll() is not None and r.version == first
    promote(root, "churn", second)
    assert r.poll() is not None and r.version == second and r.switches == 1


def test_nothing_promoted_serves_nothing_and_says_so(tmp_path: Path) -> None:
    r = reloader(tmp_path, [])
    assert r.poll() is None and r.served is None


def test_an_unexpected_loader_failure_is_a_refusal_too() -> None:
    # Whatever goes wrong in a loader, the served model must survive it.
    def load(version: str) -> str:
        if version == "v2":
            raise MemoryError("no room")
        return f"model {version}"

    current = iter(["v1", "v2"])
    r: ModelReloader[str] = ModelReloader("churn", lambda: next(current), load)
    r.poll()
    event = r.poll()
    assert event is not None and event.reason == "unexpected" and r.version == "v1"


def _edit(directory: Path, change) -> None:
    path = directory / "metadata.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))

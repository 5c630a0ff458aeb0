"""The model registry of DESIGN section 7: `<root>/<kind>/<version>/` + `<root>/<kind>/CURRENT`.

Each version directory holds the artifact files and `metadata.json` (kind, version, created_at,
training window, data fingerprint, metrics, feature list and hash, library versions, and the
sha256 of every artifact file). A version directory appears whole (written under a temporary
name, then renamed); CURRENT is replaced atomically (temp file + os.replace), so a reader sees
the old or the new version, never half of one. Loaders refuse, with a specific error, an entry
that is missing or altered, or was made for another feature list or other library versions:
joblib (pickle) is only safe under the versions that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.exceptions import InconsistentVersionWarning

from models.als import AlsModel
from models.churn import ENCODED_NAMES, ChurnModel
from models.errors import CorruptArtifactError, FeatureMismatchError, LibraryMismatchError, ModelNotFoundError
from models.metadata import ModelMetadata, TrainingInfo, library_versions, make_version, sha256_file
from models.popularity import PopularityModel
from musicbox.features import FEATURE_NAMES, feature_list_hash

KINDS = ("churn", "als")
CURRENT = "CURRENT"
METADATA = "metadata.json"
# What each kind's artifact depends on; a difference in any of these refuses the load.
CHECKED = {
    "churn": ("python", "sklearn", "numpy", "scipy", "joblib"),
    "als": ("python", "implicit", "numpy", "scipy"),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def publish(
    root: Path,
    kind: str,
    write: Callable[[Path], list[str]],
    info: TrainingInfo,
    model: dict[str, Any],
    feature_names: tuple[str, ...] | None,
    now: Callable[[], datetime],
) -> ModelMetadata:
    """Write a new version: `write(directory)` puts the artifact files there and names them."""
    kind_dir = root / kind
    kind_dir.mkdir(parents=True, exist_ok=True)
    tmp = kind_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        artifacts = {name: sha256_file(tmp / name) for name in write(tmp)}
        created_at = now()
        version = make_version(
            created_at, hashlib.sha256(json.dumps(artifacts, sort_keys=True).encode()).hexdigest()
        )
        metadata = ModelMetadata(
            kind=kind,
            version=version,
            created_at=created_at.astimezone(UTC).isoformat(),
            training_window=list(info.training_window),
            data_fingerprint=info.data_fingerprint,
            metrics=info.metrics,
            feature_names=list(feature_names) if feature_names is not None else None,
            feature_list_hash=feature_list_hash(feature_names) if feature_names is not None else None,
            library_versions=library_versions(),
            artifacts=artifacts,
            model=model,
        )
        (tmp / METADATA).write_text(metadata.to_json())
        os.rename(tmp, kind_dir / version)  # fails if the version exists: versions are never rewritten
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metadata


def list_versions(root: Path, kind: str) -> list[str]:
    kind_dir = root / kind
    if not kind_dir.is_dir():
        return []
    return sorted(p.name for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def current_version(root: Path, kind: str) -> str | None:
    """The served version named by CURRENT, or None before the first promotion."""
    try:
        return (root / kind / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def promote(root: Path, kind: str, version: str) -> str | None:
    """Make `version` the served one (atomic switch of CURRENT); returns the version it replaced."""
    read_metadata(root, kind, version)  # refuse to point CURRENT at something that is not there
    previous = current_version(root, kind)
    tmp = root / kind / f".{CURRENT}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / kind / CURRENT)
    finally:
        tmp.unlink(missing_ok=True)
    return previous


def read_metadata(root: Path, kind: str, version: str) -> ModelMetadata:
    directory = root / kind / version
    if not directory.is_dir():
        known = ", ".join(list_versions(root, kind)) or "none"
        raise ModelNotFoundError(
            f"no {kind} model version {version!r} under {root / kind} (versions: {known})"
        )
    try:
        metadata = ModelMetadata.from_json((directory / METADATA).read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptArtifactError(
            f"{directory / METADATA} is missing or unreadable ({exc}): retrain, or promote another version"
        ) from exc
    if metadata.kind != kind or metadata.version != version:
        raise CorruptArtifactError(
            f"{directory / METADATA} describes {metadata.kind}/{metadata.version}, not {kind}/{version}"
        )
    return metadata


def resolve(root: Path, kind: str, version: str | None) -> str:
    """`version`, or the promoted one when None."""
    if version is not None:
        return version
    served = current_version(root, kind)
    if served is None:
        raise ModelNotFoundError(
            f"no {kind} model is promoted under {root / kind}: "
            f"train one (`musicbox batch train-{kind}`) and promote it"
        )
    return served


def verify(
    root: Path,
    metadata: ModelMetadata,
    feature_names: tuple[str, ...] | None = FEATURE_NAMES,
    running: Mapping[str, str] | None = None,
) -> Path:
    """Refuse an entry whose files changed, or made for other features or libraries; returns its directory."""
    directory = root / metadata.kind / metadata.version
    for name, expected in metadata.artifacts.items():
        path = directory / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise CorruptArtifactError(
                f"{path} is {'missing' if actual == 'missing' else 'altered (sha256 differs)'}: "
                "the entry is damaged; retrain, or promote another version"
            )
    if feature_names is not None and metadata.feature_list_hash != feature_list_hash(feature_names):
        stored = metadata.feature_names or []
        added = [n for n in feature_names if n not in stored]
        removed = [n for n in stored if n not in feature_names]
        raise FeatureMismatchError(
            f"{metadata.kind} model {metadata.version} was trained on another feature list (hash "
            f"{metadata.feature_list_hash} vs running {feature_list_hash(feature_names)}; new: {added}, "
            f"gone: {removed}, else reordered): retrain it on the current features"
        )
    now = dict(running) if running is not None else library_versions()
    differ = {
        lib: (metadata.library_versions.get(lib), now.get(lib))
        for lib in CHECKED[metadata.kind]
        if metadata.library_versions.get(lib) != now.get(lib)
    }
    if differ:
        text = ", ".join(
            f"{lib} {saved} (artifact) vs {live} (running)" for lib, (saved, live) in differ.items()
        )
        raise LibraryMismatchError(
            f"{metadata.kind} model {metadata.version} was saved under other library versions: {text}. "
            "Retrain under the running versions, or install the recorded ones."
        )
    return directory


# How much worse on the promotion metric a model on fresher data may score and still be served.
DEFAULT_TOLERANCE = 0.005


def should_promote(
    new_metrics: Mapping[str, float],
    served_metrics: Mapping[str, float] | None,
    tolerance: float = DEFAULT_TOLERANCE,
    metric: str = "roc_auc",
) -> tuple[bool, str]:
    """Promote when nothing is served, or when the new model is at most `tolerance` worse on
    `metric` (higher is better): a model on fresher data is worth a hair of offline score."""
    if metric not in new_metrics:
        return False, f"the new model has no {metric} metric"
    new = float(new_metrics[metric])
    if np.isnan(new):
        return False, f"the new model's {metric} is undefined"
    if served_metrics is None or metric not in served_metrics:
        return True, f"nothing comparable is served; new {metric} {new:.4f}"
    served = float(served_metrics[metric])
    if new >= served - tolerance:
        return True, f"new {metric} {new:.4f} vs served {served:.4f} (tolerance {tolerance})"
    return False, f"new {metric} {new:.4f} is worse than served {served:.4f} by more than {tolerance}"


CHURN_FILE = "churn.joblib"


@dataclass(frozen=True)
class LoadedChurn:
    model: ChurnModel
    metadata: ModelMetadata


@dataclass(frozen=True)
class LoadedAls:
    als: AlsModel
    popularity: PopularityModel  # the fallback for users ALS does not know, trained on the same data
    metadata: ModelMetadata


def save_churn(
    root: Path, model: ChurnModel, info: TrainingInfo, now: Callable[[], datetime] = _utc_now
) -> ModelMetadata:
    """A new churn version: the sklearn estimator with joblib (sklearn's way), the rest as JSON."""

    def write(directory: Path) -> list[str]:
        joblib.dump(model.estimator, directory / CHURN_FILE)
        return [CHURN_FILE]

    spec = {
        "family": model.family,
        "params": model.params,
        "threshold": model.threshold,
        "exclude_bots": model.exclude_bots,
        "encoded_names": list(model.encoded_names),
    }
    return publish(root, "churn", write, info, spec, model.feature_names, now)


def load_churn(
    root: Path,
    version: str | None = None,
    *,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    running: Mapping[str, str] | None = None,
) -> LoadedChurn:
    """The churn model of `version` (default: the promoted one), after every refusal check."""
    metadata = read_metadata(root, "churn", resolve(root, "churn", version))
    directory = verify(root, metadata, feature_names, running)
    spec = metadata.model
    if list(spec.get("encoded_names", [])) != list(ENCODED_NAMES):
        raise FeatureMismatchError(
            f"churn model {metadata.version} encodes its input as {spec.get('encoded_names')}, "
            f"the running code as {list(ENCODED_NAMES)}: retrain it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            estimator = joblib.load(directory / CHURN_FILE)
        model = ChurnModel(
            family=spec["family"],
            params=spec["params"],
            estimator=estimator,
            threshold=float(spec["threshold"]),
            exclude_bots=bool(spec["exclude_bots"]),
            feature_names=tuple(metadata.feature_names or ()),
        )
    except InconsistentVersionWarning as exc:
        raise LibraryMismatchError(f"churn model {metadata.version}: {exc}") from exc
    except Exception as exc:
        raise CorruptArtifactError(
            f"cannot read churn model {metadata.version} from {directory} ({exc}): "
            "retrain, or promote another version"
        ) from exc
    return LoadedChurn(model, metadata)


def save_als(
    root: Path,
    als: AlsModel,
    popularity: PopularityModel,
    info: TrainingInfo,
    now: Callable[[], datetime] = _utc_now,
) -> ModelMetadata:
    """A new ALS version: implicit's npz, id maps, training ratings and the popularity fallback."""

    def write(directory: Path) -> list[str]:
        return [*als.save(directory), popularity.save(directory)]

    spec = {"params": asdict(als.params), "users": len(als.user_ids), "items": len(als.item_ids)}
    return publish(root, "als", write, info, spec, None, now)


def load_als(
    root: Path, version: str | None = None, *, running: Mapping[str, str] | None = None
) -> LoadedAls:
    """The ALS and popularity models of `version` (default: the promoted one), after the checks."""
    metadata = read_metadata(root, "als", resolve(root, "als", version))
    directory = verify(root, metadata, None, running)
    try:
        return LoadedAls(AlsModel.load(directory), PopularityModel.load(directory), metadata)
    except Exception as exc:
        raise CorruptArtifactError(
            f"cannot read ALS model {metadata.version} from {directory} ({exc}): "
            "retrain, or promote another version"
        ) from exc

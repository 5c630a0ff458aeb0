"""What the registry records about a model: metadata, library versions, data fingerprints.

Kept apart from the registry's file layout so that a report or a check can read and compare
metadata without touching artifacts.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "implicit": "implicit",
    "numpy": "numpy",
    "scipy": "scipy",
    "joblib": "joblib",
}


def library_versions() -> dict[str, str]:
    """The running versions: Python as major.minor (patch releases do not change pickles)."""
    running = {"python": ".".join(platform.python_version_tuple()[:2])}
    running.update({name: dist_version(dist) for name, dist in DISTRIBUTIONS.items()})
    return running


def fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of a training table (columns, values, row order): which data made a model."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def make_version(created_at: datetime, digest: str) -> str:
    """Sortable version names: `20261128T211500Z-1a2b3c4d`."""
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:8]}"


@dataclass(frozen=True)
class TrainingInfo:
    """What the trainer knows about a model, handed to `save_*`."""

    training_window: tuple[str, str]  # first and last day of the data it learned from
    data_fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    kind: str
    version: str
    created_at: str
    training_window: list[str]
    data_fingerprint: str
    metrics: dict[str, Any]
    feature_names: list[str] | None  # churn: the feature contract it was trained on
    feature_list_hash: str | None
    library_versions: dict[str, str]
    artifacts: dict[str, str]  # file name -> sha256
    model: dict[str, Any]  # what rebuilds the model object around its artifact

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=_plain, allow_nan=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def _plain(value: Any) -> Any:
    """JSON for what metrics hold: numpy scalars and arrays, dataclasses, dates."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

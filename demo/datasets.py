"""The demo's data sets: which profile, and the generated logs cached by their generator arguments.

A data set lives in `<demo var dir>/datasets/<key>/`, its key naming every argument the demo
passes to `musicbox generate` (readable, then a hash of them all). It counts as there when the
generator's `manifest.json`, which it writes last, is in that folder and names the same users,
days, seed, bot share and compression: a second demo with the same arguments skips generation,
and any other argument gets a folder of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from musicbox.profiles import PROFILES

MANIFEST = "manifest.json"  # the generator's: written last, so its presence means "complete"
# The demo's profiles: the generator's sizes, the bot share the demo asks for, its own var dir.
# The study sample is bots removed (the issue runs it with --bot-share 0); the small demo keeps
# the generator's default share, so the bot paths (flagged, counted, not scored) run too.
DEMO_PROFILES = ("demo", "study-sample")
BOT_SHARE = {"demo": 0.01, "study-sample": 0.0}


@dataclass(frozen=True)
class DatasetSpec:
    """Every argument the demo passes to `musicbox generate`: equal specs, equal logs."""

    profile: str
    users: int
    days: int
    seed: int
    bot_share: float
    dirt: str = "all"
    compression: str = "gz"

    @classmethod
    def for_profile(cls, profile: str, users: int | None, seed: int) -> DatasetSpec:
        size = PROFILES[profile]
        return cls(profile, users if users is not None else size.users, size.days, seed, BOT_SHARE[profile])

    def key(self) -> str:
        """The folder name: the arguments that vary in words, then a hash of them all."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return (
            f"{self.users}u-{self.days}d-seed{self.seed}-bots{self.bot_share:g}-{self.compression}-{digest}"
        )

    def argv(self, out: Path) -> list[str]:
        """`musicbox generate ...` writing this data set into `out`."""
        return [
            "generate", "--profile", self.profile, "--users", str(self.users), "--days", str(self.days),
            "--seed", str(self.seed), "--bot-share", repr(self.bot_share), "--dirt", self.dirt,
            "--compression", self.compression, "--out", str(out), "--force",
        ]  # fmt: skip

    def matches(self, manifest: dict[str, Any]) -> bool:
        """Whether a generator manifest describes this data set (the dirt classes it lists are the
        generator's names for `dirt`, so the folder's key stands for that one)."""
        arguments = manifest.get("arguments", {})
        wanted = {
            "users": self.users,
            "days": self.days,
            "seed": self.seed,
            "bot_share": self.bot_share,
            "compression": self.compression,
        }
        return all(arguments.get(name) == value for name, value in wanted.items())


def cached(folder: Path, spec: DatasetSpec) -> bool:
    """True when `folder` holds the complete data set `spec` (its manifest names it)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and spec.matches(manifest)


def var_dir_name(profile: str) -> str:
    """The demo's own var dir under the user's: `demo` as always, `demo-<profile>` for another
    profile, so a large run never replaces the small demo's state (nor a user's var/models)."""
    return "demo" if profile == "demo" else f"demo-{profile}"

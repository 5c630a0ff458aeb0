"""The feature contract of DESIGN section 5: every feature name is declared here, once.

Batch training sets, the streaming job, the feature topic, the models and the parity check
all take their column lists from this module; nothing retypes a feature name.
"""

from __future__ import annotations

import hashlib

WINDOWS_D: tuple[int, ...] = (1, 3, 7, 14, 30)
LOOKBACK_D = max(WINDOWS_D)  # a user is in the population while active in the last 30 days
COUNTED = ("plays", "downloads", "searches")  # one event count per type and window
RECENCY = ("days_since_play", "days_since_download", "days_since_search")
NEVER_D = LOOKBACK_D + 1  # days_since_* of a user without such an event in the 30 days

COUNT_FEATURES: tuple[str, ...] = tuple(f"{kind}_{w}d" for kind in COUNTED for w in WINDOWS_D)
PLAY_SECONDS_FEATURES: tuple[str, ...] = tuple(f"play_seconds_{w}d" for w in WINDOWS_D)

# Every numeric model input, in model column order.
NUMERIC_FEATURES: tuple[str, ...] = COUNT_FEATURES + PLAY_SECONDS_FEATURES + RECENCY
DEVICE = "device"  # categorical: the device of most plays in the window, or "unknown"
DEVICE_UNKNOWN = "unknown"
IS_BOT = "is_bot"  # causal bot flag: plays_30d above the configured threshold

FEATURE_NAMES: tuple[str, ...] = (*NUMERIC_FEATURES, DEVICE, IS_BOT)

# Keys and bookkeeping columns of a feature row (DESIGN section 4: `musicbox.features`).
UID = "uid"
AS_OF = "as_of"
COMPUTED_AT_MS = "computed_at_ms"
LABEL = "churn"

FEATURE_ROW_COLUMNS: tuple[str, ...] = (UID, AS_OF, *FEATURE_NAMES)


def feature_list_hash(names: tuple[str, ...] = FEATURE_NAMES) -> str:
    """A short stable hash of a feature list, stored with every model to refuse a mismatch."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]

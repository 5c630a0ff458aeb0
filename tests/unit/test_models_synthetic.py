"""Small synthetic inputs for the model tests, and checks that they hold what the tests assume.

A churn feature table where churn depends on recency and activity (plus noise), and a play /
download event log with two user groups that each listen to their own block of songs.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from musicbox.features import (
    AS_OF,
    COUNTED,
    DEVICE,
    IS_BOT,
    LABEL,
    NEVER_D,
    NUMERIC_FEATURES,
    RECENCY,
    UID,
    WINDOWS_D,
)

BOT_PLAYS_30D = 1_400


def churn_table(
    n_users: int = 1_200, seed: int = 0, as_of: str = "2017-04-28", bots: int = 15, uid_start: int = 1
) -> pd.DataFrame:
    """One snapshot of feature rows; P(churn) rises with days since the last play and falls with plays."""
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(mean=1.0, sigma=1.0, size=n_users)  # plays a day while active
    last_play = np.minimum(rng.geometric(0.12, size=n_users), NEVER_D)  # days_since_play, 31 = none
    data: dict[str, np.ndarray] = {UID: np.arange(uid_start, uid_start + n_users)}
    for kind, recency, share, extra in zip(COUNTED, RECENCY, (1.0, 0.05, 0.08), (0, 4, 2), strict=True):
        since = np.minimum(last_play + rng.geometric(1 / (1 + extra), size=n_users) - 1, NEVER_D)
        shorter = np.zeros(n_users, dtype=np.int64)
        for w in WINDOWS_D:  # windows nest: a longer window never counts fewer events
            active_days = np.clip(w - since + 1, 0, None)
            shorter = np.maximum(rng.poisson(rate * share * active_days) + (active_days > 0), shorter)
            data[f"{kind}_{w}d"] = shorter
        data[recency] = since
    for w in WINDOWS_D:
        data[f"play_seconds_{w}d"] = data[f"plays_{w}d"] * rng.uniform(60, 240, size=n_users)
    table = pd.DataFrame(data)
    logit = 0.25 * (last_play - 6) - 0.8 * np.log1p(table["plays_7d"]) + 1.5 + rng.normal(0, 1.0, n_users)
    table[LABEL] = (logit > 0).astype(int)
    table[DEVICE] = rng.choice(["ar", "ip", "mc", "unknown"], p=[0.8, 0.15, 0.01, 0.04], size=n_users)
    table[IS_BOT] = False
    if bots:
        bot_rows = rng.choice(n_users, size=bots, replace=False)
        table.loc[bot_rows, "plays_30d"] = BOT_PLAYS_30D + 500
        table.loc[bot_rows, IS_BOT] = True
        table.loc[bot_rows, LABEL] = 1  # bots vanish when blocked: a label that would teach nonsense
    table.insert(1, AS_OF, as_of)
    return table[[UID, AS_OF, *NUMERIC_FEATURES, DEVICE, IS_BOT, LABEL]]


def churn_snapshots(days: list[str], n_users: int = 800, seed: int = 0) -> pd.DataFrame:
    """Several snapshots of the same users (uids repeat across as-of days)."""
    return pd.concat(
        [churn_table(n_users, seed + i, day, bots=5) for i, day in enumerate(days)], ignore_index=True
    )


def block_events(
    users_per_group: int = 30,
    songs_per_group: int = 20,
    days: int = 10,
    seed: int = 0,
    start: str = "2017-04-01",
) -> pd.DataFrame:
    """Plays and downloads where users 1.. listen to songs 1001.. and users 2001.. to songs 3001.."""
    rng = np.random.default_rng(seed)
    rows = []
    first = date.fromisoformat(start)
    for group, (uid0, song0) in enumerate(((1, 1001), (2001, 3001))):
        for u in range(uid0, uid0 + users_per_group):
            for _ in range(rng.integers(8, 16)):
                song = int(song0 + rng.integers(0, songs_per_group))
                day = (first + timedelta(days=int(rng.integers(0, days)))).isoformat()
                kind = "download" if rng.random() < 0.1 else "play"
                play_s = int(rng.integers(0, 300)) if kind == "play" else None
                length_s = 200 + 10 * group if kind == "play" else None
                rows.append((kind, u, song, play_s, length_s, day))
    return pd.DataFrame(rows, columns=["type", "uid", "song_id", "play_time_s", "song_length_s", "date"])


def test_churn_table_label_follows_recency() -> None:
    # The churn tests rely on this: long-silent users churn far more often than recent ones.
    table = churn_table()
    recent = table.loc[table["days_since_play"] <= 3, LABEL].mean()
    silent = table.loc[table["days_since_play"] >= 14, LABEL].mean()
    assert silent > recent + 0.3


def test_churn_table_windows_nest() -> None:
    # A 30-day count is never below the 7-day count of the same user: the table is plausible.
    table = churn_table()
    assert (table["plays_30d"] >= table["plays_7d"]).all()
    assert (table["downloads_14d"] >= table["downloads_1d"]).all()

"""Churn labels derived from the streaming job's feature log, whose rows carry no `churn` column.

The rule (the same label as DESIGN 5, read off the log itself): a user of day D churned when no
row of days D+1..D+14 shows any 1-day count above zero. A user ABSENT from the log on a later
day E had no event in E-29..E (the log holds every user active in the last 30 days), so in
particular none on E: absence counts as an inactive day, not as missing data. Missing data is
a missing DAY: D gets a label only when every day D+1..D+14 is in the log (its partition is
marked done), otherwise `churn` stays null and the row cannot be trained or tested on.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from batch.errors import FeatureLogError, cause
from musicbox.features import AS_OF, FEATURE_ROW_COLUMNS, LABEL, UID

ONE_DAY_COUNTS = ("plays_1d", "downloads_1d", "searches_1d")
DONE_MARKER = "_SUCCESS"  # the streaming job marks a finished day partition with it


def log_days(root: Path) -> list[date]:
    """The days of the log whose partition is complete (`as_of=YYYY-MM-DD/_SUCCESS`)."""
    if not root.is_dir():
        raise FeatureLogError(
            f"{root} is not a directory: pass the streaming job's feature log (MUSICBOX_VAR_DIR/feature-log)"
        )
    days = []
    for part in root.glob(f"{AS_OF}=*"):
        if (part / DONE_MARKER).is_file():
            try:
                days.append(date.fromisoformat(part.name.split("=", 1)[1]))
            except ValueError:
                continue  # not a partition of ours
    return sorted(days)


def read_feature_log(root: Path, days: list[date] | None = None) -> pd.DataFrame:
    """Feature rows of the complete days of the log (of `days` only, if given); `as_of` as a date."""
    done = log_days(root)
    wanted = done if days is None else [d for d in done if d in set(days)]
    frames = []
    for day in wanted:
        part = root / f"{AS_OF}={day.isoformat()}"
        if not any(part.glob("*.parquet")):
            continue  # a day with no active user: an empty, but present, partition
        try:
            frame = pd.read_parquet(part)
            frame[AS_OF] = day
            frames.append(frame[list(FEATURE_ROW_COLUMNS)])
        except (OSError, ValueError, KeyError) as exc:  # unreadable Parquet, or not our columns
            raise FeatureLogError(f"{part} is not a readable feature log partition ({cause(exc)})") from exc
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FEATURE_ROW_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def labelled_log_days(days: list[date], label_window_d: int) -> list[date]:
    """The days of `days` whose whole label window D+1..D+label_window_d is also in `days`."""
    present = set(days)
    return [d for d in days if all(d + timedelta(days=k) in present for k in range(1, label_window_d + 1))]


def derive_labels(rows: pd.DataFrame, days: list[date], label_window_d: int) -> pd.DataFrame:
    """`rows` (uid, as_of, ONE_DAY_COUNTS, ...) with a `churn` column: 1/0, null when unknown.

    `rows` must hold every row of the log for the days of each label window; `days` are the
    days present in the log (an absent day makes the labels that need it unknown).
    """
    day_of_row = pd.to_datetime(rows[AS_OF]).dt.normalize().to_numpy()  # datetime64: fast shifts
    is_active = (rows[list(ONE_DAY_COUNTS)].sum(axis=1) > 0).to_numpy()
    active_uid, active_day = rows[UID].to_numpy()[is_active], day_of_row[is_active]
    # (uid, D) pairs with activity on some D+k, k = 1..window: shift each active day back by k.
    later = pd.MultiIndex.from_arrays(
        [
            np.tile(active_uid, label_window_d),
            np.concatenate([active_day - np.timedelta64(k, "D") for k in range(1, label_window_d + 1)]),
        ]
    ).unique()
    active_later = pd.MultiIndex.from_arrays([rows[UID].to_numpy(), day_of_row]).isin(later)
    labelled = np.array(labelled_log_days(days, label_window_d), dtype="datetime64[ns]")
    known = np.isin(day_of_row, labelled)
    churn = np.where(known, np.where(active_later, 0.0, 1.0), np.nan)
    return rows.assign(**{LABEL: churn})

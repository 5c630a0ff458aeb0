"""The two evaluation setups of the churn study, and the validation split used to pick thresholds.

(a) `time_split`: train on earlier as-of snapshots, test on a later one. Only snapshots whose
    label window has closed by the test day are used for training (as_of <= test - 14 days):
    on the test day nobody knows the labels of later snapshots yet.
(b) `study_split`: the study's own setup, one snapshot, 80/20 stratified split, fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.churn import labels
from models.errors import ModelInputError
from musicbox.features import AS_OF, UID

STUDY_AS_OF = date(2017, 4, 28)
STUDY_SEED = 42  # the study's own seed is not known; any fixed one makes the split repeatable
LABEL_WINDOW_D = 14


@dataclass(frozen=True)
class Split:
    """A named train/test pair of feature tables, with the sentence a report prints about it."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    description: str


def as_of_days(table: pd.DataFrame) -> pd.Series:
    """The as-of column as ISO day strings, whatever it was stored as (str, date, timestamp)."""
    if AS_OF not in table.columns:
        raise ModelInputError(f"the feature table has no `{AS_OF}` column: it must say which day each row is")
    return pd.to_datetime(table[AS_OF]).dt.strftime("%Y-%m-%d")


def time_split(
    table: pd.DataFrame, test_as_of: date = STUDY_AS_OF, label_window_d: int = LABEL_WINDOW_D
) -> Split:
    """Train on the snapshots whose labels are known on `test_as_of`, test on `test_as_of`."""
    days = as_of_days(table)
    test_day = test_as_of.isoformat()
    last_train_day = (test_as_of - timedelta(days=label_window_d)).isoformat()
    in_train, in_test = (days <= last_train_day).to_numpy(), (days == test_day).to_numpy()
    train, test = table.loc[in_train], table.loc[in_test]
    if test.empty:
        raise ModelInputError(
            f"no feature rows for the test snapshot {test_day}: build features as of that day"
        )
    if train.empty:
        raise ModelInputError(
            f"no training snapshots on or before {last_train_day} (the test day minus the "
            f"{label_window_d}-day label window): build features for earlier as-of days"
        )
    train_days = sorted(set(days[in_train]))
    text = (
        f"time-based: train on {len(train_days)} snapshot(s) {train_days[0]}..{train_days[-1]}, "
        f"test on {test_day}"
    )
    return Split("time", train, test, text)


def study_split(
    table: pd.DataFrame, as_of: date = STUDY_AS_OF, test_fraction: float = 0.2, seed: int = STUDY_SEED
) -> Split:
    """The study's setup: the rows of one snapshot, split at random, stratified on the label."""
    if AS_OF in table.columns:
        snapshot = table.loc[(as_of_days(table) == as_of.isoformat()).to_numpy()]
    else:
        snapshot = table
    if snapshot.empty:
        raise ModelInputError(f"no feature rows as of {as_of.isoformat()}: build features for that day")
    try:
        train, test = train_test_split(
            snapshot, test_size=test_fraction, stratify=labels(snapshot), random_state=seed
        )
    except ValueError as exc:
        raise ModelInputError(
            f"cannot split {len(snapshot)} rows {1 - test_fraction:.0%}/{test_fraction:.0%}: {exc}"
        ) from exc
    shares = f"{1 - test_fraction:.0%}/{test_fraction:.0%}"
    text = f"study: snapshot {as_of.isoformat()}, {shares} stratified, seed {seed}"
    return Split("study", train, test, text)


def validation_split(
    train: pd.DataFrame, fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit rows, validation rows), stratified on the label, a user's rows all on one side.

    Keeping users whole matters when several snapshots hold the same user: otherwise the
    validation rows would be near-copies of training rows and the chosen threshold too optimistic.
    """
    y = labels(train)
    if UID in train.columns:
        uids = train[UID].to_numpy()
        # One stratum per user: did the user ever churn in these snapshots.
        per_user = pd.Series(y, index=uids).groupby(level=0).max()
        keys, strata = per_user.index.to_numpy(), per_user.to_numpy()
    else:
        uids = np.arange(len(train))
        keys, strata = uids, y
    try:
        _, val_keys = train_test_split(keys, test_size=fraction, stratify=strata, random_state=seed)
    except ValueError as exc:
        raise ModelInputError(f"too few rows ({len(train)}) to hold out a validation set: {exc}") from exc
    in_val = np.isin(uids, val_keys)
    return train.loc[~in_val], train.loc[in_val]

"""The study's figures the generator is calibrated to (the named sizes are in `musicbox.profiles`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from musicbox.profiles import STUDY_SAMPLE_USERS

FEATURE_WINDOW_D = 30  # the study's snapshot: 30 days of features ...
LABEL_WINDOW_D = 14  # ... then 14 days in which no event means churn

# Collection artefacts of the real dumps (SEED_FACTS 1), reproduced when inside the range.
REAL_MISSING_SHARD_DAYS: tuple[date, ...] = (
    date(2017, 4, 3),
    date(2017, 4, 11),
    date(2017, 4, 14),
    date(2017, 4, 24),
)
# The real dumps miss 4 play files but only 1 down and 1 search file: those go on the first day.
REAL_NEAR_COPY: tuple[date, date] = (date(2017, 5, 9), date(2017, 5, 8))  # (copy, original)
NEAR_COPY_TYPES: tuple[str, ...] = ("down", "search")


@dataclass(frozen=True)
class Targets:
    """The study's figures (SEED_FACTS 1-3), event volumes scaled linearly to a number of users."""

    events_first_day: float
    events_may_day: float  # mean events a day over the May days of the range
    events_total: float
    plays_per_user_q: tuple[float, float, float, float] = (9, 40, 174, 2_091)  # 25/50/75/99 %
    ratio_pds: tuple[float, float, float] = (10.10, 0.63, 0.79)
    device_share_ar: float = 0.84
    device_share_ip: float = 0.16
    churn_share: float = 0.627
    bot_share: float = 0.01
    play_time_q_s: tuple[float, float, float] = (6, 159, 249)  # 25/50/75 %
    song_length_median_s: float = 232
    song_id_unknown_share: float = 0.08
    play_time_garbage_share: float = 0.0058

    @classmethod
    def for_users(cls, users: int) -> Targets:
        scale = users / STUDY_SAMPLE_USERS
        return cls(
            events_first_day=745_000 * scale, events_may_day=175_000 * scale, events_total=11.52e6 * scale
        )


def catalogue_size(users: int) -> int:
    """~300 K songs at the study sample's scale, linear in users, never under a few thousand."""
    return max(5_000, round(300_000 * users / STUDY_SAMPLE_USERS))

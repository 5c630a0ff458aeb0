"""Named sizes of a generated data set: shared by the generator (which writes them) and the demo
(which runs on them and must know their size before it generates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

STUDY_START = date(2017, 3, 30)
STUDY_DAYS = 44
STUDY_SAMPLE_USERS = 64_746  # the study's 11 % user sample (SEED_FACTS 2), bots removed


@dataclass(frozen=True)
class Profile:
    name: str
    users: int
    days: int
    start: date


PROFILES: dict[str, Profile] = {
    "demo": Profile("demo", 3_000, STUDY_DAYS, STUDY_START),
    "study-sample": Profile("study-sample", STUDY_SAMPLE_USERS, STUDY_DAYS, STUDY_START),
    "full": Profile("full", 600_000, STUDY_DAYS, STUDY_START),
}
DEFAULT_PROFILE = "demo"

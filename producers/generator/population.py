"""The users and their latent activity: engagement that decays, a hazard of leaving for good.

Churn is not a pasted label: each human has an engagement level (a random walk with a
downward drift) that sets how likely a day is active and how busy it is, and a daily
hazard of leaving that grows with days of inactivity and falls with engagement. Once gone,
a user has no more events. Bots play at very high rates and never leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEVICES = ("ar", "ip", "mc")
DEVICE_P = (0.838, 0.160, 0.002)  # SEED_FACTS 1: ~84 % ar, ~16 % ip, rarely mc
TWO_DEVICE_SHARE = 0.02  # users seen on a second device now and then
TASTE_CLUSTERS = 24
UID_BAND = (168_000_000, 169_300_000)  # the cohort of mostly new users (SEED_FACTS 1)
OLD_UID_RANGE = (100_000_000, 168_000_000)
OLD_USER_SHARE = 0.08
TINY_UID_RANGE = (1, 100_000)  # "a few tiny ids" in the real data: some bots get one
TINY_UID_BOT_SHARE = 0.1
ARRIVAL_HORIZON_D = 44  # the study's range
BOT_PLAYS_RANGE_PER_D = (120.0, 20_000.0)  # "hundreds to thousands a day"; the real top bot: 170 K
BOT_ACTIVE_DAY_SHARE = 0.97  # bots run nearly every day, whatever a human's engagement would do


@dataclass(frozen=True)
class LatentParams:
    """The latent process; the defaults come from `python -m producers.generator.calibrate`."""

    late_share: float = 0.2498  # humans whose first day is after day 0 (decaying arrivals) ...
    arrival_decay_d: float = 6.4575
    trickle_share: float = 0.0241  # ... plus a trickle spread evenly over the range
    engagement0_mean: float = -0.2491  # logit of the chance that a day is active
    engagement0_sd: float = 1.3819
    rate_engagement_corr: float = -0.0077
    drift_mean_per_d: float = -0.1105
    drift_sd_per_d: float = 0.0567
    engagement_noise_sd: float = 0.3027
    log_plays_mean: float = 2.33  # plays on an active day: log-normal across users
    log_plays_sd: float = 1.1257
    plays_per_engagement: float = 0.712
    plays_cap_per_d: float = 113.1895  # soft ceiling of a human's plays on one day
    hazard_base: float = -6.985  # logit of the daily chance of leaving
    hazard_per_idle_d: float = 0.0306
    hazard_per_engagement: float = 0.1
    hazard_frailty_sd: float = 1.4989
    frailty_rate_corr: float = -0.3105  # < 0: busy users are less frail
    hazard_novelty: float = 0.3594
    novelty_d: float = 3.2264
    downloads_per_play: float = 0.063  # SEED_FACTS 2: 10.10 : 0.63 : 0.79
    searches_per_play: float = 0.079
    propensity_sd: float = 0.8
    bot_plays_median_per_d: float = 200.0
    bot_plays_sd: float = 0.8


@dataclass(frozen=True)
class Users:
    """Static per-user attributes, index 0..n-1."""

    uid: np.ndarray  # int64
    shard: np.ndarray  # int8, 1..shards
    is_bot: np.ndarray  # bool
    first_day: np.ndarray  # int32: day index of the first event
    device: np.ndarray  # int8 index into DEVICES
    device2: np.ndarray  # int8: the other device of a two-device user
    device2_share: np.ndarray  # float: share of events on device2 (0 for most)
    cluster: np.ndarray  # int16 taste cluster
    skip_share: np.ndarray  # float: share of plays skipped in the first seconds
    favourite_share: np.ndarray  # float: share of plays that repeat a favourite song

    @property
    def size(self) -> int:
        return len(self.uid)


@dataclass(frozen=True)
class DayActivity:
    """Event counts of one day per user (zero for users not yet arrived or gone)."""

    plays: np.ndarray
    downloads: np.ndarray
    searches: np.ndarray

    @property
    def events(self) -> int:
        return int(self.plays.sum() + self.downloads.sum() + self.searches.sum())


def shard_of(uid: np.ndarray, shards: int) -> np.ndarray:
    """Shard 1..shards of each uid: a multiplicative hash, stable across runs and machines."""
    mixed = (uid.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (mixed % np.uint64(shards)).astype(np.int8) + 1


def unique_ints(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """`n` distinct integers in [lo, hi), ascending, without materialising the range."""
    if n > hi - lo:
        raise ValueError(f"cannot draw {n} distinct integers from [{lo}, {hi})")
    drawn = np.unique(rng.integers(lo, hi, int(n * 1.3) + 16))
    while len(drawn) < n:
        drawn = np.unique(np.concatenate([drawn, rng.integers(lo, hi, n)]))
    return np.sort(rng.choice(drawn, n, replace=False))


def _first_days(rng: np.random.Generator, n: int, horizon_d: int, p: LatentParams) -> np.ndarray:
    """Day index of each user's first event, over a fixed horizon (users past a short run never show)."""
    first = np.zeros(n, dtype=np.int32)
    rate = 1.0 / p.arrival_decay_d
    span = horizon_d - 1
    u = rng.random(n)
    decaying = 1 + np.floor(-np.log1p(-u * (1.0 - np.exp(-rate * span))) / rate)
    late = rng.random(n) < p.late_share
    first[late] = np.minimum(decaying[late], span)
    trickle = rng.random(n) < p.trickle_share
    first[trickle] = rng.integers(1, horizon_d, int(trickle.sum()))
    return first


def draw_users(
    rng: np.random.Generator, n: int, days: int, shards: int, bot_share: float, p: LatentParams
) -> Users:
    """`n` users, `bot_share` of them bots; uids ordered by first day, like registrations.

    Arrivals are spread over the study's 44 days (or `days`, if longer) whatever the run's
    length, so a short run is exactly the first days of a longer one with the same seed."""
    first = _first_days(rng, n, max(days, ARRIVAL_HORIZON_D), p)
    is_bot = np.zeros(n, dtype=bool)
    is_bot[rng.choice(n, round(n * bot_share), replace=False)] = True
    old = rng.random(n) < OLD_USER_SHARE
    uid = np.empty(n, dtype=np.int64)
    # Newer users got larger uids: sort the cohort's uids into the order of first days.
    new_idx = np.flatnonzero(~old)
    new_idx = new_idx[np.argsort(first[new_idx] + rng.random(len(new_idx)), kind="stable")]
    uid[new_idx] = unique_ints(rng, *UID_BAND, len(new_idx))
    old_idx = np.flatnonzero(old)
    uid[old_idx] = rng.permutation(unique_ints(rng, *OLD_UID_RANGE, len(old_idx)))
    tiny = np.flatnonzero(is_bot & (rng.random(n) < TINY_UID_BOT_SHARE))
    uid[tiny] = rng.permutation(unique_ints(rng, *TINY_UID_RANGE, len(tiny)))
    device = rng.choice(len(DEVICES), n, p=DEVICE_P).astype(np.int8)
    two = rng.random(n) < TWO_DEVICE_SHARE
    device2 = np.where(device == 0, 1, 0).astype(np.int8)
    return Users(
        uid=uid,
        shard=shard_of(uid, shards),
        is_bot=is_bot,
        first_day=first,
        device=device,
        device2=device2,
        device2_share=np.where(two, rng.uniform(0.1, 0.5, n), 0.0),
        cluster=rng.integers(0, TASTE_CLUSTERS, n).astype(np.int16),
        skip_share=rng.beta(2.0, 4.4, n),
        favourite_share=np.where(is_bot, 0.0, rng.beta(4.0, 4.0, n)),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def leave_hazard(
    idle_d: np.ndarray, engagement: np.ndarray, frailty: np.ndarray, age_d: np.ndarray, p: LatentParams
) -> np.ndarray:
    """Daily chance of leaving for good: up with days idle, down with engagement, high while new."""
    return _sigmoid(
        p.hazard_base
        + p.hazard_per_idle_d * idle_d
        - p.hazard_per_engagement * engagement
        + frailty
        + p.hazard_novelty * np.exp(-age_d / p.novelty_d)
    )


class Population:
    """Per-user latent state, advanced one day at a time; `step` returns that day's event counts."""

    def __init__(self, users: Users, rng: np.random.Generator, p: LatentParams) -> None:
        n = users.size
        self.users = users
        self.p = p
        rate_z = rng.standard_normal(n)
        other_z = rng.standard_normal(n)
        rho = p.rate_engagement_corr
        self.engagement = p.engagement0_mean + p.engagement0_sd * (
            rho * rate_z + np.sqrt(1 - rho**2) * other_z
        )
        self.drift = rng.normal(p.drift_mean_per_d, p.drift_sd_per_d, n)
        self.log_plays = p.log_plays_mean + p.log_plays_sd * rate_z
        rho_f = p.frailty_rate_corr
        self.frailty = p.hazard_frailty_sd * (rho_f * rate_z + np.sqrt(1 - rho_f**2) * rng.standard_normal(n))
        # Per-user propensities, mean-one log-normal factors around the study's ratios.
        shrink = np.exp(-(p.propensity_sd**2) / 2)
        self.download_rate = p.downloads_per_play * shrink * rng.lognormal(0.0, p.propensity_sd, n)
        self.search_rate = p.searches_per_play * shrink * rng.lognormal(0.0, p.propensity_sd, n)
        self.bot_plays = np.clip(
            rng.lognormal(np.log(p.bot_plays_median_per_d), p.bot_plays_sd, n), *BOT_PLAYS_RANGE_PER_D
        )
        self.alive = np.ones(n, dtype=bool)
        self.idle_d = np.zeros(n, dtype=np.int32)

    @property
    def gone(self) -> int:
        """Humans that have left for good so far."""
        return int((~self.alive & ~self.users.is_bot).sum())

    def step(self, day: int, rng: np.random.Generator) -> DayActivity:
        """Advance to day index `day`: who is active, how much, and who leaves afterwards."""
        p, u = self.p, self.users
        n = u.size
        arrived = u.first_day <= day
        on = self.alive & arrived
        walking = on & (u.first_day < day)
        self.engagement = np.where(
            walking, self.engagement + self.drift + rng.normal(0.0, p.engagement_noise_sd, n), self.engagement
        )
        # A user shows up on the first day by definition; afterwards, as engagement allows.
        chance = np.where(u.is_bot, BOT_ACTIVE_DAY_SHARE, _sigmoid(self.engagement))
        active = on & ((rng.random(n) < chance) | (u.first_day == day))
        human_rate = np.exp(self.log_plays + p.plays_per_engagement * self.engagement)
        human_rate = human_rate / (1.0 + human_rate / p.plays_cap_per_d)  # a day has only so many hours
        rate = np.where(u.is_bot, self.bot_plays * rng.lognormal(0.0, 0.2, n), human_rate) * active
        plays = rng.poisson(rate)
        downloads = rng.poisson(rate * np.where(u.is_bot, 0.002, self.download_rate))
        searches = rng.poisson(rate * np.where(u.is_bot, 0.001, self.search_rate))
        plays[active & (plays + downloads + searches == 0)] = 1  # an active day has an event
        self.idle_d = np.where(active, 0, self.idle_d + 1)
        hazard = leave_hazard(self.idle_d, self.engagement, self.frailty, day - u.first_day, p)
        leaves = on & ~u.is_bot & (rng.random(n) < hazard)
        self.alive &= ~leaves
        return DayActivity(plays=plays, downloads=downloads, searches=searches)

"""Check (and re-tune) the latent process against the study's figures, without writing any log.

`python -m producers.generator.calibrate [--users N] [--search ITER]` simulates the humans'
daily counts only, prints volume, plays-per-user quantiles, churn share and the ROC AUC a
logistic regression reaches on the study's features (counts and recencies over 1/3/7/14/30
days) at the study's snapshot. `--search` runs a small random search around the current
parameters and prints the best set found, to paste into `LatentParams`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

import numpy as np

from musicbox.features import NEVER_D, WINDOWS_D
from musicbox.profiles import STUDY_DAYS, STUDY_SAMPLE_USERS
from producers.generator.population import LatentParams, Population, draw_users
from producers.generator.profiles import FEATURE_WINDOW_D, LABEL_WINDOW_D

TARGETS = {"day1": 745e3, "may": 175e3, "total": 11.52e6, "q25": 9, "q50": 40, "q75": 174, "q99": 2_000}
CHURN_TARGET, AUC_TARGET, POPULATION_TARGET = 0.627, 0.87, 63_077 / STUDY_SAMPLE_USERS
MAY_FROM_D = 32  # 2017-05-01 is day index 32 of the study's range


def simulate_counts(users: int, seed: int, p: LatentParams, days: int = STUDY_DAYS) -> np.ndarray:
    """Daily plays, downloads, searches of `users` humans: an array (3, users, days)."""
    rng = np.random.default_rng([seed, 1])
    population = Population(draw_users(rng, users, days, 3, 0.0, p), rng, p)
    counts = np.zeros((3, users, days), dtype=np.int32)
    for day in range(days):
        a = population.step(day, rng)
        counts[0, :, day], counts[1, :, day], counts[2, :, day] = a.plays, a.downloads, a.searches
    return counts


def snapshot_features(counts: np.ndarray, as_of: int = FEATURE_WINDOW_D - 1) -> np.ndarray:
    """The study's 18 numeric features per user at day `as_of`: counts per window, then recencies."""
    columns = [counts[k, :, as_of - w + 1 : as_of + 1].sum(axis=1) for k in range(3) for w in WINDOWS_D]
    for k in range(3):
        seen = counts[k, :, : as_of + 1] > 0
        last = as_of - np.argmax(seen[:, ::-1], axis=1)
        columns.append(np.where(seen.any(axis=1), as_of + 1 - last, NEVER_D))
    return np.column_stack(columns).astype(np.float64)


def churn_auc(counts: np.ndarray, seed: int = 0) -> tuple[float, float, int]:
    """(churn share, test ROC AUC of a logistic regression, population) at the study's snapshot."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    events = counts.sum(axis=0)
    population = events[:, :FEATURE_WINDOW_D].sum(axis=1) > 0
    churn = events[:, FEATURE_WINDOW_D : FEATURE_WINDOW_D + LABEL_WINDOW_D].sum(axis=1) == 0
    x, y = snapshot_features(counts)[population], churn[population]
    order = np.random.default_rng(seed).permutation(len(y))  # the study's random 80/20 split
    train, test = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000)).fit(x[train], y[train])
    auc = float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return float(y.mean()), auc, int(population.sum())


def measure(counts: np.ndarray) -> dict[str, float]:
    """The calibration figures, volumes scaled to the study sample's 64,746 users."""
    users = counts.shape[1]
    per_day = counts.sum(axis=(0, 1)) * STUDY_SAMPLE_USERS / users
    plays = counts[0].sum(axis=1)
    q = np.percentile(plays[plays > 0], [25, 50, 75, 99])
    churn, auc, population = churn_auc(counts)
    return {
        "day1": float(per_day[0]),
        "may": float(per_day[MAY_FROM_D:].mean()),
        "total": float(per_day.sum()),
        "q25": float(q[0]),
        "q50": float(q[1]),
        "q75": float(q[2]),
        "q99": float(q[3]),
        "churn": churn,
        "auc": auc,
        "population": population / users,
        "pds": float(counts[1].sum() / counts[0].sum()),
        "pss": float(counts[2].sum() / counts[0].sum()),
    }


def loss(m: dict[str, float]) -> float:
    """Squared log errors of the volumes and quantiles, plus weighted churn, AUC and population terms."""
    total = sum(float(np.log(m[k] / v)) ** 2 for k, v in TARGETS.items())
    total += 0.05 * ((m["churn"] - CHURN_TARGET) / 0.02) ** 2 + 0.2 * ((m["auc"] - AUC_TARGET) / 0.02) ** 2
    return total + 0.02 * ((m["population"] - POPULATION_TARGET) / 0.01) ** 2


def search(p: LatentParams, iterations: int, users: int, seed: int, step: float) -> LatentParams:
    """A plain random walk over the parameters that keeps improvements; prints each one."""
    rng = np.random.default_rng(seed)
    fixed = {
        "downloads_per_play",
        "searches_per_play",
        "propensity_sd",
        "bot_plays_median_per_d",
        "bot_plays_sd",
    }
    best, best_loss = p, loss(measure(simulate_counts(users, seed, p)))
    for _ in range(iterations):
        values = asdict(best)
        for k, v in values.items():
            if k not in fixed:
                values[k] = v + rng.normal(0.0, step) * (abs(v) * 0.5 + 0.05)
        values["late_share"] = float(np.clip(values["late_share"], 0.0, 0.8))
        values["trickle_share"] = float(np.clip(values["trickle_share"], 0.0, 0.1))
        for k in ("rate_engagement_corr", "frailty_rate_corr"):
            values[k] = float(np.clip(values[k], -0.9, 0.9))
        # The brief's direction: leaving grows with inactivity and falls with engagement.
        values["hazard_per_idle_d"] = max(values["hazard_per_idle_d"], 0.03)
        values["hazard_per_engagement"] = max(values["hazard_per_engagement"], 0.1)
        for k in (
            "arrival_decay_d",
            "novelty_d",
            "plays_cap_per_d",
            "engagement_noise_sd",
            "log_plays_sd",
            "engagement0_sd",
            "drift_sd_per_d",
            "hazard_frailty_sd",
        ):
            values[k] = abs(values[k])
        candidate = replace(best, **values)
        m = measure(simulate_counts(users, seed, candidate))
        if (value := loss(m)) < best_loss:
            best, best_loss = candidate, value
            print(f"loss {value:.3f} " + " ".join(f"{k}={v:.3g}" for k, v in m.items()), flush=True)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", type=int, default=0, metavar="ITER", help="random-search iterations")
    parser.add_argument("--step", type=float, default=0.2, help="relative step of the search")
    parser.add_argument("--params", type=json.loads, default={}, help="JSON overrides of LatentParams")
    args = parser.parse_args(argv)
    p = replace(LatentParams(), **args.params)
    if args.search:
        p = search(p, args.search, args.users, args.seed, args.step)
        print(json.dumps(asdict(p)))
    m = measure(simulate_counts(args.users, args.seed, p))
    print(f"{'figure':<12}{'generated':>14}{'study':>14}")
    study = {
        **TARGETS,
        "churn": CHURN_TARGET,
        "auc": 0.868,
        "population": POPULATION_TARGET,
        "pds": 0.63 / 10.10,
        "pss": 0.79 / 10.10,
    }
    for k, v in m.items():
        print(f"{k:<12}{v:>14,.3f}{study[k]:>14,.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The day close at the study sample's catalogue: where its time goes, and what ranking fewer songs costs.

    .venv/bin/python -m bench.recs_quality --logs var/data/study-sample [--candidates 5000,20000,50000]
                                          [--factors 64] [--alpha 10] [--regularization 1.0] [--users N]

The windows of `musicbox batch train-als` (train: the 30 days before the last 7; test: those 7).
An ALS with the given parameters (train-als's choice on this profile: 64 factors, alpha 10) is
fitted on the train window's ratings. Every warm test user (train ratings, and a song new to it
in the test window) is then served as the worker serves it at a day close: folded in from its
train-window ratings (`AlsModel.fold_in`), and its top 10 ranked (`AlsModel.top_items`), over
every song (exact) and over the C most popular songs of the train window (candidate sets).
Reported per variant: NDCG@10, P@10, R@10, MAP@10 on the test window (models.ranking_metrics),
the share of the exact lists' songs each keeps, and the fold-in and ranking rates (one thread).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS
    from batch.als_training import build_ratings, default_windows
    from batch.events_table import events_table
    from batch.training_data import rating_event_days
    from models.als import AlsParams, train_als
    from models.popularity import PopularityModel
    from models.ranking_metrics import mean_metrics, relevant_items
    from musicbox.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--candidates", default="500,1000,2000,5000,20000,50000")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--regularization", type=float, default=1.0)
    parser.add_argument("--users", type=int, default=0, help="warm users served (default: every one)")
    args = parser.parse_args()
    settings = Settings()
    clock = time.perf_counter
    started = clock()
    table = events_table(settings, args.logs)
    assert table.first_day is not None and table.last_day is not None
    windows = default_windows(table.first_day, table.last_day)
    ratings = build_ratings(rating_event_days(table, *windows.needed), windows)
    train, test = ratings.train, ratings.test
    print(
        f"ratings: train {windows.train[0]}..{windows.train[1]} {len(train):,} pairs, "
        f"{train.uid.nunique():,} users, {train.song_id.nunique():,} songs; "
        f"test {windows.test[0]}..{windows.test[1]} "
        f"({clock() - started:.0f} s)"
    )
    params = AlsParams(factors=args.factors, alpha=args.alpha, regularization=args.regularization)
    model, fit_s = train_als(train, params)
    popularity = PopularityModel.fit(train)
    print(f"ALS {params}: fitted in {fit_s:.0f} s")

    relevant = relevant_items(train, test)
    warm = sorted(u for u in relevant if model.knows(u))
    rng = np.random.default_rng(0)
    users = np.sort(rng.choice(warm, size=min(args.users or len(warm), len(warm)), replace=False))
    mine = train[train.uid.isin(users)].sort_values(["uid", "song_id"])
    counts = mine.groupby("uid").size().reindex(users).to_numpy()
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = model.rated_rows(indptr, mine.song_id.to_numpy(), mine.rating.to_numpy())
    t = clock()
    factors = model.fold_in(rows)
    fold_in_s = clock() - t
    print(
        f"warm test users {len(warm):,}; {len(users):,} served, {counts.mean():.0f} rated songs on average; "
        f"fold-in {len(users) / fold_in_s:,.0f} users/s"
    )
    variants: list[tuple[str, np.ndarray | None]] = [("exact", None)]
    for c in (int(x) for x in args.candidates.split(",") if x):
        variants.append((f"{c:,} most popular", model.candidates(popularity.song_ids[:c])))
    exact: list[set[int]] = []
    print("| songs ranked | NDCG@10 | P@10 | R@10 | MAP@10 | exact list kept | ranking users/s |")
    print("|---|---|---|---|---|---|---|")
    for name, candidates in variants:
        t = clock()
        lists = model.top_items(factors, rows, n=10, candidates=candidates).lists()
        rank_s = clock() - t
        recs = {int(u): [s for s, _ in items] for u, items in zip(users.tolist(), lists, strict=True)}
        m = mean_metrics(recs, {int(u): relevant[int(u)] for u in users}, 10)
        if candidates is None:
            exact = [set(r) for r in recs.values()]
        kept = np.mean([len(set(r) & e) / max(len(e), 1) for r, e in zip(recs.values(), exact, strict=True)])
        print(
            f"| {name} | {m.ndcg:.4f} | {m.precision:.4f} | {m.recall:.4f} | {m.map:.4f} | {kept:.2%} "
            f"| {len(users) / rank_s:,.0f} |"
        )


if __name__ == "__main__":
    main()

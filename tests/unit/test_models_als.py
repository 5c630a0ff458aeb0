"""ALS and popularity on a known checkerboard: two user groups, each with its own block of songs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models.als import AlsModel, AlsParams, confidence, rating_matrix, train_als
from models.als_evaluation import evaluate_recommenders, select_als
from models.errors import ModelInputError, UnknownUserError
from models.popularity import PopularityModel

USERS_A, USERS_B = range(1, 21), range(2001, 2021)
BLOCK_A, BLOCK_B = range(1001, 1013), range(3001, 3013)  # the songs of users A, of users B
PARAMS = AlsParams(factors=2, regularization=0.1, alpha=10.0, iterations=15, seed=0)


def checkerboard(seed: int = 0, density: float = 0.5) -> pd.DataFrame:
    """Each user rated a random half of its group's block, nothing of the other block."""
    rng = np.random.default_rng(seed)
    rows = []
    for users, block in ((USERS_A, BLOCK_A), (USERS_B, BLOCK_B)):
        for uid in users:
            for song in rng.choice(list(block), size=int(len(block) * density), replace=False):
                rows.append((uid, int(song), float(rng.uniform(0.2, 2.0))))
    return pd.DataFrame(rows, columns=["uid", "song_id", "rating"])


def unseen_half(train: pd.DataFrame) -> pd.DataFrame:
    """The future window: every user rates the rest of its own block."""
    rows = []
    for uid, seen in train.groupby("uid")["song_id"]:
        block = BLOCK_A if uid in USERS_A else BLOCK_B
        rows += [(uid, s, 1.0) for s in block if s not in set(seen)]
    return pd.DataFrame(rows, columns=["uid", "song_id", "rating"])


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return checkerboard()


@pytest.fixture(scope="module")
def model(train: pd.DataFrame) -> AlsModel:
    return train_als(train, PARAMS)[0]


@pytest.mark.parametrize(
    "params",
    [
        PARAMS,  # as many factors as the data has structure
        AlsParams(factors=16, regularization=5.0, alpha=40.0),  # more factors, held in by regularization
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_recommendations_come_from_the_users_own_block(params: AlsParams, seed: int) -> None:
    train = checkerboard(seed)
    model, fit_time_s = train_als(train, params)
    assert fit_time_s > 0
    for uid in train["uid"].unique():
        songs = [s for s, _ in model.recommend(int(uid), n=5)]
        block = BLOCK_A if uid in USERS_A else BLOCK_B
        assert len(songs) == 5 and all(s in block for s in songs), (uid, songs)


def test_seen_songs_are_excluded_unless_asked(model: AlsModel, train: pd.DataFrame) -> None:
    seen = set(train.loc[train["uid"] == 1, "song_id"])
    fresh = [s for s, _ in model.recommend(1, n=10)]
    assert not seen & set(fresh)
    assert seen & {s for s, _ in model.recommend(1, n=10, exclude_seen=False)}
    # The batched path used by evaluation agrees with the one-user path.
    assert model.recommend_many([1], n=10)[1] == fresh


def test_save_load_round_trip_gives_identical_recommendations(model: AlsModel, tmp_path: Path) -> None:
    model.save(tmp_path)
    loaded = AlsModel.load(tmp_path)
    for uid in (1, 7, 2001, 2020):
        assert loaded.recommend(uid, n=8) == model.recommend(uid, n=8)
    fresh = {1001: 1.0, 1005: 0.4}
    assert loaded.recommend_from_ratings(fresh, 5) == model.recommend_from_ratings(fresh, 5)
    assert loaded.params == model.params
    # implicit's own npz format: loadable without pickle.
    with np.load(tmp_path / "als.npz", allow_pickle=False) as data:
        assert data["item_factors"].shape == (len(BLOCK_A) + len(BLOCK_B), PARAMS.factors)


@pytest.mark.parametrize(
    ("ratings", "block"),
    [
        ({1001: 1.0, 1002: 0.6, 1003: 2.0}, BLOCK_A),  # a new user who likes block A songs
        ({3004: 0.4, 3010: 1.2, 3011: 1.0}, BLOCK_B),  # a new user who likes block B songs
        ({3004: 0.4, 99_999: 5.0}, BLOCK_B),  # a song the model never saw is ignored
    ],
)
def test_recalculated_user_gets_the_block_of_their_ratings(
    model: AlsModel, ratings: dict, block: range
) -> None:
    songs = [s for s, _ in model.recommend_from_ratings(ratings, n=5)]
    assert len(songs) == 5 and all(s in block for s in songs)
    assert not set(ratings) & set(songs)  # their own songs are not recommended back


def test_ratings_of_unknown_songs_only_give_nothing(model: AlsModel) -> None:
    assert model.recommend_from_ratings({99_999: 3.0}, n=5) == []


def test_unknown_user_is_refused_with_a_hint(model: AlsModel) -> None:
    with pytest.raises(UnknownUserError, match="recommend_from_ratings"):
        model.recommend(555, n=5)
    with pytest.raises(UnknownUserError, match="555"):
        model.recommend_many([1, 555], n=5)


def test_confidence_is_one_plus_alpha_r() -> None:
    ratings = pd.DataFrame({"uid": [5, 5, 9], "song_id": [1, 2, 1], "rating": [0.5, 2.0, 1.0]})
    matrix, users, items = rating_matrix(ratings)
    assert list(users) == [5, 9] and list(items) == [1, 2]
    np.testing.assert_allclose(confidence(matrix, 40.0).toarray(), [[21.0, 81.0], [41.0, 0.0]])
    with pytest.raises(ModelInputError, match="no ratings"):
        rating_matrix(ratings.iloc[:0])


def test_popularity_counts_distinct_users_of_the_training_data_only() -> None:
    train = pd.DataFrame(
        {"uid": [1, 1, 1, 2, 3, 3], "song_id": [20, 20, 30, 30, 30, 10], "rating": [9.0, 9.0, 1, 1, 1, 1]}
    )
    popularity = PopularityModel.fit(train)
    # 30 by 3 users; 10 and 20 by one user each (the repeated 20 is still one user), tie -> smaller id.
    assert popularity.recommend(3) == [(30, 3.0), (10, 1.0), (20, 1.0)]
    assert popularity.recommend(2, exclude={30}) == [(10, 1.0), (20, 1.0)]
    # A song first heard in the test window cannot be recommended by it: it never saw the test data.
    assert 77 not in {s for s, _ in popularity.recommend(100)}
    np.testing.assert_array_equal(popularity.item_scores(np.array([10, 77, 30])), [1.0, 0.0, 3.0])


def test_popularity_save_load(tmp_path: Path) -> None:
    popularity = PopularityModel.fit(pd.DataFrame({"uid": [1, 2], "song_id": [5, 5], "rating": [1.0, 1.0]}))
    popularity.save(tmp_path)
    assert PopularityModel.load(tmp_path).recommend(5) == popularity.recommend(5)


def test_als_beats_popularity_for_warm_users_and_cold_users_get_popularity(
    model: AlsModel, train: pd.DataFrame
) -> None:
    future = unseen_half(train)
    newcomers = pd.DataFrame({"uid": [9001, 9002], "song_id": [1001, 3001], "rating": [1.0, 1.0]})
    results = evaluate_recommenders(model, PopularityModel.fit(train), train, pd.concat([future, newcomers]))
    by = {(r.segment, r.model): r.metrics for r in results}
    assert by["warm", "als"].users == 40 and by["cold", "popularity"].users == 2
    assert by["warm", "als"].ndcg > by["warm", "popularity"].ndcg + 0.2
    assert by["warm", "als"].auc is not None and by["warm", "als"].auc > 0.75


def test_selection_keeps_the_best_validation_ndcg(train: pd.DataFrame) -> None:
    validation = unseen_half(train)
    selection = select_als(train, validation, {"factors": (2, 4), "alpha": (1.0, 10.0)}, PARAMS)
    assert [(t.params.factors, t.params.alpha) for t in selection.trials] == [
        (2, 1.0),
        (2, 10.0),
        (4, 1.0),
        (4, 10.0),
    ]
    assert selection.best == max(selection.trials, key=lambda t: t.ndcg).params
    with pytest.raises(ModelInputError, match="unknown ALS parameters"):
        select_als(train, validation, {"rank": (4,)})


def test_batched_fold_in_gives_each_user_their_own_list(model: AlsModel) -> None:
    users = [
        {1001: 1.0, 1002: 0.6, 1003: 2.0},
        {99_999: 5.0},  # nothing the model knows: an empty list in its place
        {3004: 0.4, 3010: 1.2, 3011: 1.0},
        {s: 1.0 for s in BLOCK_A},  # rated every block A song: block A is filtered out of its list
        {},
        {s: 1.0 for s in [*BLOCK_A, *BLOCK_B]},  # rated every song: nothing left to recommend
    ]
    batched = model.recommend_from_ratings_many(users, n=5)
    one_by_one = [model.recommend_from_ratings(r, n=5) for r in users]
    assert [[s for s, _ in r] for r in batched] == [[s for s, _ in r] for r in one_by_one]
    for got, alone in zip(batched, one_by_one, strict=True):  # a batch sums in another order
        assert [x for _, x in got] == pytest.approx([x for _, x in alone], rel=1e-4, abs=1e-6)
    assert batched[1] == [] and batched[4] == [] and batched[5] == []
    assert all(s in BLOCK_A for s, _ in batched[0]) and all(s in BLOCK_B for s, _ in batched[2])
    assert batched[3] and not {s for s, _ in batched[3]} & set(BLOCK_A)
    assert model.recommend_from_ratings_many([], n=5) == []


def test_top_items_are_the_exact_best_unrated_items_for_light_and_heavy_users() -> None:
    # Users grouped by how many items they rated (0 to every item): each list must be the brute
    # force top-n of factors @ item factors over the items it did not rate, whatever its group.
    rng = np.random.default_rng(3)
    items, factors_n = 300, 4
    ratings = pd.DataFrame(
        {"uid": np.repeat([1, 2], items), "song_id": np.tile(np.arange(items), 2), "rating": 1.0}
    )
    model, _ = train_als(ratings, AlsParams(factors=factors_n, iterations=2))
    model.als.item_factors = rng.standard_normal((items, factors_n)).astype(np.float32)
    rated_counts = [0, 1, 2, 3, 7, 8, 9, 40, 150, items - 12, items - 3, items]
    user_factors = rng.standard_normal((len(rated_counts), factors_n)).astype(np.float32)
    # The worst case: each user rated the items the model likes best for it (as a fold-in does).
    lists = [
        np.argsort(-(model.als.item_factors @ f))[:r] for f, r in zip(user_factors, rated_counts, strict=True)
    ]
    rows = sp.csr_matrix(
        (np.ones(sum(rated_counts), dtype=np.float32), np.concatenate(lists), np.cumsum([0, *rated_counts])),
        shape=(len(lists), items),
    )
    rows.sort_indices()
    candidates = model.candidates(model.item_ids[rng.choice(items, size=120, replace=False)])
    for among in (None, candidates):  # the whole catalogue, or a candidate set
        got = model.top_items(user_factors, rows, n=10, candidates=among).lists()
        for u, seen in enumerate(lists):
            if len(seen) == 0:
                assert got[u] == []  # nothing rated: no list (the fallback's case)
                continue
            scores = model.als.item_factors @ user_factors[u]
            scores[seen] = -np.inf
            if among is not None:
                scores[np.setdiff1d(np.arange(items), among)] = -np.inf
            ranked = np.argsort(-scores, kind="stable")[:10]
            best = [int(model.item_ids[i]) for i in ranked if np.isfinite(scores[i])]
            assert [s for s, _ in got[u]] == best, (
                f"user {u} rated {len(seen)}, candidates {among is not None}"
            )

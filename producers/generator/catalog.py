"""The song catalogue: ids, names, singers, genres, lengths and a Zipf popularity to draw from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from producers.generator.names import person_names, song_titles

GENRES = 16
SONG_ID_MAX = 25_000_000  # real ids seen go up to ~2.3e7
SONG_TYPE_P = (0.5, 0.3, 0.15, 0.05)  # song_type 0..3; its meaning is unknown
LENGTH_MEDIAN_S = 232.0  # SEED_FACTS 1
LENGTH_SIGMA = 0.32
LENGTH_RANGE_S = (30, 1_800)
LONG_MIX_SHARE = 0.002  # DJ mixes and audio books, up to the reader's 4,800 s ceiling
ZIPF_EXPONENT = 0.95
ZIPF_OFFSET = 10.0


@dataclass(frozen=True)
class Catalog:
    """Songs by index 0..n-1; text parts are pre-joined with the dumps' " \\t" separator."""

    song_id: np.ndarray  # int64, unique, unrelated to popularity
    song_type: np.ndarray  # int8, 0..3
    length_s: np.ndarray  # int32, within the reader's sane range [1, 4800]
    genre: np.ndarray  # int16
    titles: list[str]
    singers: list[str]  # the singer of each song
    popularity: np.ndarray  # float64, sums to 1
    _global_cdf: np.ndarray
    _by_genre: np.ndarray  # song indices ordered by genre
    _genre_cdf: np.ndarray  # genre + within-genre popularity CDF, ascending (one searchsorted for all)
    _genre_start: np.ndarray  # where each genre starts in _by_genre (GENRES + 1 entries)

    @property
    def size(self) -> int:
        return len(self.song_id)

    def sample_popular(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Songs drawn by global popularity."""
        return np.minimum(np.searchsorted(self._global_cdf, rng.random(n), side="right"), self.size - 1)

    def sample_in_genres(
        self, genres: np.ndarray, rng: np.random.Generator, uniform: bool = False
    ) -> np.ndarray:
        """One song per entry of `genres`, by popularity within that genre (or any of it, `uniform`)."""
        u = rng.random(len(genres))
        if uniform:
            lo = self._genre_start[genres]
            return self._by_genre[lo + (u * (self._genre_start[genres + 1] - lo)).astype(np.int64)]
        pos = np.searchsorted(self._genre_cdf, genres + u, side="right")
        return self._by_genre[np.minimum(pos, self.size - 1)]

    def sample_uniform(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.size, n)


def stacked_cdf(group: np.ndarray, weight: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, group + within-group CDF): draws for many groups in one `searchsorted` on group + u."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    w = weight[order]
    totals = np.bincount(g, weights=w, minlength=groups)
    cum = np.cumsum(w)
    before = np.concatenate(([0.0], np.cumsum(totals)))[g]
    within = (cum - before) / totals[g]
    last = np.r_[g[1:] != g[:-1], True]
    within[last] = 1.0  # exact, so that g + u never lands in the next group
    return order, g + within


def build_catalog(rng: np.random.Generator, n_songs: int) -> Catalog:
    """A catalogue of `n_songs`; popular singers have more songs and more popular ones."""
    n_singers = max(GENRES, n_songs // 12)
    singer_weight = 1.0 / (rng.permutation(n_singers) + 5.0) ** 1.1
    singer_genre = rng.integers(0, GENRES, n_singers)
    singer_genre[:GENRES] = np.arange(GENRES)  # every genre has songs
    singer = np.minimum(
        np.searchsorted(np.cumsum(singer_weight) / singer_weight.sum(), rng.random(n_songs), side="right"),
        n_singers - 1,
    )
    singer[:GENRES] = np.arange(GENRES)
    genre = singer_genre[singer].astype(np.int16)
    # Popularity rank follows the singer's weight, blurred by a per-song factor.
    appeal = singer_weight[singer] * rng.lognormal(0.0, 1.0, n_songs)
    rank = np.empty(n_songs, dtype=np.int64)
    rank[np.argsort(-appeal, kind="stable")] = np.arange(n_songs)
    popularity = 1.0 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT
    popularity /= popularity.sum()
    global_cdf = np.cumsum(popularity)
    global_cdf[-1] = 1.0
    by_genre, genre_cdf = stacked_cdf(genre.astype(np.int64), popularity, GENRES)

    gaps = rng.integers(1, max(2, 2 * SONG_ID_MAX // n_songs), n_songs)
    song_id = rng.permutation(np.cumsum(gaps))
    length = np.clip(rng.lognormal(np.log(LENGTH_MEDIAN_S), LENGTH_SIGMA, n_songs), *LENGTH_RANGE_S)
    long_mix = rng.random(n_songs) < LONG_MIX_SHARE
    length[long_mix] = rng.uniform(1_800, 4_800, int(long_mix.sum()))
    singer_names = person_names(rng, n_singers)
    return Catalog(
        song_id=song_id.astype(np.int64),
        song_type=rng.choice(4, n_songs, p=SONG_TYPE_P).astype(np.int8),
        length_s=length.astype(np.int32),
        genre=genre,
        titles=song_titles(rng, n_songs),
        singers=[singer_names[i] for i in singer.tolist()],
        popularity=popularity,
        _global_cdf=global_cdf,
        _by_genre=by_genre,
        _genre_cdf=genre_cdf,
        _genre_start=np.searchsorted(genre[by_genre], np.arange(GENRES + 1)),
    )

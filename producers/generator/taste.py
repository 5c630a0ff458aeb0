"""What users play, download and search for: taste clusters, favourite songs, skips.

Each taste cluster prefers a few genres and has its own hits (songs of those genres that
its members play far more than the rest of the world does); each user repeats a set of
favourite songs drawn from the cluster's taste, so that a collaborative model (ALS) has
something to find that popularity alone misses. Downloads favour the songs a user plays. Bots play at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from producers.generator.catalog import GENRES, Catalog, stacked_cdf
from producers.generator.names import GENERIC_QUERIES
from producers.generator.population import TASTE_CLUSTERS, Users

FAVOURITES = 30  # favourite songs per user
CLUSTER_GENRE_CONCENTRATION = 0.25  # Dirichlet: each cluster leans on two or three genres
CLUSTER_HITS = 400  # songs each cluster loves, drawn from its genres
CLUSTER_HIT_SHARE = 0.5  # of the cluster's draws: one of its hits, else any song of its genres
CLUSTER_SHARE_OF_REST = 0.7  # plays that are not favourites: from the cluster's genres, else anything
DOWNLOAD_FAVOURITE_SHARE = 0.75
SKIP_MAX_S = 10
SKIP_ZERO_SHARE = 0.45  # many skips are exact zeros
FULL_PLAY_SHARE = 0.8  # of the plays that are not skips
QUERY_SINGER_SHARE, QUERY_TITLE_SHARE = 0.45, 0.40  # the rest are generic searches


@dataclass(frozen=True)
class Tastes:
    cluster_order: np.ndarray  # genre order of the stacked cluster CDF
    cluster_cdf: np.ndarray  # cluster + within-cluster genre CDF
    hits: np.ndarray  # (clusters, CLUSTER_HITS) song indices, most loved first
    hit_cdf: np.ndarray  # CDF over hit slots
    favourites: np.ndarray  # (users, FAVOURITES) song indices, most loved first
    favourite_cdf: np.ndarray  # CDF over favourite slots


def _slot_cdf(slots: int, exponent: float) -> np.ndarray:
    weight = 1.0 / np.arange(1, slots + 1) ** exponent
    cdf = np.cumsum(weight) / weight.sum()
    cdf[-1] = 1.0
    return cdf


def _slot(cdf: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def build_tastes(users: Users, catalog: Catalog, rng: np.random.Generator) -> Tastes:
    weights = rng.dirichlet(np.full(GENRES, CLUSTER_GENRE_CONCENTRATION), TASTE_CLUSTERS)
    cluster = np.repeat(np.arange(TASTE_CLUSTERS), GENRES)
    order, cdf = stacked_cdf(cluster, weights.ravel() + 1e-12, TASTE_CLUSTERS)
    empty = np.empty((0, 0), dtype=np.int32)
    tastes = Tastes(
        order % GENRES, cdf, empty, _slot_cdf(CLUSTER_HITS, 0.7), empty, _slot_cdf(FAVOURITES, 0.8)
    )
    # A cluster's hits: songs of its genres picked against the grain of world popularity.
    hit_owners = np.repeat(np.arange(TASTE_CLUSTERS), CLUSTER_HITS)
    hits = _genre_songs(tastes, catalog, hit_owners, rng, uniform=True).reshape(TASTE_CLUSTERS, CLUSTER_HITS)
    tastes = Tastes(
        tastes.cluster_order, cdf, hits.astype(np.int32), tastes.hit_cdf, empty, tastes.favourite_cdf
    )
    owners = np.repeat(np.arange(users.size), FAVOURITES)
    favourites = cluster_songs(tastes, catalog, users.cluster[owners], rng).astype(np.int32)
    return Tastes(
        tastes.cluster_order,
        cdf,
        tastes.hits,
        tastes.hit_cdf,
        favourites.reshape(users.size, FAVOURITES),
        tastes.favourite_cdf,
    )


def _genre_songs(
    tastes: Tastes, catalog: Catalog, clusters: np.ndarray, rng: np.random.Generator, uniform: bool = False
) -> np.ndarray:
    pos = np.searchsorted(tastes.cluster_cdf, clusters + rng.random(len(clusters)), side="right")
    genres = tastes.cluster_order[np.minimum(pos, len(tastes.cluster_order) - 1)]
    return catalog.sample_in_genres(genres, rng, uniform=uniform)


def cluster_songs(
    tastes: Tastes, catalog: Catalog, clusters: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One song per entry: one of the cluster's hits, or a song of a genre it likes by popularity."""
    songs = _genre_songs(tastes, catalog, clusters, rng)
    hit = rng.random(len(clusters)) < CLUSTER_HIT_SHARE
    songs[hit] = tastes.hits[clusters[hit], _slot(tastes.hit_cdf, rng, int(hit.sum()))]
    return songs


def _favourite(tastes: Tastes, owners: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return tastes.favourites[owners, _slot(tastes.favourite_cdf, rng, len(owners))]


def play_songs(
    owners: np.ndarray, users: Users, tastes: Tastes, catalog: Catalog, rng: np.random.Generator
) -> np.ndarray:
    """The song of each play of `owners` (user indices, one per play)."""
    n = len(owners)
    u = rng.random(n)
    fav_share = users.favourite_share[owners]
    from_favourites = u < fav_share
    from_cluster = ~from_favourites & (u < fav_share + (1 - fav_share) * CLUSTER_SHARE_OF_REST)
    songs = catalog.sample_popular(rng, n)
    songs[from_cluster] = cluster_songs(tastes, catalog, users.cluster[owners[from_cluster]], rng)
    songs[from_favourites] = _favourite(tastes, owners[from_favourites], rng)
    bots = users.is_bot[owners]
    songs[bots] = catalog.sample_uniform(rng, int(bots.sum()))
    return songs


def download_songs(
    owners: np.ndarray, users: Users, tastes: Tastes, catalog: Catalog, rng: np.random.Generator
) -> np.ndarray:
    """Downloads: mostly the user's favourites (songs they play), else songs their cluster likes."""
    songs = cluster_songs(tastes, catalog, users.cluster[owners], rng)
    favourite = rng.random(len(owners)) < DOWNLOAD_FAVOURITE_SHARE
    songs[favourite] = _favourite(tastes, owners[favourite], rng)
    bots = users.is_bot[owners]
    songs[bots] = catalog.sample_uniform(rng, int(bots.sum()))
    return songs


def play_times(
    owners: np.ndarray, songs: np.ndarray, users: Users, catalog: Catalog, rng: np.random.Generator
) -> np.ndarray:
    """Seconds played: a skip (0-10 s, often exactly 0), a full play, or a part of the song."""
    n = len(owners)
    length = catalog.length_s[songs]
    fraction = np.where(rng.random(n) < FULL_PLAY_SHARE, 1.0, rng.beta(0.6, 1.5, n))
    seconds = np.floor(length * fraction).astype(np.int64)
    skip = rng.random(n) < users.skip_share[owners]
    skip_s = np.where(rng.random(n) < SKIP_ZERO_SHARE, 0, rng.integers(1, SKIP_MAX_S + 1, n))
    return np.where(skip, skip_s, seconds)


def queries(
    owners: np.ndarray, users: Users, tastes: Tastes, catalog: Catalog, rng: np.random.Generator
) -> list[str]:
    """Search terms (not yet encoded): a singer or title the user's cluster likes, or a generic term."""
    n = len(owners)
    songs = cluster_songs(tastes, catalog, users.cluster[owners], rng).tolist()
    kind = rng.random(n).tolist()
    generic = rng.integers(0, len(GENERIC_QUERIES), n).tolist()
    return [
        catalog.singers[s]
        if k < QUERY_SINGER_SHARE
        else catalog.titles[s]
        if k < QUERY_SINGER_SHARE + QUERY_TITLE_SHARE
        else GENERIC_QUERIES[g]
        for s, k, g in zip(songs, kind, generic, strict=True)
    ]

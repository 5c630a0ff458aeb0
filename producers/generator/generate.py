"""The generation loop: one day at a time, from latent activity to events to lines to files.

Every random draw comes from a stream named by (seed, purpose, day, ...), so the same
arguments give the same bytes, and switching a dirt class off changes only that dirt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from producers.generator import dirt, taste
from producers.generator.catalog import Catalog, build_catalog
from producers.generator.errors import GeneratorError
from producers.generator.lines import Formatter, join, search_seconds, to_bytes
from producers.generator.population import DayActivity, LatentParams, Population, Users, draw_users
from producers.generator.profiles import (
    NEAR_COPY_TYPES,
    REAL_MISSING_SHARD_DAYS,
    REAL_NEAR_COPY,
    catalogue_size,
)
from producers.generator.stats import FileStat, GenerationStats
from producers.generator.writer import (
    FILE_TYPES,
    LogSink,
    WriteQueue,
    file_name,
    prepare_out_dir,
    write_manifest,
)

CHUNK_LINES = 100_000  # lines built, dirtied and written at a time: bounds memory on big days
SHARDS = 3
MAX_USERS = 1_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that decides the bytes written: equal configs give identical files."""

    users: int
    days: int
    start: date
    seed: int
    compression: str = "gz"
    dirt: frozenset[str] = frozenset(dirt.ALL_CLASSES)
    bot_share: float = 0.01
    shards: int = SHARDS
    params: LatentParams = field(default_factory=LatentParams)

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1:
            raise GeneratorError("--users and --days must be at least 1")
        if self.users > MAX_USERS:
            raise GeneratorError(f"--users above {MAX_USERS:,} would not fit the real cohort's uid band")
        if not 0.0 <= self.bot_share < 1.0:
            raise GeneratorError("--bot-share must be in [0, 1)")

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "days": self.days,
            "start": self.start.isoformat(),
            "seed": self.seed,
            "compression": self.compression,
            "dirt": sorted(self.dirt),
            "bot_share": self.bot_share,
            "shards": self.shards,
            "latent_params": asdict(self.params),
        }


@dataclass(frozen=True)
class DayDone:
    """Progress after a day: what the progress bar shows."""

    index: int
    day: date
    lines: int  # lines written so far
    elapsed_s: float


@dataclass(frozen=True)
class World:
    """What stays fixed over a run: the users, the songs, who likes what, the line templates."""

    users: Users
    catalog: Catalog
    tastes: taste.Tastes
    formatter: Formatter


@dataclass
class _Rows:
    """One day's events of one type, ordered by shard, then as they go into the file."""

    owners: np.ndarray
    second: np.ndarray  # 1 = on the user's other device
    shard: np.ndarray
    songs: np.ndarray | None = None
    play_time_s: np.ndarray | None = None
    seconds: np.ndarray | None = None
    queries: list[str] | None = None

    def bounds(self, shard: int) -> tuple[int, int]:
        return int(np.searchsorted(self.shard, shard)), int(np.searchsorted(self.shard, shard, side="right"))


@dataclass
class _Kept:
    """Lines of one file kept for the near-copy of the next day."""

    name: str
    file_type: str
    shard: int
    lines: pa.StringArray
    owners: np.ndarray
    second: np.ndarray
    codes: np.ndarray
    classes: tuple[str, ...]


def _rng(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([seed, *path])


def build_world(config: GeneratorConfig) -> tuple[World, Population]:
    users = draw_users(
        _rng(config.seed, 0, 0), config.users, config.days, config.shards, config.bot_share, config.params
    )
    catalog = build_catalog(_rng(config.seed, 0, 1), catalogue_size(config.users))
    tastes = taste.build_tastes(users, catalog, _rng(config.seed, 0, 2))
    population = Population(users, _rng(config.seed, 0, 3), config.params)
    return World(users, catalog, tastes, Formatter(users, catalog)), population


def missing_shards(config: GeneratorConfig) -> set[tuple[date, str, int]]:
    """(day, file type, shard) of the files the real collection lost, when those days are in range."""
    last = config.day(config.days - 1)
    days = [d for d in REAL_MISSING_SHARD_DAYS if config.start <= d <= last]
    missing = set()
    for i, d in enumerate(days):
        shard = 1 + (config.seed + d.toordinal()) % config.shards
        for file_type in FILE_TYPES if i == 0 else ("play",):
            missing.add((d, file_type, shard))
    return missing


def _event_rows(
    file_type: str, counts: np.ndarray, world: World, day: date, rng: np.random.Generator
) -> _Rows:
    u = world.users
    owners = np.repeat(np.arange(u.size), counts)
    n = len(owners)
    second = (rng.random(n) < u.device2_share[owners]).astype(np.int64)
    rows = _Rows(owners, second, u.shard[owners])
    if file_type == "play":
        rows.songs = taste.play_songs(owners, u, world.tastes, world.catalog, rng)
        rows.play_time_s = taste.play_times(owners, rows.songs, u, world.catalog, rng)
        order = np.lexsort((rng.random(n), rows.shard))
    elif file_type == "down":
        rows.songs = taste.download_songs(owners, u, world.tastes, world.catalog, rng)
        order = np.lexsort((rng.random(n), rows.shard))
    else:
        rows.seconds = search_seconds(rng, n)
        rows.queries = taste.queries(owners, u, world.tastes, world.catalog, rng)
        order = np.lexsort((rows.seconds, rows.shard))
        rows.queries = [rows.queries[i] for i in order.tolist()]
    for name in ("owners", "second", "shard", "songs", "play_time_s", "seconds"):
        value = getattr(rows, name)
        if value is not None:
            setattr(rows, name, value[order])
    return rows


def _columns(file_type: str, rows: _Rows, a: int, b: int, world: World, day: date) -> dict[str, pa.Array]:
    f = world.formatter
    if file_type == "play":
        assert rows.songs is not None and rows.play_time_s is not None
        return f.play(rows.owners[a:b], rows.second[a:b], rows.songs[a:b], rows.play_time_s[a:b])
    if file_type == "down":
        assert rows.songs is not None
        return f.download(rows.owners[a:b], rows.second[a:b], rows.songs[a:b])
    assert rows.seconds is not None and rows.queries is not None
    return f.search(rows.owners[a:b], rows.second[a:b], day, rows.seconds[a:b], rows.queries[a:b])


class Generator:
    """Writes a data set into `out`; `run` returns the tallies the manifest and the summary use."""

    def __init__(self, config: GeneratorConfig, out: Path) -> None:
        self.config = config
        self.out = out
        self.world, self.population = build_world(config)
        self.stats = GenerationStats(self.world.users, config.days)
        self.missing = missing_shards(config) if "missing_shard" in config.dirt else set()
        copy_day, original_day = REAL_NEAR_COPY
        in_range = config.start <= original_day and copy_day <= config.day(config.days - 1)
        self.near_copy = (copy_day, original_day) if "near_copy" in config.dirt and in_range else None
        self._kept: dict[tuple[str, int], _Kept] = {}
        self.queue = WriteQueue()

    def run(self, on_day: Callable[[DayDone], None] | None = None) -> GenerationStats:
        started = time.perf_counter()
        with self.queue:
            for index in range(self.config.days):
                self._day(index)
                self.stats.elapsed_s = time.perf_counter() - started
                if on_day is not None:
                    on_day(DayDone(index, self.config.day(index), self.stats.lines, self.stats.elapsed_s))
        self.stats.elapsed_s = time.perf_counter() - started
        self.stats.humans_gone = self.population.gone
        return self.stats

    def _day(self, index: int) -> None:
        cfg = self.config
        day = cfg.day(index)
        activity: DayActivity = self.population.step(index, _rng(cfg.seed, 1, index))
        for t, file_type in enumerate(FILE_TYPES):
            counts = (activity.plays, activity.downloads, activity.searches)[t]
            self.stats.generated[t] += int(counts.sum())
            rows = _event_rows(file_type, counts, self.world, day, _rng(cfg.seed, 2, index, t))
            classes, cum_rates = dirt.class_table(file_type, cfg.dirt)
            for shard in range(1, cfg.shards + 1):
                a, b = rows.bounds(shard)
                if (day, file_type, shard) in self.missing:
                    self.stats.unwritten["missing_shard"] += b - a
                    continue
                if self.near_copy and day == self.near_copy[0] and (file_type, shard) in self._kept:
                    self.stats.unwritten["near_copy"] += b - a
                    self._write_copy(index, day, self._kept.pop((file_type, shard)))
                    continue
                keep = (
                    self.near_copy is not None and day == self.near_copy[1] and file_type in NEAR_COPY_TYPES
                )
                dirt_rng = _rng(cfg.seed, 4, index, t, shard)
                self._write_file(index, day, file_type, shard, rows, a, b, classes, cum_rates, dirt_rng, keep)

    def _write_file(
        self,
        index: int,
        day: date,
        file_type: str,
        shard: int,
        rows: _Rows,
        a: int,
        b: int,
        classes: tuple[str, ...],
        cum_rates: np.ndarray,
        rng: np.random.Generator,
        keep: bool,
    ) -> None:
        sink = LogSink(self.out, day, shard, file_type, self.config.compression)
        f = FileStat(sink.name, day, shard, file_type)
        kept: list[pa.StringArray] = []
        kept_codes: list[np.ndarray] = []
        for lo in range(a, max(a, b), CHUNK_LINES):
            hi = min(b, lo + CHUNK_LINES)
            codes, variants = dirt.draw(rng, hi - lo, cum_rates)
            columns = _columns(file_type, rows, lo, hi, self.world, day)
            dirt.apply_values(columns, codes, variants, classes)
            lines = dirt.apply_lines(join(file_type, columns), file_type, codes, variants, classes)
            self.queue.write(sink, to_bytes(lines))
            pt = rows.play_time_s[lo:hi] if rows.play_time_s is not None else None
            self.stats.record(f, index, rows.owners[lo:hi], rows.second[lo:hi], codes, classes, pt)
            if keep:
                kept.append(lines)
                kept_codes.append(codes)
        self.queue.close(sink, f)
        self.stats.files.append(f)
        if keep:
            codes = np.concatenate(kept_codes) if kept_codes else np.zeros(0, dtype=np.int8)
            lines_all = pa.concat_arrays(kept) if kept else pa.array([], type=pa.string())
            self._kept[(file_type, shard)] = _Kept(
                sink.name, file_type, shard, lines_all, rows.owners[a:b], rows.second[a:b], codes, classes
            )

    def _write_copy(self, index: int, day: date, original: _Kept) -> None:
        """The near-copy artefact: the original day's file again, a few lines short."""
        file_type, shard = original.file_type, original.shard
        rng = _rng(self.config.seed, 5, index, FILE_TYPES.index(file_type), shard)
        keep = rng.random(len(original.lines)) >= dirt.NEAR_COPY_DROP_SHARE
        sink = LogSink(self.out, day, shard, file_type, self.config.compression)
        f = FileStat(sink.name, day, shard, file_type, copy_of=original.name)
        self.queue.write(sink, to_bytes(original.lines.filter(pa.array(keep))))
        self.stats.record(
            f, index, original.owners[keep], original.second[keep], original.codes[keep], original.classes
        )
        self.queue.close(sink, f)
        self.stats.files.append(f)


def generate(
    config: GeneratorConfig, out: Path, force: bool = False, on_day: Callable[[DayDone], None] | None = None
) -> GenerationStats:
    """Write the data set and its manifest into `out`; returns the tallies."""
    prepare_out_dir(out, force)
    generator = Generator(config, out)
    stats = generator.run(on_day)
    manifest = {
        "generator": "musicbox generate",
        "arguments": config.to_json(),
        "artefacts": {
            "missing_files": sorted(file_name(d, s, t, config.compression) for d, t, s in generator.missing)
        },
        **stats.to_json(),
    }
    write_manifest(out, manifest)
    return stats

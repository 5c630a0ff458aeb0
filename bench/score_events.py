"""The recommendation side of `bench.score`: events/s into the listening state, and the day close.

1. An ALS model (the default parameters unless --factors) on random listening with taste
   clusters over --songs songs, and its popularity fallback, promoted in the bench's registry.
2. --events plays and downloads (5 % downloads) of --active-users users on one day, produced at
   once BEFORE the worker starts (the bench's producer is slower than the worker ought to be);
   then `musicbox worker` is started and reads the backlog. Events/s into state: the worker's
   own counter (`musicbox_worker_events_total`, polled every 0.1 s), from its first non-zero
   value to the last event, so start-up is not counted.
3. The day's ticks on every partition of both topics: the close refreshes every active user.
   Users/s: recommendations over the time from the ticks' send to the last one generated.
With `code`, the worker of another checkout runs instead (old vs new on the same bench).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.worker_io import Producer, metric_sum, read_records, start_worker, wait_for_records
from models.als import AlsParams, train_als
from models.metadata import TrainingInfo, fingerprint
from models.popularity import PopularityModel
from models.registry import promote, save_als
from musicbox.events import Event, Tick
from musicbox.settings import Settings
from musicbox.topics import Topics

DAY, NEXT_DAY = "2017-04-29", "2017-04-30"
DOWNLOAD_SHARE = 0.05
EVENTS_METRIC = "musicbox_worker_events_total"


def train_als_model(root: Path, users: int, songs: int, factors: int, seed: int = 0) -> str:
    """ALS on random listening with taste clusters (30 ratings a user), plus its fallback."""
    rng = np.random.default_rng(seed)
    uid = rng.integers(1, users + 1, 30 * users)
    cluster = uid % 20
    song = 1_001 + (cluster * (songs // 20) + rng.integers(0, songs // 20, len(uid))) % songs
    ratings = (
        pd.DataFrame({"uid": uid, "song_id": song, "rating": rng.uniform(0.2, 1.0, len(uid))})
        .groupby(["uid", "song_id"], as_index=False)["rating"]
        .sum()
    )
    als, _ = train_als(ratings, AlsParams(factors=factors))
    info = TrainingInfo(("2017-03-30", "2017-04-28"), fingerprint(ratings))
    meta = save_als(root, als, PopularityModel.fit(ratings), info)
    promote(root, "als", meta.version)
    return meta.version


def event_messages(
    events: int, users: int, songs: int, seed: int = 5
) -> dict[str, tuple[list[bytes], list[bytes]]]:
    """topic suffix -> (keys, values): plays and downloads of one day, the users' songs skewed to
    their cluster's like the model's."""
    rng = np.random.default_rng(seed)
    uid = rng.integers(1, users + 1, events)
    cluster = uid % 20
    song = 1_001 + (cluster * (songs // 20) + rng.integers(0, songs // 20, events)) % songs
    play_s = rng.integers(0, 300, events)
    is_download = rng.random(events) < DOWNLOAD_SHARE
    out: dict[str, tuple[list[bytes], list[bytes]]] = {"plays": ([], []), "downloads": ([], [])}
    for i, (u, s, t, d) in enumerate(
        zip(uid.tolist(), song.tolist(), play_s.tolist(), is_download.tolist(), strict=True)
    ):
        if d:
            event = Event(
                "download", f"bench:{i}", u, DAY, 0, "ar", song_id=s, song_name="歌", singer="歌手", paid=0
            )
        else:
            event = Event(
                "play", f"bench:{i}", u, DAY, 0, "ar", song_id=s, song_type=0, song_name="歌", singer="歌手",
                play_time_s=t, song_length_s=240, paid=0,
            )  # fmt: skip
        keys, values = out["downloads" if d else "plays"]
        keys.append(str(u).encode())
        values.append(event.to_json())
    return out


def _wait_for_events(settings: Settings, want: int, timeout_s: float) -> tuple[float, float, float]:
    """(count at the first non-zero reading, its time, the time `want` was reached)."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, float] | None = None
    while time.monotonic() < deadline:
        seen = metric_sum(settings, EVENTS_METRIC)
        now = time.perf_counter()
        if seen and first is None:
            first = (seen, now)
        if seen is not None and seen >= want:
            assert first is not None
            return first[0], first[1], now
        time.sleep(0.1)
    raise SystemExit(f"the worker did not fold {want:,} events in {timeout_s:.0f} s")


def bench_events(
    settings: Settings, events: int, users: int, songs: int, factors: int = 32, code: Path | None = None
) -> dict[str, float]:
    topics = Topics(settings.topic_prefix)
    started = time.perf_counter()
    version = train_als_model(settings.models_dir, users, songs, factors)
    print(
        f"events: ALS {version}: {users:,} users x {songs:,} songs, {factors} factors "
        f"({time.perf_counter() - started:.0f} s)"
    )
    messages = event_messages(events, users, songs)
    active = len({k for keys, _ in messages.values() for k in keys})
    producer = Producer(settings)
    produce_s = sum(
        producer.send(f"{topics.prefix}{name}", keys, values) for name, (keys, values) in messages.items()
    )
    print(
        f"events: {events:,} plays and downloads of {active:,} users produced in {produce_s:.1f} s, "
        "before the worker starts"
    )
    log = settings.var_dir / "worker-events.log"
    with open(log, "w") as out:
        proc = start_worker(settings, out, code=code)
    try:
        first_count, first_s, last_s = _wait_for_events(settings, events, 1800)
        fold_rate = (events - first_count) / max(last_s - first_s, 1e-3)
        print(
            f"events: {events:,} folded; {fold_rate:,.0f} events/s into state "
            f"(from the first count, {first_count:,.0f}, to the last: {last_s - first_s:.1f} s)"
        )
        tick = Tick(NEXT_DAY).to_json()
        ticked_s = time.time()
        for topic in (topics.plays, topics.downloads):
            for partition in range(settings.partitions):
                producer.send_at(topic, partition, [tick])
        wait_for_records(settings, topics.recommendations, active, 1800)
        recs = [r for r in read_records(settings, topics.recommendations, active, 120) if r["as_of"] == DAY]
    finally:
        producer.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    text = log.read_text()
    if len(recs) < active:
        raise SystemExit(f"events: only {len(recs)} of {active} recommendations; log tail:\n{text[-3000:]}")
    generated = np.array([r["generated_at_ms"] for r in recs], dtype=np.float64) / 1000
    close_s = generated.max() - ticked_s
    als_share = sum(r["source"] == "als" for r in recs) / len(recs)
    print(
        f"day close: {len(recs):,} recommendations, last {close_s:.2f} s after the ticks "
        f"({len(recs) / close_s:,.0f} users/s; first after {generated.min() - ticked_s:.2f} s), "
        f"{als_share:.0%} from ALS"
    )
    for line in text.splitlines():
        if re.match(r"(events|recommendations|day closes):", line):
            print(f"worker summary: {line}")
    return {"events_per_s": fold_rate, "users_per_s": len(recs) / close_s}

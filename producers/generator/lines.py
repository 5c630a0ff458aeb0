"""Log lines in the dumps' format, built column-wise with Arrow kernels: the generator's hot path.

A line is a template of columns and literal separators (every field followed by a space,
fields joined by TAB), joined element-wise in C++; the file's bytes are then the data
buffer of the resulting string array, with no per-line Python work.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producers.generator.catalog import Catalog
from producers.generator.population import DEVICES, Users

# Searches by hour of the day, China local time: quiet at dawn, peaks at noon and in the evening.
HOURLY_SEARCH_WEIGHT = (
    3.0,
    2.0,
    1.2,
    0.7,
    0.5,
    0.5,
    0.8,
    1.8,
    3.0,
    3.8,
    4.2,
    4.5,
    5.0,
    4.8,
    4.3,
    4.2,
    4.3,
    4.6,
    5.0,
    5.8,
    6.5,
    6.8,
    6.2,
    4.6,
)
_HOUR_CDF = np.cumsum(HOURLY_SEARCH_WEIGHT) / sum(HOURLY_SEARCH_WEIGHT)
_CLOCK = pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)])

# Column names, and the literal text between them. `uid_device` is "uid \tdevice \t" and
# `song_text` is "title \tsinger \t": text that repeats is joined once per user or song.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "play": (
        "@uid_device",
        "@song_id",
        " \t",
        "@song_type",
        " \t",
        "@song_text",
        "@play_time",
        " \t",
        "@song_length",
        " \t0 \n",
    ),
    "down": ("@uid_device", "@song_id", " \t", "@song_text", "0 \n"),
    "search": ("@uid_device", "@time_stamp", " \t", "@query", " \n"),
}

Columns = dict[str, pa.Array]


@lru_cache(maxsize=200_000)
def encode_query(text: str, lower: bool) -> str:
    """URL percent-encoded UTF-8, as in the dumps; iPhone clients wrote lower-case hex (`%e9%83%ad`)."""
    encoded = quote(text, safe="")
    return encoded.lower() if lower else encoded


def search_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after local midnight of `n` searches, following the daily rhythm."""
    hour = np.minimum(np.searchsorted(_HOUR_CDF, rng.random(n), side="right"), 23)
    return hour * 3600 + rng.integers(0, 3600, n)


def join(file_type: str, columns: Columns) -> pa.StringArray:
    """The lines of one chunk (each ending in a newline) from its columns."""
    parts = [columns[item[1:]] if item.startswith("@") else pa.scalar(item) for item in TEMPLATES[file_type]]
    return pc.binary_join_element_wise(*parts, pa.scalar(""))


def to_bytes(lines: pa.StringArray) -> bytes:
    """The text of all lines, back to back: a slice of the array's data buffer."""
    if len(lines) == 0:
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _strings(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


class Formatter:
    """The columns of each file type for one data set; `second` flags events on a user's other device."""

    def __init__(self, users: Users, catalog: Catalog) -> None:
        uids = users.uid.tolist()
        prefixes: list[str] = []
        for u, d1, d2 in zip(uids, users.device.tolist(), users.device2.tolist(), strict=True):
            prefixes += (f"{u} \t{DEVICES[d1]} \t", f"{u} \t{DEVICES[d2]} \t")
        self._prefix = pa.array(prefixes)
        ip = DEVICES.index("ip")
        self._lower_hex = np.column_stack([users.device == ip, users.device2 == ip]).ravel()
        self._song_text = pa.array(
            [f"{t} \t{s} \t" for t, s in zip(catalog.titles, catalog.singers, strict=True)]
        )
        self._song_id = _strings(catalog.song_id)
        self._catalog = catalog

    def _uid_device(self, owners: np.ndarray, second: np.ndarray) -> pa.Array:
        return self._prefix.take(pa.array(owners * 2 + second))

    def play(
        self, owners: np.ndarray, second: np.ndarray, songs: np.ndarray, play_time_s: np.ndarray
    ) -> Columns:
        idx = pa.array(songs)
        return {
            "uid_device": self._uid_device(owners, second),
            "song_id": self._song_id.take(idx),
            "song_type": _strings(self._catalog.song_type[songs]),
            "song_text": self._song_text.take(idx),
            "play_time": _strings(play_time_s),
            "song_length": _strings(self._catalog.length_s[songs]),
        }

    def download(self, owners: np.ndarray, second: np.ndarray, songs: np.ndarray) -> Columns:
        idx = pa.array(songs)
        return {
            "uid_device": self._uid_device(owners, second),
            "song_id": self._song_id.take(idx),
            "song_text": self._song_text.take(idx),
        }

    def search(
        self, owners: np.ndarray, second: np.ndarray, day: date, seconds: np.ndarray, queries: list[str]
    ) -> Columns:
        lower = self._lower_hex[owners * 2 + second].tolist()
        clock = _CLOCK.take(pa.array(seconds))
        return {
            "uid_device": self._uid_device(owners, second),
            "time_stamp": pc.binary_join_element_wise(pa.scalar(day.isoformat()), clock, pa.scalar(" ")),
            "query": pa.array([encode_query(q, lw) for q, lw in zip(queries, lower, strict=True)]),
        }

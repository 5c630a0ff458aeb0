"""The dirt of the real dumps, injected at known rates, one class per dirty line, each switchable.

Malformed classes become dead letters in the reader (wrong field count, bad uid);
repairable classes leave a field the reader nulls while the event still counts; artefact
classes act on whole files (a missing shard, a near-copy day). Value classes replace one
column of a chunk (vectorised); the few structural ones rewrite whole lines.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producers.generator.errors import GeneratorError

# Reader outcome of each line class (DESIGN 3b): a dead-letter reason, or the repaired field.
MALFORMED: dict[str, str] = {
    "tab_in_name": "field_count",
    "shifted": "field_count",
    "uid_only": "field_count",
    "uid_zero": "bad_uid",
}
REPAIRABLE: dict[str, str | None] = {
    "song_id_unknown": "song_id",  # song_id 0: very common in the real data (~8 % of plays)
    "song_id_sentinel": "song_id",  # -1, other negatives, values above 2^63
    "play_time_garbage": "play_time_s",  # `71>=(223.104.12.211)TM`, -2147483648, 1e8, 1e12
    "song_length_bad": "song_length_s",  # 0, -1, huge
    "song_type_blank": None,  # blank is the format's "no type": null without a repair
}
ARTEFACTS: tuple[str, ...] = ("missing_shard", "near_copy")
LINE_CLASSES: tuple[str, ...] = (*MALFORMED, *REPAIRABLE)
ALL_CLASSES: tuple[str, ...] = (*LINE_CLASSES, *ARTEFACTS)

# The column each value class replaces (lines.TEMPLATES); the other line classes are structural.
VALUE_COLUMN: dict[str, str] = {
    "uid_zero": "uid_device",
    "song_id_unknown": "song_id",
    "song_id_sentinel": "song_id",
    "play_time_garbage": "play_time",
    "song_length_bad": "song_length",
    "song_type_blank": "song_type",
}

# Share of lines of each file type in each class. play_time_garbage and song_id_unknown are the
# study's figures; the rest are guesses of the right order ("malformed lines are common").
RATES: dict[str, dict[str, float]] = {
    "play": {
        "song_id_unknown": 0.08,
        "song_type_blank": 0.01,
        "play_time_garbage": 0.0058,
        "song_length_bad": 0.004,
        "song_id_sentinel": 0.001,
        "tab_in_name": 0.0015,
        "shifted": 0.0005,
        "uid_only": 0.0005,
        "uid_zero": 0.0005,
    },
    "down": {
        "song_id_unknown": 0.02,
        "song_id_sentinel": 0.001,
        "tab_in_name": 0.0015,
        "shifted": 0.0005,
        "uid_only": 0.0005,
        "uid_zero": 0.0005,
    },
    "search": {"shifted": 0.0005, "uid_only": 0.0005, "uid_zero": 0.0005},
}
NEAR_COPY_DROP_SHARE = 0.003  # the copy misses a few lines of the original

FIELDS = {
    "play": (
        "uid",
        "device",
        "song_id",
        "song_type",
        "song_name",
        "singer",
        "play_time",
        "song_length",
        "paid_flag",
    ),
    "down": ("uid", "device", "song_id", "song_name", "singer", "paid_flag"),
    "search": ("uid", "device", "time_stamp", "search_query"),
}
_GARBAGE_PLAY_TIME = ("-2147483648", "100000000", "1000000000000", "275249")
_VARIANTS = 1_000_003
_CONSTANT = {"song_id_unknown": "0", "song_type_blank": ""}


class DirtError(GeneratorError):
    """An unknown dirt class on the command line."""


def parse_classes(text: str) -> frozenset[str]:
    """`--dirt` value: comma-separated classes, `all` or `none`."""
    words = {w.strip() for w in text.split(",") if w.strip()}
    if words <= {"none"}:
        return frozenset()
    if "all" in words:
        return frozenset(ALL_CLASSES)
    unknown = sorted(words - set(ALL_CLASSES))
    if unknown:
        raise DirtError(f"unknown dirt class {', '.join(unknown)}; choose from: {', '.join(ALL_CLASSES)}")
    return frozenset(words)


def class_table(file_type: str, enabled: Iterable[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """(classes, cumulative rates) of the enabled line classes of one file type."""
    on = set(enabled)
    rates = {c: r for c, r in RATES[file_type].items() if c in on}
    return tuple(rates), np.cumsum(list(rates.values()))


def draw(rng: np.random.Generator, n: int, cum_rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class code per line: 0 = clean, i = class i-1 of the table; variant number per line)."""
    u = rng.random(n)
    variants = rng.integers(0, _VARIANTS, n)
    if len(cum_rates) == 0:
        return np.zeros(n, dtype=np.int8), variants
    codes = np.searchsorted(cum_rates, u, side="right") + 1
    codes[u >= cum_rates[-1]] = 0
    return codes.astype(np.int8), variants


def dirty_value(cls: str, k: int, old: str) -> str:
    """The value a value class puts in its column; `k` picks the variant, `old` is the clean value."""
    if cls == "uid_zero":
        return "0" + old[old.index(" ") :]  # the uid_device column: "uid \tdevice \t"
    if cls == "song_id_unknown":
        return "0"
    if cls == "song_id_sentinel":
        return ("-1", f"-{k % 1000 + 2}", str(2**64 - 1 - k), str(2**63 + k))[k % 4]
    if cls == "play_time_garbage":
        if k % 5 == 0:
            return f"{k % 300}>=(223.{k % 256}.{k // 256 % 256}.{k // 65_536 % 256})TM"
        return _GARBAGE_PLAY_TIME[k % 5 - 1]
    if cls == "song_length_bad":
        return ("0", "0", "-1", str(4_801 + k), "2147483647")[k % 5]
    if cls == "song_type_blank":
        return ""
    raise DirtError(f"{cls!r} is not a value class")


def format_fields(fields: list[str]) -> str:
    """A line as in the dumps: every field followed by a space, joined by TAB."""
    return "\t".join(f + " " for f in fields) + "\n"


def corrupt_line(line: str, file_type: str, cls: str, k: int) -> str:
    """The clean `line` rewritten by structural class `cls`."""
    fields = [f[:-1] for f in line[:-1].split("\t")]
    if cls == "uid_only":
        return fields[0] + "\n"  # as the real `264715` line: the uid alone, nothing after it
    if cls == "tab_in_name":
        names = FIELDS[file_type]
        at = names.index("song_name") if k % 3 else names.index("singer")
        name = fields[at]
        cut = max(1, len(name) // 2)
        fields[at] = f"{name[:cut]}\t{name[cut:] or '版'}\tfeat."  # two TABs: 11 fields in a play line
    elif cls == "shifted":
        at = 1 + k % (len(fields) - 1)  # never the uid: the reader must see a wrong count, not a bad uid
        if k % 2:
            del fields[at]
        else:
            fields.insert(at, "")
    else:
        raise DirtError(f"{cls!r} is not a structural class")
    return format_fields(fields)


def apply_values(
    columns: dict[str, pa.Array], codes: np.ndarray, variants: np.ndarray, classes: tuple[str, ...]
) -> None:
    """Put the value classes' garbage into the columns, in place: one masked replace per column."""
    by_column: dict[str, list[tuple[np.ndarray, list[str]]]] = {}
    for code, cls in enumerate(classes, start=1):
        column = VALUE_COLUMN.get(cls)
        rows = np.flatnonzero(codes == code)
        if column is None or len(rows) == 0:
            continue
        if cls in _CONSTANT:  # the common classes: no Python call per line
            values = [_CONSTANT[cls]] * len(rows)
        else:
            old = columns[column].take(pa.array(rows)).to_pylist() if cls == "uid_zero" else [""] * len(rows)
            values = [dirty_value(cls, k, o) for k, o in zip(variants[rows].tolist(), old, strict=True)]
        by_column.setdefault(column, []).append((rows, values))
    for column, parts in by_column.items():
        rows = np.concatenate([r for r, _ in parts])
        order = np.argsort(rows, kind="stable")  # replace_with_mask fills the mask's rows in order
        values = [v for _, vs in parts for v in vs]
        mask = np.zeros(len(columns[column]), dtype=bool)
        mask[rows] = True
        replacements = pa.array([values[i] for i in order.tolist()], type=pa.string())
        columns[column] = pc.replace_with_mask(columns[column], pa.array(mask), replacements)


def apply_lines(
    lines: pa.StringArray, file_type: str, codes: np.ndarray, variants: np.ndarray, classes: tuple[str, ...]
) -> pa.StringArray:
    """Rewrite the lines of the structural classes."""
    structural = [code for code, cls in enumerate(classes, start=1) if cls not in VALUE_COLUMN]
    rows = np.flatnonzero(np.isin(codes, structural))
    if len(rows) == 0:
        return lines
    old = lines.take(pa.array(rows)).to_pylist()
    new = [
        corrupt_line(line, file_type, classes[codes[i] - 1], int(variants[i]))
        for i, line in zip(rows.tolist(), old, strict=True)
    ]
    mask = np.zeros(len(lines), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(lines, pa.array(mask), pa.array(new, type=pa.string()))

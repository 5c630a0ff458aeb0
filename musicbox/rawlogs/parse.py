"""One raw log line -> an Event or a DeadLetter, plus the fields it had to repair (DESIGN 3b).

Pure and on the hot path of the replay (every line of ~12 GB goes through it), so it uses
str methods rather than regexes and allocates only the event it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from musicbox.events import UID_MAX, DeadLetter, Event

READ_STAGE = "read"
# Reasons a line is rejected (a dead letter) rather than repaired.
EMPTY = "empty"
UNDECODABLE = "undecodable"
FIELD_COUNT = "field_count"
BAD_UID = "bad_uid"
DAMAGED_FILE = "damaged_file"  # the unreadable rest of a damaged file (read.py), not one line
DEAD_LETTER_REASONS = (EMPTY, UNDECODABLE, FIELD_COUNT, BAD_UID, DAMAGED_FILE)

FIELD_COUNTS: dict[str, int] = {"play": 9, "download": 6, "search": 4}
PLAY_TIME_MAX_S = 86_400
SONG_LENGTH_MAX_S = 4_800

# Longest digit string worth converting: anything longer is out of every range we accept
# (and int() of a few thousand digits is slow, then refused).
_MAX_DIGITS = 24
_SONG_TYPES = {"0": 0, "1": 1, "2": 2, "3": 3}
_PAID = {"0": 0, "1": 1}

Parsed = tuple[Event | DeadLetter, tuple[str, ...]]


@dataclass(slots=True)
class LineContext:
    """Where a line comes from. The reader keeps one per file and advances `line_no` and
    `event_time_ms` (its byte-offset time, used by play and download) line by line."""

    log_name: str
    file_date: str  # ISO date of the file
    event_type: str  # "play" | "download" | "search"
    line_no: int  # 1-based
    event_time_ms: int
    day_start_ms: int  # where a search with an unreadable time_stamp is placed


def parse_line(raw: bytes, ctx: LineContext) -> Parsed:
    """Parse one line (its trailing newline may be present): exactly one Event or DeadLetter."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _dead(ctx, UNDECODABLE, raw.decode("utf-8", "backslashreplace")), ()
    parts = text.split("\t")
    event_type = ctx.event_type
    if len(parts) != FIELD_COUNTS[event_type]:
        return _dead(ctx, EMPTY if text.isspace() or not text else FIELD_COUNT, text), ()
    uid_s = parts[0].strip()
    uid = _positive_int(uid_s)
    if uid is None:
        return _dead(ctx, EMPTY if text.isspace() else BAD_UID, text), ()
    if event_type == "play":
        return _play(parts, uid, ctx)
    if event_type == "download":
        return _download(parts, uid, ctx)
    return _search(parts, uid, ctx)


def _play(parts: list[str], uid: int, ctx: LineContext) -> Parsed:
    repairs: tuple[str, ...] = ()
    device = parts[1].strip() or None
    if device is None:
        repairs += ("device",)
    # Each numeric field: an inline fast path for the clean common case, the full check else.
    s = parts[2].strip()
    song_id = int(s) if s.isdigit() and s.isascii() and len(s) < 19 else _positive_int(s)
    if not song_id:  # 0 is the format's "unknown song"
        song_id = None
        repairs += ("song_id",)
    s = parts[3].strip()
    song_type = _SONG_TYPES.get(s)
    if song_type is None and s:  # blank is the format's "no type", not dirt
        repairs += ("song_type",)
    s = parts[6].strip()
    clean = s.isdigit() and s.isascii()
    play_time_s = int(s) if clean and len(s) < 6 else _seconds(s, 0, PLAY_TIME_MAX_S)
    if play_time_s is not None and play_time_s > PLAY_TIME_MAX_S:
        play_time_s = None
    if play_time_s is None:
        repairs += ("play_time_s",)
    s = parts[7].strip()
    clean = s.isdigit() and s.isascii()
    song_length_s = int(s) if clean and len(s) < 5 else _seconds(s, 1, SONG_LENGTH_MAX_S)
    if not song_length_s or song_length_s > SONG_LENGTH_MAX_S:
        song_length_s = None
        repairs += ("song_length_s",)
    paid = _PAID.get(parts[8].strip())
    if paid is None:
        repairs += ("paid",)
    event = Event(
        "play",
        f"{ctx.log_name}:{ctx.line_no}",
        uid,
        ctx.file_date,
        ctx.event_time_ms,
        device,
        song_id,
        song_type,
        parts[4].strip(),
        parts[5].strip(),
        play_time_s,
        song_length_s,
        paid,
    )
    return event, repairs


def _download(parts: list[str], uid: int, ctx: LineContext) -> Parsed:
    repairs: tuple[str, ...] = ()
    device = parts[1].strip() or None
    if device is None:
        repairs += ("device",)
    song_id = _positive_int(parts[2].strip())
    if song_id is None:
        repairs += ("song_id",)
    paid = _PAID.get(parts[5].strip())
    if paid is None:
        repairs += ("paid",)
    event = Event(
        "download",
        f"{ctx.log_name}:{ctx.line_no}",
        uid,
        ctx.file_date,
        ctx.event_time_ms,
        device,
        song_id,
        None,
        parts[3].strip(),
        parts[4].strip(),
        None,
        None,
        paid,
    )
    return event, repairs


def _search(parts: list[str], uid: int, ctx: LineContext) -> Parsed:
    repairs: tuple[str, ...] = ()
    device = parts[1].strip() or None
    if device is None:
        repairs += ("device",)
    clock_s = clock_seconds(parts[2].strip())
    if clock_s is None:
        repairs += ("time_stamp",)
        event_time_ms = ctx.day_start_ms
    else:
        event_time_ms = ctx.day_start_ms + clock_s * 1000
    query = parts[3].strip()
    if "%" in query:
        try:
            # For ASCII text unquote() is exactly this, minus its per-call regex split.
            query = unquote_to_bytes(query).decode() if query.isascii() else unquote(query, errors="strict")
        except UnicodeDecodeError:
            repairs += ("query",)  # kept as it came: better raw text than a guess
    event = Event(
        "search", f"{ctx.log_name}:{ctx.line_no}", uid, ctx.file_date, event_time_ms, device, query=query
    )
    return event, repairs


def clock_seconds(time_stamp: str) -> int | None:
    """Seconds since midnight of a `YYYY-MM-DD HH:MM:SS` time stamp, or None if it is not one."""
    if (
        len(time_stamp) != 19
        or time_stamp[4] != "-"
        or time_stamp[7] != "-"
        or time_stamp[10] != " "
        or time_stamp[13] != ":"
        or time_stamp[16] != ":"
        or not time_stamp.isascii()
    ):
        return None
    digits = time_stamp[:4] + time_stamp[5:7] + time_stamp[8:10]
    hh, mm, ss = time_stamp[11:13], time_stamp[14:16], time_stamp[17:19]
    if not (digits + hh + mm + ss).isdigit():
        return None
    hours, minutes, seconds = int(hh), int(mm), int(ss)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds


def _positive_int(s: str) -> int | None:
    """An integer in [1, 2^63-1] written in ASCII digits only, else None."""
    if not (s.isascii() and s.isdigit()) or len(s) > _MAX_DIGITS:
        return None
    value = int(s)
    return value if 1 <= value <= UID_MAX else None


def _seconds(s: str, low: int, high: int) -> int | None:
    """A duration in whole seconds (decimals truncated) within [low, high], else None.

    Only plain decimal notation counts: no sign, no exponent (`1e12` is garbage here)."""
    if not s.isascii():
        return None
    if not s.isdigit():
        whole, dot, fraction = s.partition(".")
        if not dot or not (whole or fraction) or (whole and not whole.isdigit()):
            return None
        if fraction and not fraction.isdigit():
            return None
        s = whole or "0"
    if len(s) > _MAX_DIGITS:
        return None
    value = int(s)
    return value if low <= value <= high else None


def _dead(ctx: LineContext, reason: str, text: str) -> DeadLetter:
    return DeadLetter(READ_STAGE, reason, text.rstrip("\r\n"), f"{ctx.log_name}:{ctx.line_no}")

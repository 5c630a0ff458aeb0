"""Reading files, days and folders: compression, event times, merge order, counts, resume, errors,
damaged files."""

from __future__ import annotations

import dataclasses
import gzip
import io
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from musicbox.events import DAY_MS, DeadLetter, Event, day_start_ms
from musicbox.rawlogs import (
    NoLogFilesError,
    ReadStats,
    find_log_files,
    iter_day,
    iter_file,
    iter_logs,
    parse_log_name,
)
from musicbox.rawlogs.parse import DAMAGED_FILE

DAY0 = day_start_ms("2017-03-30")


def row(*fields: str) -> str:
    return " \t".join(fields) + "\n"


def play(uid: int, song: int = 7, play_time: str = "100") -> str:
    return row(str(uid), "ar", str(song), "1", "歌", "手", play_time, "200", "0")


def down(uid: int) -> str:
    return row(str(uid), "ip", "5", "小酒窝", "林俊杰", "0")


def search(uid: int, clock: str) -> str:
    return row(str(uid), "ar", f"2017-03-30 {clock}", "%e6%af%af")


def write_log(folder: Path, log_name: str, text: str | bytes, compression: str = "none") -> Path:
    """A log file as shipped: plain, gzip, or a tarball holding the one .log."""
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    if compression == "none":
        path = folder / log_name
        path.write_bytes(data)
    elif compression == "gz":
        path = folder / f"{log_name}.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = folder / f"{log_name}.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            # macOS tar adds a "._" resource fork first: it must not be taken for the log.
            for name, payload in ((f"logs/._{log_name}", b"\x00\x05junk"), (f"logs/{log_name}", data)):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
    return path


MIXED_PLAY = (
    play(168000001)
    + "264715\n"  # uid only: dead letter
    + play(168000002, play_time="71>=(223.104.12.211)TM")  # repaired
    + "\n"  # empty: dead letter
    + play(0)  # bad uid: dead letter
    + play(168000003, song=0)
    + play(168000004).replace("\n", "\r\n")  # CRLF
)


@pytest.mark.parametrize("compression", ["gz", "tar.gz"])
def test_compressed_files_read_exactly_like_the_plain_file(tmp_path: Path, compression: str) -> None:
    plain = write_log(tmp_path / "plain", "20170330_1_play.log", MIXED_PLAY)
    packed = write_log(tmp_path / "packed", "20170330_1_play.log", MIXED_PLAY, compression)
    plain_log, packed_log = parse_log_name(plain), parse_log_name(packed)
    assert plain_log is not None and packed_log is not None
    expected = list(iter_file(plain_log))
    # Same events, same ids, same byte-offset times: the uncompressed size is known up front.
    assert list(iter_file(packed_log)) == expected
    kinds = ["Event", "DeadLetter", "Event", "DeadLetter", "DeadLetter", "Event", "Event"]
    assert [type(i).__name__ for i in expected] == kinds


def test_multi_member_gzip_falls_back_to_counting_its_size(tmp_path: Path) -> None:
    # Concatenated gzip members: the trailer's size is the last member's only.
    plain = write_log(tmp_path / "plain", "20170330_1_play.log", MIXED_PLAY)
    halves = MIXED_PLAY[: len(MIXED_PLAY) // 2], MIXED_PLAY[len(MIXED_PLAY) // 2 :]
    packed = tmp_path / "20170330_1_play.log.gz"
    packed.write_bytes(b"".join(gzip.compress(h.encode()) for h in halves))
    plain_log, packed_log = parse_log_name(plain), parse_log_name(packed)
    assert plain_log is not None and packed_log is not None
    assert list(iter_file(packed_log)) == list(iter_file(plain_log))


def test_play_times_spread_over_the_day_by_byte_offset(tmp_path: Path) -> None:
    lines = [play(168000000 + n) for n in range(4)]  # four lines of equal length
    log = parse_log_name(write_log(tmp_path, "20170330_1_play.log", "".join(lines)))
    assert log is not None
    times = [item.event_time_ms for item in iter_file(log) if isinstance(item, Event)]
    assert times == [DAY0 + k * DAY_MS // 4 for k in range(4)]


def test_a_bom_at_the_start_of_a_file_is_not_part_of_the_uid(tmp_path: Path) -> None:
    log = parse_log_name(write_log(tmp_path, "20170330_1_down.log", "\ufeff" + down(168000001)))
    assert log is not None
    (item,) = iter_file(log)
    assert isinstance(item, Event) and item.uid == 168000001


def test_day_merges_files_in_event_time_order_with_ties_by_type_then_shard(tmp_path: Path) -> None:
    write_log(tmp_path, "20170330_2_play.log", play(2001) + play(2002))
    write_log(tmp_path, "20170330_1_play.log", play(1001) + play(1002))
    write_log(tmp_path, "20170330_1_down.log", down(3001) + down(3002))
    # Searches at midnight tie with every file's first line; then 13:00 (after the second plays,
    # at 12:00), a dead letter that keeps its place, a clock out of order that keeps its place too.
    write_log(
        tmp_path,
        "20170330_1_search.log",
        search(4001, "00:00:00") + search(4002, "13:00:00") + "junk\n" + search(4003, "01:00:00"),
    )
    stats = ReadStats()
    items = list(iter_day(find_log_files(tmp_path), stats))
    assert [i.event_id if isinstance(i, Event) else i.source for i in items] == [
        "20170330_1_play.log:1",  # 00:00, play before download before search, shard 1 before 2
        "20170330_2_play.log:1",
        "20170330_1_down.log:1",
        "20170330_1_search.log:1",
        "20170330_1_play.log:2",  # 12:00 (the second of two equal lines)
        "20170330_2_play.log:2",
        "20170330_1_down.log:2",
        "20170330_1_search.log:2",  # 13:00
        "20170330_1_search.log:3",  # the dead letter right after its file predecessor
        "20170330_1_search.log:4",  # 01:00 by its clock, but read after 13:00: stays in file order
    ]
    last = items[-1]
    assert isinstance(last, Event) and last.event_time_ms == DAY0 + 3_600_000  # its own clock time is kept
    assert stats.lines == len(items) == 10


def test_resume_skips_the_first_items_of_a_day_deterministically(tmp_path: Path) -> None:
    write_log(tmp_path, "20170330_1_play.log", MIXED_PLAY)
    write_log(tmp_path, "20170330_2_play.log", MIXED_PLAY)
    write_log(tmp_path, "20170330_1_search.log", search(4001, "05:00:00") + search(4002, "18:00:00"))
    logs = find_log_files(tmp_path)
    everything = list(iter_day(logs))
    assert list(iter_day(logs, skip=5)) == everything[5:]
    assert list(iter_day(logs, skip=len(everything) + 3)) == []


def test_folder_counts_lines_as_events_plus_dead_letters(tmp_path: Path) -> None:
    write_log(tmp_path / "march", "20170330_1_play.log", MIXED_PLAY, "tar.gz")
    write_log(tmp_path / "march", "20170330_2_play.log", MIXED_PLAY, "gz")
    write_log(tmp_path, "20170330_1_down.log", down(1) + "1 \tar\n" + down(2))
    write_log(tmp_path, "20170331_1_search.log", search(5, "10:00:00").encode() + b"\xff\n")
    write_log(tmp_path, "20170331_1_play.log", play(9))
    (tmp_path / "README.txt").write_text("not a log")
    stats = ReadStats()
    items = list(iter_logs(tmp_path, stats=stats))
    events = [i for i in items if isinstance(i, Event)]
    dead = [i for i in items if isinstance(i, DeadLetter)]
    assert stats.lines == len(items) == 7 + 7 + 3 + 2 + 1
    assert (stats.events, stats.dead_letters) == (len(events), len(dead)) == (12, 8)
    assert stats.events_by_type == {"play": 9, "download": 2, "search": 1}
    assert dict(stats.dead_letters_by_reason) == {
        "field_count": 3,
        "empty": 2,
        "bad_uid": 2,
        "undecodable": 1,
    }
    assert dict(stats.repairs_by_field) == {"play_time_s": 2, "song_id": 2}
    assert [s.path.name for s in stats.skipped] == ["README.txt"]
    # Day by day: every item of 03-30 before any of 03-31.
    days = [i.date if isinstance(i, Event) else i.source[:8] for i in items]
    assert days == sorted(days, key=lambda d: d.replace("-", ""))
    rows = stats.by_day_and_type()
    assert rows[("2017-03-30", "play")] == (14, 6, 2)
    assert rows[("2017-03-31", "search")] == (2, 1, 1)


def test_date_range_selects_days(tmp_path: Path) -> None:
    for day in ("20170330", "20170331", "20170401"):
        write_log(tmp_path, f"{day}_1_play.log", play(1))
    dates = {
        i.date
        for i in iter_logs(tmp_path, from_day="2017-03-31", to_day="2017-04-01")
        if isinstance(i, Event)
    }
    assert dates == {"2017-03-31", "2017-04-01"}


@pytest.mark.parametrize(
    ("make", "from_day", "to_day", "message"),
    [
        # An empty folder: nothing to read.
        (lambda p: None, None, None, "no log file under"),
        # Only other files: the message says how logs are named.
        (lambda p: (p / "notes.txt").write_text("x"), None, None, "20170330_1_play.log"),
        # Logs exist but not in the range: the message gives the range they cover.
        (lambda p: write_log(p, "20170330_1_play.log", play(1)), "2017-04-01", None, "cover 2017-03-30"),
        # A reversed range.
        (lambda p: write_log(p, "20170330_1_play.log", play(1)), "2017-04-02", "2017-04-01", "swap"),
    ],
)
def test_nothing_to_read_is_a_clear_error(tmp_path: Path, make, from_day, to_day, message: str) -> None:
    make(tmp_path)
    with pytest.raises(NoLogFilesError, match=message):
        iter_logs(tmp_path, from_day, to_day)  # raised at the call, before any item


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoLogFilesError, match="not a directory"):
        iter_logs(tmp_path / "nope")


def varied_plays(n: int) -> str:
    """`n` play lines that compress like real ones (~4:1), so a cut or a bad byte lands mid-file."""
    rng = random.Random(7)
    return "".join(
        play(
            168_000_000 + rng.randrange(10**6),
            song=rng.randrange(1, 10**7),
            play_time=str(rng.randrange(300)),
        )
        for _ in range(n)
    )


def cut_in_half(data: bytes) -> bytes:
    return data[: len(data) // 2]  # a broken download


def flip_middle_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF  # one bad byte in the compressed data (a bad disk, a bad copy)
    return bytes(damaged)


def without_time(item: Event | DeadLetter) -> Event | DeadLetter:
    """An item without its byte-offset time, which depends on the file's (unknowable) full size."""
    return dataclasses.replace(item, event_time_ms=0) if isinstance(item, Event) else item


@pytest.mark.parametrize("compression", ["gz", "tar.gz"])
@pytest.mark.parametrize(
    "damage",
    [
        cut_in_half,  # the compressed data stops in the middle: read to where it stops
        flip_middle_byte,  # zlib decodes through it; the gzip checksum at the end finds it
    ],
)
def test_a_damaged_file_is_read_up_to_the_damage_and_the_rest_of_the_folder_is_read(
    tmp_path: Path, compression: str, damage: Callable[[bytes], bytes]
) -> None:
    text = varied_plays(4_000)
    clean = parse_log_name(write_log(tmp_path / "clean", "20170330_1_play.log", text))
    assert clean is not None
    expected = [without_time(i) for i in iter_file(clean)]
    logs = tmp_path / "logs"
    packed = write_log(logs, "20170330_1_play.log", text, compression)
    packed.write_bytes(damage(packed.read_bytes()))
    write_log(logs, "20170330_2_play.log", play(2001) + play(2002), compression)  # same day, another shard
    write_log(logs, "20170331_1_down.log", down(3001), compression)  # the next day

    stats = ReadStats()
    items = list(iter_logs(logs, stats=stats))  # no error: one bad file does not stop the read

    mine = [i for i in items if (i.event_id if isinstance(i, Event) else i.source).startswith("20170330_1_")]
    *lines, last = mine
    # The damage is one dead letter, the file's last item, where reading stopped.
    assert isinstance(last, DeadLetter)
    assert (last.stage, last.reason, last.source) == (
        "read",
        DAMAGED_FILE,
        f"20170330_1_play.log:{len(mine)}",
    )
    assert last.raw.startswith(f"{packed.name} is damaged: reading stopped at line {len(mine):,} (byte ")
    # The lines before the damage are read as usual: a good share of the file, exactly as in the clean file.
    same = [without_time(a) == b for a, b in zip(lines, expected, strict=False)]
    intact = same.index(False) if False in same else len(same)
    assert intact > len(expected) // 4
    if damage is cut_in_half:
        assert [without_time(i) for i in lines] == expected[: len(lines)] and len(lines) < len(expected)
    # The other files are read whole.
    others = [i.event_id for i in items if isinstance(i, Event) and not i.event_id.startswith("20170330_1_")]
    assert others == ["20170330_2_play.log:1", "20170330_2_play.log:2", "20170331_1_down.log:1"]
    # The counts reconcile: the damage counts as one line and one dead letter.
    assert stats.lines == len(items) == stats.events + stats.dead_letters
    assert stats.dead_letters_by_reason[DAMAGED_FILE] == 1
    (damaged,) = [f.fingerprint() for f in stats.files if f.damage is not None]
    assert (damaged.log_name, damaged.rows, damaged.complete) == ("20170330_1_play.log", len(mine), False)
    assert damaged.damage == last.raw


@pytest.mark.parametrize(
    ("name", "make", "events", "says"),
    [
        # An empty .gz (a download that never started): one dead letter, nothing else.
        ("20170330_1_play.log.gz", lambda: b"", 0, "the file is empty"),
        # Not gzip at all, whatever its name says.
        ("20170330_1_play.log.gz", lambda: play(1).encode(), 0, "corrupt compressed data"),
        # A tarball without a .log inside.
        ("20170330_1_play.log.tar.gz", lambda: tarball({"readme.txt": b"hi"}), 0, "holds no .log file"),
        # Bytes after the last gzip member that are not gzip: the member's line is read first.
        (
            "20170330_1_play.log.gz",
            lambda: gzip.compress(play(1).encode()) + b"junk!",
            1,
            "corrupt compressed",
        ),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_a_damaged_file(
    tmp_path: Path, name: str, make: Callable[[], bytes], events: int, says: str
) -> None:
    (tmp_path / name).write_bytes(make())
    write_log(tmp_path, "20170330_1_down.log", down(1))  # read whatever the other file holds
    stats = ReadStats()
    items = list(iter_logs(tmp_path, stats=stats))
    dead = [i for i in items if isinstance(i, DeadLetter)]
    assert [d.reason for d in dead] == [DAMAGED_FILE] and says in dead[0].raw
    assert stats.events_by_type == {"play": events, "download": 1, "search": 0}
    assert stats.lines == len(items) == events + 2


def tarball(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for member, payload in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def test_a_tarball_cut_after_its_log_is_still_damaged(tmp_path: Path) -> None:
    # The log's lines are all there, but the gzip checksum that vouches for them is not: the
    # rest of the tarball (here a second member, 2 MB) is read to its end to check it.
    text = varied_plays(200)
    noise = random.Random(3).randbytes(2 << 20)
    packed = tarball({"20170330_1_play.log": text.encode(), "notes.bin": noise})
    (tmp_path / "20170330_1_play.log.tar.gz").write_bytes(packed[: len(packed) // 2])
    *lines, last = list(iter_logs(tmp_path))
    assert len(lines) == 200 and all(isinstance(i, Event) for i in lines)
    assert isinstance(last, DeadLetter) and last.reason == DAMAGED_FILE and "cut short" in last.raw


def test_a_truncated_gzip_whose_trailer_looks_like_a_size_still_reads_to_the_cut(tmp_path: Path) -> None:
    # A file cut short ends in compressed data: its last 4 bytes are no size. Here they claim
    # more than deflate can expand to, which the reader must not take for the size.
    data = gzip.compress(varied_plays(2_000).encode())
    cut = data[: len(data) // 2]
    cut = cut[:-4] + (2**32 - 1).to_bytes(4, "little")
    (tmp_path / "20170330_1_play.log.gz").write_bytes(cut)
    items = list(iter_logs(tmp_path))
    times = [i.event_time_ms for i in items if isinstance(i, Event)]
    # Spread over the day by the readable size, not squeezed into its first seconds by a 4 GiB one.
    assert len(times) > 500 and times[-1] - times[0] > DAY_MS // 2

"""The recommendation side's pure pieces: decoding a batch of events, folding it with numpy (held
equal to the per-event fold it replaced), the ratings maths, the listening state (re-reads,
closes, eviction, restore from its changelog) and the tick rule that closes days."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

from models.ratings import DOWNLOAD_WEIGHT, FALLBACK_LENGTH_S, PLAY_WEIGHT, SANE_LENGTH_S, compute_ratings
from streaming.scoring.event_columns import decode_events
from streaming.scoring.event_flow import close_rounds
from streaming.scoring.listening import Rows, fold, play_shares, user_ratings
from streaming.scoring.listening_state import ListeningState, marks_of
from streaming.scoring.messages import EventRecord, Incoming, TickRecord, parse_event
from streaming.scoring.sink import ListSink
from streaming.scoring.state import DictStore
from streaming.scoring.ticks import TickLedger
from tests.fixtures.scoring import download, play, tick

PLAYS, DOWNLOADS = "t.plays", "t.downloads"
EXPECTED = {PLAYS: "play", DOWNLOADS: "download"}
CHANGELOG = "t-listening-changelog"
UserDays = dict[str, dict[int, list[float]]]


# The per-event fold the worker used before the batch reader (one user, event and dict at a time),
# kept here as the definition the vectorised fold must equal.
def reference_share(play_time_s: float | None, song_length_s: float | None) -> float:
    if play_time_s is None or play_time_s <= 0:
        return 0.0
    lo, hi = SANE_LENGTH_S
    length_s = song_length_s if song_length_s is not None and lo <= song_length_s <= hi else FALLBACK_LENGTH_S
    return min(play_time_s / length_s, 1.0)


def reference_fold(events: Iterable[EventRecord]) -> dict[int, UserDays]:
    out: dict[int, UserDays] = defaultdict(lambda: defaultdict(dict))
    for e in events:
        songs = out[e.uid][e.date]
        if e.song_id is None or e.song_id < 1:
            continue
        share = reference_share(e.play_time_s, e.song_length_s) if e.type == "play" else 0.0
        downloads = 1.0 if e.type == "download" else 0.0
        if share == 0.0 and downloads == 0.0:
            continue
        counts = songs.setdefault(e.song_id, [0.0, 0.0])
        counts[0] += share
        counts[1] += downloads
    return {uid: {day: dict(songs) for day, songs in days.items()} for uid, days in out.items()}


def vectorised(messages: list[Incoming]) -> dict[int, UserDays]:
    """`fold` of a decoded batch in the reference's shape (uid -> day -> song -> [share, downloads])."""
    out: dict[int, UserDays] = defaultdict(lambda: defaultdict(dict))
    for days in fold(decode_events(messages, EXPECTED).events).values():
        for day, f in days.items():
            for u in f.active.tolist():
                out[u].setdefault(day, {})  # active: the day exists, rated or not
            for u, s, sh, dl in zip(f.rows.uid, f.rows.song, f.rows.share, f.rows.downloads, strict=True):
                out[int(u)][day][int(s)] = [float(sh), float(dl)]
    return {uid: {day: dict(songs) for day, songs in days.items()} for uid, days in out.items()}


def flat(songs: dict[int, list[float]]) -> dict[tuple[int, int], float]:
    return {(song, column): x for song, both in songs.items() for column, x in enumerate(both)}


def records(messages: list[Incoming]) -> list[EventRecord]:
    parsed = [parse_event(m.value, EXPECTED[m.topic]) for m in messages]
    return [p for p in parsed if isinstance(p, EventRecord)]


def msgs(*values: bytes | None, topic: str = PLAYS, partition: int = 0, start: int = 0) -> list[Incoming]:
    return [Incoming(topic, partition, start + i, v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("play_s", "length_s", "share"),
    [
        (100, 200, 0.5),  # half the song
        (300, 200, 1.0),  # capped at the whole song
        (0, 200, 0.0),  # a skip is a skip (the study replaced it by 248 s: a bug)
        (None, 200, 0.0),  # unknown play time counts nothing
        (-5, 200, 0.0),  # nonsense play time counts nothing
        (116, None, 0.5),  # unknown length: the logs' median, 232 s
        (116, 0, 0.5),  # insane length (0 = unknown in the logs): the median too
        (116, 9_000, 0.5),  # above 4,800 s: the median too
        (4_800, 4_800, 1.0),  # the longest sane length is sane
    ],
)
def test_play_shares(play_s: float | None, length_s: float | None, share: float) -> None:
    nan = float("nan")
    got = play_shares(
        np.array([nan if play_s is None else play_s]), np.array([nan if length_s is None else length_s])
    )
    assert got[0] == pytest.approx(share) and reference_share(play_s, length_s) == pytest.approx(share)


FOLD_CASES = {
    # one play, one user, one song
    "one play": msgs(play(1, "2017-04-01", 11, 100, 200)),
    # plays of a song add up; a download adds to the second column of the same song
    "sums": msgs(
        play(1, "2017-04-01", 11, 100, 200), play(1, "2017-04-01", 11, 50, 200), download(1, "2017-04-01", 11)
    )
    + msgs(download(1, "2017-04-01", 11), topic=DOWNLOADS),
    # days and users stay apart; the same user on two days has two entries
    "days and users": msgs(
        play(1, "2017-04-01", 11),
        play(1, "2017-04-02", 11),
        play(2, "2017-04-01", 11),
        play(2, "2017-04-01", 12),
    ),
    # skips, unknown and zero songs rate nothing but make the day active
    "unrated": msgs(
        play(3, "2017-04-01", 5, 0), play(3, "2017-04-02", 0), b'{"type":"play","uid":3,"date":"2017-04-03"}'
    ),
    # dirty fields: unknown play time or length (strings, booleans) go through the strict path
    "dirty": msgs(
        b'{"type":"play","uid":4,"date":"2017-04-02","song_id":7,"play_time_s":"71>=x","song_length_s":true}',
        b'{"type":"play","uid":4,"date":"2017-04-02","song_id":7,"play_time_s":116,"song_length_s":"x"}',
    ),
    # rejects and ticks fold nothing
    "rejects": msgs(b"{oops", play(5, "2017-04-02", 9), tick("2017-04-03"), download(5, "2017-04-02", 9)),
    # several partitions in one batch
    "partitions": msgs(play(6, "2017-04-01", 1)) + msgs(play(7, "2017-04-01", 1), partition=3),
}


@pytest.mark.parametrize("case", sorted(FOLD_CASES))
def test_the_vectorised_fold_equals_the_per_event_fold(case: str) -> None:
    messages = FOLD_CASES[case]
    want = reference_fold(records(messages))
    got = vectorised(messages)
    assert got.keys() == want.keys()
    for uid, days in want.items():
        assert got[uid].keys() == days.keys()
        for day, songs in days.items():
            assert flat(got[uid][day]) == pytest.approx(flat(songs))


def test_the_vectorised_fold_equals_the_per_event_fold_on_a_random_batch() -> None:
    rng = np.random.default_rng(7)
    messages = []
    for i in range(3_000):
        uid, day = int(rng.integers(1, 60)), f"2017-04-0{int(rng.integers(1, 4))}"
        song = int(rng.integers(0, 40))  # 0: unknown
        if rng.random() < 0.2:
            messages.append(Incoming(DOWNLOADS, uid % 3, i, download(uid, day, song)))
        else:
            length = int(rng.choice([0, 180, 240, 9_000]))
            messages.append(
                Incoming(PLAYS, uid % 3, i, play(uid, day, song, int(rng.integers(0, 400)), length))
            )
    want, got = reference_fold(records(messages)), vectorised(messages)
    assert got.keys() == want.keys()
    for uid, days in want.items():
        for day, songs in days.items():
            assert flat(got[uid][day]) == pytest.approx(flat(songs))


ODD = [
    play(3, "2017-04-02", 1001, 120, 240),
    download(3, "2017-04-02", 1001),
    tick("2017-04-03"),  # ticks ride every event topic
    play(3, "2017-04-02", 1001).replace(b'"play"', b'"download"', 1),  # a download on the plays topic
    b'{"type":"tick","date":"someday"}',  # a tick without a day
    b'{"type":"play","uid":-4,"date":"2017-04-02"}',
    b'{"type":"play","uid":true,"date":"2017-04-02"}',  # a boolean is not a uid
    b'{"type":"play","uid":4,"date":null}',
    b'{"type":"play","uid":4,"date":"2017-W13-1"}',  # an ISO week date is not a day
    b'{"type":"play","uid":4,"date":"2017-04-02","play_time_s":NaN}',  # NaN is not JSON
    b'{"type":"play","uid":4,"date":"2017-04-02","song_id":7.5,"play_time_s":1e400}',
    b'{"type":"play","uid":4,"date":"2017-04-02","song_id":null,"play_time_s":"71>=x","song_length_s":true}',
    b"[1, 2]",
    None,  # null values are counted, not crashed on
    b"\xff\xfe",
]


def test_decoding_a_batch_gives_the_verdict_of_parse_event_for_every_message() -> None:
    messages = msgs(*ODD) + msgs(*ODD, topic=DOWNLOADS, start=100)
    decoded = decode_events(messages, EXPECTED)
    verdicts = [parse_event(m.value, EXPECTED[m.topic]) for m in messages]
    assert [(r.position, r.reason) for r in decoded.rejects] == [
        (i, v) for i, v in enumerate(verdicts) if isinstance(v, str)
    ]
    assert [(t.topic, t.offset, t.date) for t in decoded.ticks] == [
        (m.topic, m.offset, v.date)
        for m, v in zip(messages, verdicts, strict=True)
        if isinstance(v, TickRecord)
    ]
    events = decoded.events
    want = [(m, v) for m, v in zip(messages, verdicts, strict=True) if isinstance(v, EventRecord)]
    assert events.offset.tolist() == [m.offset for m, _ in want]
    assert [events.days[d] for d in events.day] == [v.date for _, v in want]
    assert events.uid.tolist() == [v.uid for _, v in want]
    assert events.download.tolist() == [v.type == "download" for _, v in want]
    assert events.song.tolist() == [
        v.song_id if v.song_id is not None and v.song_id >= 1 else -1 for _, v in want
    ]
    plays = [v.play_time_s if v.type == "play" else None for _, v in want]
    assert [None if np.isnan(x) else x for x in events.play_time_s.tolist()] == plays


def test_ratings_equal_the_batch_formula_when_lengths_are_consistent() -> None:
    # With one length per song (what the logs report for sane values), the worker's ratings and
    # models.ratings' are the same.
    messages = msgs(
        play(1, "2017-04-01", 11, 50, 200),
        play(1, "2017-04-02", 11, 400, 200),
        play(1, "2017-04-03", 13, 0, 180),
        play(2, "2017-04-02", 12, 90, 180),
        play(1, "2017-03-01", 11, 200, 200),  # out of the 30-day window
    ) + msgs(download(1, "2017-04-02", 12), topic=DOWNLOADS)
    events = records(messages)
    frame = pd.DataFrame(
        [(e.type, e.uid, e.song_id, e.play_time_s, e.song_length_s, e.date) for e in events],
        columns=["type", "uid", "song_id", "play_time_s", "song_length_s", "date"],
    )
    batch = compute_ratings(frame, "2017-04-03")
    state = listening(messages)
    got = state.ratings(0, np.array([1, 2]), "2017-04-03")
    for i, uid in enumerate((1, 2)):
        mine = batch.loc[batch.uid == uid]
        assert got.of(i) == pytest.approx(dict(zip(mine.song_id, mine.rating, strict=True)))


def test_user_ratings_weigh_plays_and_downloads_and_keep_every_user_asked_for() -> None:
    day1 = Rows.summed(
        np.array([1, 1, 3]), np.array([10, 11, 10]), np.array([0.5, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    )
    day2 = Rows.summed(np.array([1]), np.array([10]), np.array([0.25]), np.array([1.0]))
    got = user_ratings(np.array([1, 2, 3]), [day1, day2])
    assert got.users.tolist() == [1, 2, 3] and got.indptr.tolist() == [0, 2, 2, 3]
    assert got.of(0) == pytest.approx({10: PLAY_WEIGHT * 0.75 + DOWNLOAD_WEIGHT, 11: DOWNLOAD_WEIGHT})
    assert got.of(1) == {}  # active, nothing rated: still asked for (the fallback serves it)
    assert got.of(2) == pytest.approx({10: PLAY_WEIGHT})


def listening(
    messages: list[Incoming], state: ListeningState | None = None, window_d: int = 30
) -> ListeningState:
    """Fold `messages` into a listening state as the event flow does."""
    state = state if state is not None else ListeningState(CHANGELOG, ListSink(), window_d)
    events = decode_events(messages, EXPECTED).events
    fresh = events.where(state.unseen(events))
    marks = marks_of(fresh)
    for partition, days in fold(fresh).items():
        state.add(partition, days, marks[partition])
    return state


def test_a_batch_read_again_counts_once() -> None:
    # A retried or re-read batch (same offsets) must not double the user's ratings; the other
    # topic keeps its own offsets.
    batch = msgs(play(1, "2017-04-01", 11, 100, 200), start=10) + msgs(
        download(1, "2017-04-01", 12), topic=DOWNLOADS, start=10
    )
    state = listening(batch)
    once = state.ratings(0, np.array([1]), "2017-04-01").of(0)
    listening(batch, state)
    assert state.ratings(0, np.array([1]), "2017-04-01").of(0) == once == pytest.approx({11: 0.2, 12: 0.6})
    listening(msgs(download(1, "2017-04-01", 12), topic=DOWNLOADS, start=11), state)  # a new offset counts
    assert state.ratings(0, np.array([1]), "2017-04-01").of(0)[12] == pytest.approx(1.2)


def test_due_users_are_those_with_pending_activity_up_to_the_day() -> None:
    state = listening(
        msgs(
            play(1, "2017-04-01", 11),
            play(2, "2017-04-03", 12),
            play(3, "2017-04-04", 13),
            play(2, "2017-04-01", 0),
        )
        + msgs(play(9, "2017-04-01", 11), partition=1)
    )
    assert state.pending_days(0, "2017-04-03") == ["2017-04-01", "2017-04-03"]
    assert state.due(0, "2017-04-01").tolist() == [1, 2]  # user 2 skipped: active all the same
    assert state.due(0, "2017-04-03").tolist() == [1, 2]
    assert state.due(1, "2017-04-03").tolist() == [9]  # partitions close apart
    state.refreshed(0, "2017-04-03")
    assert state.due(0, "2017-04-03").tolist() == [] and state.due(0, "2017-04-04").tolist() == [3]
    # Refreshed is not forgotten: user 1's play of 04-01 still counts in its next window.
    assert state.ratings(0, np.array([1]), "2017-04-04").of(0) == pytest.approx({11: 0.4})


@pytest.mark.parametrize(
    ("pending", "done", "closed", "rounds"),
    [
        (["2017-04-02"], None, "2017-04-02", ["2017-04-02"]),  # the first close
        (
            ["2017-04-02", "2017-04-03", "2017-04-04"],
            "2017-04-01",
            "2017-04-04",
            ["2017-04-02", "2017-04-03", "2017-04-04"],
        ),  # day by day
        (["2017-04-03"], "2017-04-01", "2017-04-04", ["2017-04-03"]),  # days without activity are skipped
        (
            ["2017-04-01"],
            "2017-04-03",
            "2017-04-04",
            ["2017-04-04"],
        ),  # late activity only: as of the closed day
        (
            ["2017-04-01", "2017-04-04"],
            "2017-04-03",
            "2017-04-04",
            ["2017-04-04"],
        ),  # late goes with the first fresh day
        ([], "2017-04-03", "2017-04-04", []),  # nothing pending: nothing to send
        (["2017-04-05"], "2017-04-03", "2017-04-04", []),  # activity after the closed day waits
    ],
)
def test_the_days_a_close_recommends(
    pending: list[str], done: str | None, closed: str, rounds: list[str]
) -> None:
    assert close_rounds(pending, done, closed) == rounds


def keys_in(sink: ListSink) -> list[str]:
    """The changelog keys still alive after compaction (the latest write of a key is not a delete)."""
    latest: dict[bytes, bytes | None] = {}
    for _, key, value in sink.placed[CHANGELOG]:
        assert key is not None  # every changelog write has a key
        latest[key] = value
    return sorted(k.decode().strip('"') for k, v in latest.items() if v is not None)


def test_days_that_leave_the_window_are_evicted_from_memory_and_the_changelog() -> None:
    sink = ListSink()
    state = ListeningState(CHANGELOG, sink, window_d=3)
    for n, day in enumerate(["2017-04-01", "2017-04-02", "2017-04-03", "2017-04-04"]):
        listening(msgs(play(1, day, 10 + n), start=n), state)
        state.closed(0, day)
    assert sorted(state.partitions[0].days) == ["2017-04-02", "2017-04-03", "2017-04-04"]
    assert state.ratings(0, np.array([1]), "2017-04-04").of(0) == pytest.approx({11: 0.4, 12: 0.4, 13: 0.4})
    asyncio.run(state.flush())
    assert keys_in(sink) == ["b|0|1", "b|0|2", "b|0|3", "c|0"]  # b|0|0 held only 04-01: deleted
    # A late play for a day out of the window: the user is due again, its rows are not kept.
    listening(msgs(play(1, "2017-03-20", 99), start=9), state)
    assert state.due(0, "2017-04-04").tolist() == [1]
    assert "2017-03-20" not in state.partitions[0].days
    state.closed(0, "2017-04-05")
    asyncio.run(state.flush())
    # b|0|4 (the late play) only holds an old day but is the newest record: its marks stay.
    assert keys_in(sink) == ["b|0|2", "b|0|3", "b|0|4", "c|0"]


def test_a_state_rebuilt_from_its_changelog_is_the_state() -> None:
    sink = ListSink()
    state = ListeningState(CHANGELOG, sink, window_d=3)
    ledger = TickLedger([PLAYS, DOWNLOADS], state.ticks)
    listening(
        msgs(play(1, "2017-04-01", 11), play(2, "2017-04-02", 12))
        + msgs(play(5, "2017-04-02", 50), partition=1),
        state,
    )
    ledger.observe(PLAYS, 0, "2017-04-02")
    ledger.observe(DOWNLOADS, 0, "2017-04-02")
    state.closed(0, "2017-04-01")  # user 1 refreshed; user 2 still pending
    listening(msgs(play(3, "2017-04-01", 13, n=1), start=5), state)  # late activity after the close
    listening(msgs(download(2, "2017-04-02", 14), topic=DOWNLOADS, start=7), state)
    asyncio.run(state.flush())

    rebuilt = ListeningState(CHANGELOG, ListSink(), window_d=3)
    rebuilt.load(sink.placed[CHANGELOG])
    users = np.array([1, 2, 3])
    for p in (0, 1):
        mine, theirs = state.partitions[p], rebuilt.partitions[p]
        assert (theirs.marks, theirs.through, theirs.seq) == (mine.marks, mine.through, mine.seq)
        assert state.due(p, "2017-04-09").tolist() == rebuilt.due(p, "2017-04-09").tolist()
        want, got = state.ratings(p, users, "2017-04-02"), rebuilt.ratings(p, users, "2017-04-02")
        assert [got.of(i) for i in range(3)] == [pytest.approx(want.of(i)) for i in range(3)]
    assert rebuilt.due(0, "2017-04-09").tolist() == [2, 3]  # the close and the late play survive
    assert TickLedger([PLAYS, DOWNLOADS], rebuilt.ticks).closed(0) == "2017-04-01"
    assert rebuilt.drop([1]) > 0 and 1 not in rebuilt.partitions
    assert (
        len(listening(msgs(play(1, "2017-04-01", 11), play(2, "2017-04-02", 12)), rebuilt).partitions[0].days)
        == 2
    )


@pytest.mark.parametrize(
    ("ticks", "closed"),
    [
        ([("plays", "2017-04-02")], None),  # downloads has not ticked on this partition yet
        ([("plays", "2017-04-02"), ("downloads", "2017-04-02")], "2017-04-01"),  # both ticked 04-02
        ([("plays", "2017-04-05"), ("downloads", "2017-04-03")], "2017-04-02"),  # the slower topic rules
        ([("plays", "2017-04-03"), ("downloads", "2017-04-03"), ("plays", "2017-04-02")], "2017-04-02"),
    ],
)
def test_a_day_closes_when_both_topics_ticked_past_it(
    ticks: list[tuple[str, str]], closed: str | None
) -> None:
    ledger = TickLedger(["plays", "downloads"], DictStore())
    for topic, day in ticks:
        ledger.observe(topic, 0, day)
    assert ledger.closed(0) == closed
    assert ledger.closed(1) is None  # partitions close apart


def test_observe_reports_only_a_new_close() -> None:
    ledger = TickLedger(["plays", "downloads"], DictStore())
    assert ledger.observe("plays", 0, "2017-04-02") is None
    assert ledger.observe("downloads", 0, "2017-04-02") == "2017-04-01"
    assert ledger.observe("downloads", 0, "2017-04-02") is None  # the same tick re-read


def test_records_a_lost_delete_left_behind_are_deleted_at_the_next_close_after_a_restore() -> None:
    # A close's deletes can be lost (a crash before its flush): the restored state still knows the
    # records and deletes them at its next close.
    sink = ListSink()
    state = ListeningState(CHANGELOG, sink, window_d=2)
    for n, day in enumerate(["2017-04-01", "2017-04-02", "2017-04-03"]):
        listening(msgs(play(1, day, 10 + n), start=n), state)
        state.closed(0, day)
    asyncio.run(state.flush())
    kept = [r for r in sink.placed[CHANGELOG] if r[2] is not None]  # the deletes never arrived
    restored_sink = ListSink()
    restored = ListeningState(CHANGELOG, restored_sink, window_d=2)
    restored.load(kept)
    assert sorted(restored.partitions[0].days) == ["2017-04-02", "2017-04-03"]  # rows evicted at once
    restored.closed(0, "2017-04-03")
    asyncio.run(restored.flush())
    deleted = [(k or b"").decode().strip('"') for _, k, v in restored_sink.placed[CHANGELOG] if v is None]
    assert deleted == ["b|0|0"]

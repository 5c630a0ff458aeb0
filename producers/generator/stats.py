"""Counts kept while writing (never a re-read): the manifest and the table beside the study's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from producers.generator.dirt import MALFORMED, REPAIRABLE
from producers.generator.population import DEVICES, Users
from producers.generator.profiles import FEATURE_WINDOW_D, LABEL_WINDOW_D, Targets

TYPE_INDEX = {"play": 0, "down": 1, "search": 2}
SKIP_MAX_S = 10
PLAY_TIME_HIST_MAX_S = 4_800


@dataclass
class FileStat:
    name: str
    date: date
    shard: int
    file_type: str
    lines: int = 0
    raw_bytes: int = 0
    dirt: Counter[str] = field(default_factory=Counter)
    copy_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "date": self.date.isoformat(),
            "shard": self.shard,
            "type": self.file_type,
            "lines": self.lines,
            "raw_bytes": self.raw_bytes,
            "dirt": dict(sorted(self.dirt.items())),
        }
        if self.copy_of:
            out["copy_of"] = self.copy_of
        return out


@dataclass(frozen=True)
class Row:
    figure: str
    generated: str
    study: str


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


class GenerationStats:
    """Per-file, per-day and per-user tallies of what was written."""

    def __init__(self, users: Users, days: int) -> None:
        self.users = users
        self.days = days
        self.files: list[FileStat] = []
        self.lines_by_day = np.zeros((days, 3), dtype=np.int64)
        self.human_lines_by_day = np.zeros((days, 3), dtype=np.int64)
        self.generated = np.zeros(3, dtype=np.int64)  # latent events, written or not
        self.plays_per_user = np.zeros(users.size, dtype=np.int64)
        self.seen = np.zeros(users.size, dtype=bool)
        self.seen_feature_window = np.zeros(users.size, dtype=bool)
        self.seen_label_window = np.zeros(users.size, dtype=bool)
        self.device_rows = np.zeros(len(DEVICES), dtype=np.int64)
        self.play_time_hist = np.zeros(PLAY_TIME_HIST_MAX_S + 1, dtype=np.int64)
        self.dirt: Counter[str] = Counter()  # dirty lines written, by class
        self.unwritten: Counter[str] = Counter()  # generated lines an artefact kept out of the files
        self.humans_gone = 0
        self.elapsed_s = 0.0

    @property
    def lines(self) -> int:
        return int(self.lines_by_day.sum())

    def record(
        self,
        f: FileStat,
        day: int,
        owners: np.ndarray,
        second: np.ndarray,
        codes: np.ndarray,
        classes: tuple[str, ...],
        play_time_s: np.ndarray | None = None,
    ) -> None:
        """Tally a chunk of lines written to file `f` on day index `day`."""
        t = TYPE_INDEX[f.file_type]
        n = len(owners)
        f.lines += n
        self.lines_by_day[day, t] += n
        self.human_lines_by_day[day, t] += int(n - self.users.is_bot[owners].sum())
        for code, count in zip(*np.unique(codes[codes > 0], return_counts=True), strict=True):
            f.dirt[classes[code - 1]] += int(count)
            self.dirt[classes[code - 1]] += int(count)
        # Per-user figures count what a reader accepts: a malformed line is no event of anyone.
        malformed = [code for code, cls in enumerate(classes, start=1) if cls in MALFORMED]
        ok = ~np.isin(codes, malformed)
        owners, second = owners[ok], second[ok]
        devices = np.where(second == 1, self.users.device2[owners], self.users.device[owners])
        self.device_rows += np.bincount(devices, minlength=len(DEVICES))
        self.seen[owners] = True
        if day < FEATURE_WINDOW_D:
            self.seen_feature_window[owners] = True
        elif day < FEATURE_WINDOW_D + LABEL_WINDOW_D:
            self.seen_label_window[owners] = True
        if play_time_s is not None:
            self.plays_per_user += np.bincount(owners, minlength=self.users.size)
            garbage = classes.index("play_time_garbage") + 1 if "play_time_garbage" in classes else -1
            clean = play_time_s[ok & (codes != garbage)]
            self.play_time_hist += np.bincount(
                np.minimum(clean, PLAY_TIME_HIST_MAX_S), minlength=PLAY_TIME_HIST_MAX_S + 1
            )

    def expected_reader(self) -> dict[str, dict[str, int]]:
        """What the reader must report for these files: dead letters by reason, repairs by field."""
        dead: Counter[str] = Counter()
        repairs: Counter[str] = Counter()
        for cls, n in self.dirt.items():
            if cls in MALFORMED:
                dead[MALFORMED[cls]] += n
            elif (repaired := REPAIRABLE.get(cls)) is not None:
                repairs[repaired] += n
        lines = self.lines
        return {
            "lines": {"total": lines, "events": lines - sum(dead.values())},
            "dead_letters": dict(sorted(dead.items())),
            "repairs": dict(sorted(repairs.items())),
        }

    def churn_share(self) -> tuple[float, int] | None:
        """(share without events in the label window, population) of the humans seen in the feature window."""
        if self.days < FEATURE_WINDOW_D + LABEL_WINDOW_D:
            return None
        population = self.seen_feature_window & ~self.users.is_bot
        n = int(population.sum())
        return (float((~self.seen_label_window[population]).mean()) if n else 0.0), n

    def play_time_quantiles(self, qs: tuple[float, ...]) -> list[int]:
        cum = np.cumsum(self.play_time_hist)
        if cum[-1] == 0:
            return [0 for _ in qs]
        return [int(np.searchsorted(cum, q * cum[-1])) for q in qs]

    def summary_rows(self, targets: Targets, may_from_d: int | None) -> list[Row]:
        """Generated figures beside the study's (volumes scaled to the number of users)."""
        u = self.users
        totals = self.lines_by_day.sum(axis=0)
        human_day = self.human_lines_by_day.sum(axis=1)
        plays = self.plays_per_user[self.plays_per_user > 0]
        q = np.percentile(plays, [25, 50, 75, 99]) if len(plays) else np.zeros(4)
        rows = [
            Row(
                "users (humans + bots)",
                f"{u.size:,} ({int((~u.is_bot).sum()):,} + {int(u.is_bot.sum()):,})",
                "",
            ),
            Row("users with an event in the files", f"{int(self.seen.sum()):,}", ""),
            Row("bot share", _pct(float(u.is_bot.mean())), _pct(targets.bot_share)),
            Row("lines written (all)", f"{self.lines:,}", ""),
            Row("human events, total", f"{int(human_day.sum()):,}", f"{targets.events_total:,.0f}"),
            Row("human events, first day", f"{int(human_day[0]):,}", f"{targets.events_first_day:,.0f}"),
            Row("human events, last day", f"{int(human_day[-1]):,}", f"{targets.events_may_day:,.0f}"),
        ]
        if may_from_d is not None and may_from_d < self.days:
            rows.append(
                Row(
                    "human events a day in May",
                    f"{float(human_day[may_from_d:].mean()):,.0f}",
                    f"{targets.events_may_day:,.0f}",
                )
            )
        human_totals = self.human_lines_by_day.sum(axis=0)  # the study's sample had its bots removed
        ratio = human_totals / human_totals[0] * targets.ratio_pds[0] if human_totals[0] else human_totals
        rows += [
            Row(
                "human plays : downloads : searches",
                " : ".join(f"{r:.2f}" for r in ratio),
                " : ".join(f"{r:.2f}" for r in targets.ratio_pds),
            ),
            Row(
                "plays per user 25/50/75/99 %",
                " / ".join(f"{v:,.0f}" for v in q),
                " / ".join(f"{v:,.0f}" for v in targets.plays_per_user_q),
            ),
        ]
        share = self.device_rows / max(1, self.device_rows.sum())
        rows.append(
            Row(
                "device rows ar / ip / mc",
                " / ".join(_pct(float(s)) for s in share),
                f"{_pct(targets.device_share_ar)} / {_pct(targets.device_share_ip)} / rare",
            )
        )
        pt = self.play_time_quantiles((0.25, 0.5, 0.75))
        skips = self.play_time_hist[: SKIP_MAX_S + 1].sum() / max(1, self.play_time_hist.sum())
        rows += [
            Row(
                "play time 25/50/75 % (s)",
                " / ".join(map(str, pt)),
                " / ".join(f"{v:.0f}" for v in targets.play_time_q_s),
            ),
            Row("plays skipped (<= 10 s)", _pct(float(skips)), ""),
        ]
        churn = self.churn_share()
        if churn is not None:
            rows.append(
                Row(
                    "churn share of feature-window humans",
                    f"{_pct(churn[0])} of {churn[1]:,}",
                    _pct(targets.churn_share),
                )
            )
        play_lines = max(1, int(totals[0]))
        for cls, target in (
            ("song_id_unknown", targets.song_id_unknown_share),
            ("play_time_garbage", targets.play_time_garbage_share),
        ):
            rows.append(Row(f"dirt: {cls} (share of plays)", _pct(self.dirt[cls] / play_lines), _pct(target)))
        malformed = sum(self.dirt[c] for c in MALFORMED)
        rows.append(
            Row(
                "dirt: malformed lines (dead letters)",
                f"{malformed:,} ({_pct(malformed / max(1, self.lines))})",
                "common",
            )
        )
        return rows

    def to_json(self) -> dict[str, Any]:
        u = self.users
        churn = self.churn_share()
        return {
            "users": {
                "total": u.size,
                "humans": int((~u.is_bot).sum()),
                "bots": int(u.is_bot.sum()),
                "with_lines": int(self.seen.sum()),
                "humans_gone": self.humans_gone,
                "bot_uids": sorted(u.uid[u.is_bot].tolist()),
            },
            "lines": {
                "total": self.lines,
                **{t: int(self.lines_by_day[:, i].sum()) for t, i in TYPE_INDEX.items()},
            },
            "generated_events": {t: int(self.generated[i]) for t, i in TYPE_INDEX.items()},
            "dirt": dict(sorted(self.dirt.items())),
            "unwritten": dict(sorted(self.unwritten.items())),
            "expected_reader": self.expected_reader(),
            "churn": None if churn is None else {"share": round(churn[0], 4), "population": churn[1]},
            "files": [f.to_json() for f in self.files],
        }

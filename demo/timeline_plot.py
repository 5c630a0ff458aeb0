"""The timeline as a PNG: per stage, what it has done over wall time, one panel each, with the
demo's steps shaded behind, and the stack's memory at the bottom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure  # no pyplot: no display, no global state
from matplotlib.ticker import FuncFormatter

from demo.timeline import DAYS_CLOSED, FEATURE_ROWS, RECOMMENDATIONS, REPLAY_LINES, SCORES, Sample

PANELS = (
    (REPLAY_LINES, "replay: lines acknowledged"),
    (FEATURE_ROWS, "stream: feature rows (orange: days closed, right axis)"),
    (SCORES, "worker: churn scores"),
    (RECOMMENDATIONS, "worker: recommendations"),
)
# The steps that run alone (grey) and the replay parts (blue), by the name of their process.
STEPS = ("generate", "train-churn", "train-als", "retrain", "parity", "report")
REPLAYS = ("replay", "replay-rest")
_THOUSANDS = FuncFormatter(lambda x, _: f"{x:,.0f}")


def _shade(ax: Axes, spans_s: Mapping[str, tuple[float, float]], label: bool) -> None:
    for names, colour in ((STEPS, "0.88"), (REPLAYS, "#dbe9f6")):
        for name in names:
            if name not in spans_s:
                continue
            start, end = spans_s[name]
            ax.axvspan(start, end, color=colour, zorder=0)
            if label:
                ax.annotate(name, ((start + end) / 2, 0.97), xycoords=("data", "axes fraction"),
                            rotation=90, ha="center", va="top", fontsize=7, color="0.35")  # fmt: skip


def write_plot(
    samples: Sequence[Sample], spans_s: Mapping[str, tuple[float, float]], path: Path, title: str
) -> Path:
    """Write the PNG to `path` and return it."""
    times = [s.t_s for s in samples]
    fig = Figure(figsize=(10, 11))
    axes = fig.subplots(len(PANELS) + 1, 1, sharex=True)
    for ax, (series, label) in zip(axes, PANELS, strict=False):
        values = [s.progress.get(series, 0) for s in samples]
        ax.plot(times, values, drawstyle="steps-post", color="tab:blue")
        ax.set_title(f"{label}: {max(values, default=0):,}", fontsize=9, loc="left")
        ax.yaxis.set_major_formatter(_THOUSANDS)
        if series == FEATURE_ROWS:
            days = ax.twinx()
            days.plot(times, [s.progress.get(DAYS_CLOSED, 0) for s in samples], color="tab:orange", lw=0.8)
    memory = axes[-1]
    memory.plot(times, [sum(s.rss_bytes.values()) / 2**30 for s in samples], color="tab:red")
    memory.set_title("memory of the stack, GiB resident (every process, the broker and Prometheus)",
                     fontsize=9, loc="left")  # fmt: skip
    memory.set_xlabel("wall seconds since the demo started")
    for i, ax in enumerate(axes):
        _shade(ax, spans_s, label=i == len(axes) - 1)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path

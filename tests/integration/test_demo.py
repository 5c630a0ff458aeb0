"""`musicbox demo` end to end on the real stack (a small data set), and what it must have produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import defaultdict

from musicbox.demo import _consume, _offline_tests
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.quality import live_vs_offline


def _prometheus_saw(settings: Settings, job: str) -> bool:
    query = urllib.parse.urlencode({"query": f'max_over_time(up{{job="{job}"}}[30m])'})
    with urllib.request.urlopen(
        f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?{query}", timeout=10
    ) as r:
        result = json.load(r)["data"]["result"]
    return bool(result) and result[0]["value"][1] == "1"


def test_demo_end_to_end(stack: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "demo", "--users", "1500", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "zero differences" in done.stdout
    assert "reconciles" in done.stdout

    topics = Topics(stack.topic_prefix)
    features = _consume(stack, topics.features)
    scores = _consume(stack, topics.churn_scores)
    # Every non-bot feature row is scored, exactly once per model version (in effect).
    non_bot = {(f["uid"], f["as_of"]) for f in features if not f["is_bot"]}
    bots = {(f["uid"], f["as_of"]) for f in features if f["is_bot"]}
    versions: dict[tuple[int, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for s in scores:
        versions[(s["uid"], s["as_of"])][s["model_version"]].add(json.dumps(s, sort_keys=True))
    assert set(versions) == non_bot
    assert not bots & set(versions)
    assert all(len(copies) == 1 for by_version in versions.values() for copies in by_version.values())
    # The retrain was hot-reloaded: two versions served, and no day went unscored around it.
    served_by_day: dict[str, set[str]] = defaultdict(set)
    for s in scores:
        served_by_day[s["as_of"]].add(s["model_version"])
    assert len({v for vs in served_by_day.values() for v in vs}) == 2
    assert set(served_by_day) == {f["as_of"] for f in features if not f["is_bot"]}
    # Every user with a play or download on a day has recommendations as of that day (the
    # worker's inputs; search-only users have none), from the model served then or the fallback.
    recommended = {(r["uid"], r["as_of"]) for r in _consume(stack, topics.recommendations)}
    active = {
        (e["uid"], e["date"])
        for topic in (topics.plays, topics.downloads)
        for e in _consume(stack, topic)
        if e.get("type") in ("play", "download")
    }
    assert active, "no plays or downloads were read back"
    missing = sorted(active - recommended)
    assert not missing, f"{len(missing)} of {len(active)} active user-days lack them: {missing[:5]}"
    # No train/serve skew: on a model's offline test day, its live ROC AUC (the worker's scores,
    # labelled from the feature stream) is the offline one (the batch pipeline's).
    same_day = live_vs_offline(_consume(stack, topics.model_quality), _offline_tests(stack.var_dir / "demo"))
    assert same_day, "no live quality report of a model on its offline test day"
    assert all(abs(pair.live - pair.offline) < 0.005 for pair in same_day), same_day
    # Prometheus (the real server) scraped all three processes while they ran.
    for job in ("musicbox-replay", "musicbox-stream", "musicbox-worker"):
        assert _prometheus_saw(stack, job), job

"""`musicbox demo` end to end on the real stack (a small data set), and what it must have produced."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

from demo.summary import offline_tests
from demo.topic_watch import consume, consume_with_markers
from infra.local.processes import port_open
from models.registry import list_versions, read_metadata
from musicbox.partitioning import partition_of_key
from musicbox.settings import REPO_ROOT, Settings
from musicbox.topics import Topics
from streaming.scoring.quality import live_vs_offline


def _scraped_up_since(settings: Settings, job: str, since_s: float) -> list[float]:
    """Times of the samples in which Prometheus found `job` up, from `since_s` (epoch s) on.

    Raw samples of a range selector: an instant query (or query_range) looks back 5 minutes
    for each point, so a process of an earlier run could stand in for this run's."""
    window_s = math.ceil(time.time() - since_s) + 1
    query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}[{window_s}s]'})
    with urllib.request.urlopen(
        f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?{query}", timeout=10
    ) as r:
        result = json.load(r)["data"]["result"]
    samples = [(float(t), value) for series in result for t, value in series["values"]]
    return [t for t, value in samples if value == "1" and t >= since_s]


def test_demo_end_to_end(stack: Settings) -> None:
    started_s = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "demo", "--users", "1500", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    root = stack.var_dir / "demo"
    summary = json.loads((root / "summary.json").read_text())
    assert summary["ok"] and summary["problems"] == []

    # Each replay's lines add up to what it sent, and what it sent is on the topics.
    assert set(summary["replays"]) == {"replay", "replay-rest"}
    sent: Counter[str] = Counter()
    for replay in summary["replays"].values():
        assert replay["lines"] == replay["events"] + replay["dead_letters"] + replay["already_in_kafka"]
        assert replay["events"] > 0 and replay["dead_letters"] > 0  # dirt on: some lines are rejected
        sent.update(replay["events_by_type"])
    topics = Topics(stack.topic_prefix)
    events = {topic: consume(stack, topic) for topic in topics.events}
    on_topics = Counter(e["type"] for records in events.values() for e in records if e.get("type") != "tick")
    assert on_topics == sent

    # Parity checked every row the stream published, and every one matched.
    features = consume(stack, topics.features)
    parity = summary["parity"]
    assert parity["days"] == len({f["as_of"] for f in features}) > 0
    assert parity["matched"] == len({(f["uid"], f["as_of"]) for f in features})
    assert (parity["differing"], parity["missing"], parity["extra"], parity["duplicate"]) == (0, 0, 0, 0)

    scores = consume(stack, topics.churn_scores)
    assert summary["scores"] == len(scores)
    # Every non-bot feature row is scored, exactly once per model version (in effect).
    non_bot = {(f["uid"], f["as_of"]) for f in features if not f["is_bot"]}
    bots = {(f["uid"], f["as_of"]) for f in features if f["is_bot"]}
    versions: dict[tuple[int, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for s in scores:
        versions[(s["uid"], s["as_of"])][s["model_version"]].add(json.dumps(s, sort_keys=True))
    assert set(versions) == non_bot
    assert not bots & set(versions)
    assert all(len(copies) == 1 for by_version in versions.values() for copies in by_version.values())
    # Every scored day ends with a day-complete marker on every partition, counting its scores;
    # the example consumer waits for the last day by them and gets exactly that day's scores.
    _, markers = consume_with_markers(stack, topics.churn_scores)
    scored_on: Counter[tuple[str, int]] = Counter()
    for key in {(s["uid"], s["as_of"]) for s in scores}:
        scored_on[(key[1], partition_of_key(str(key[0]).encode(), stack.partitions))] += 1
    marked = {(m["as_of"], m["partition"]): m["scored"] for m in markers}
    assert {k: n for k, n in marked.items() if n} == dict(scored_on)
    last_day = max(s["as_of"] for s in scores)
    example = subprocess.run(
        [sys.executable, "examples/wait_for_day.py", "--as-of", last_day, "--timeout-s", "60",
         "--bootstrap", stack.kafka_bootstrap, "--topic", topics.churn_scores],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert example.returncode == 0, example.stdout + example.stderr
    n_last = len({s["uid"] for s in scores if s["as_of"] == last_day})
    assert example.stdout.startswith(f"{last_day}: {n_last:,} scores ({n_last:,} by the markers' count)")
    # The retrain was hot-reloaded: two versions served, and no day went unscored around it.
    served_by_day: dict[str, set[str]] = defaultdict(set)
    for s in scores:
        served_by_day[s["as_of"]].add(s["model_version"])
    assert len({v for vs in served_by_day.values() for v in vs}) == 2 and summary["hot_reloaded"]
    assert set(served_by_day) == {f["as_of"] for f in features if not f["is_bot"]}
    # Every user with a play or download on a day has recommendations as of that day (the
    # worker's inputs; search-only users have none), from the model served then or the fallback.
    recommended = {(r["uid"], r["as_of"]) for r in consume(stack, topics.recommendations)}
    active = {
        (e["uid"], e["date"])
        for topic in (topics.plays, topics.downloads)
        for e in events[topic]
        if e.get("type") in ("play", "download")
    }
    assert active, "no plays or downloads were read back"
    missing = sorted(active - recommended)
    assert not missing, f"{len(missing)} of {len(active)} active user-days lack them: {missing[:5]}"
    # No train/serve skew: on a model's offline test day, its live ROC AUC (the worker's scores,
    # labelled from the feature stream) is the offline one (the batch pipeline's).
    models = root / "models"
    tests = offline_tests(read_metadata(models, "churn", v) for v in list_versions(models, "churn"))
    same_day = live_vs_offline(consume(stack, topics.model_quality), tests)
    assert same_day, "no live quality report of a model on its offline test day"
    assert all(abs(pair.live - pair.offline) < 0.005 for pair in same_day), same_day

    # The summary's stage table, reconciliation, memory and timeline (what `--profile study-sample`
    # reports at scale): every stage that ran has a positive rate, every count reconciles.
    stages = {st["name"]: st for st in summary["stages"]}
    assert {"train (first models)", "replay (replay)", "replay (replay-rest)", "stream", "worker (scores)",
            "worker (recommendations)", "retrain", "parity", "report"} <= set(stages)  # fmt: skip
    ran = [st for st in stages.values() if st["name"] != "generate" or st["seconds"] is not None]
    assert all(st["rate"] is not None and st["rate"] > 0 for st in ran), ran
    assert stages["stream"]["rows"] == parity["matched"] and stages["worker (scores)"]["rows"] == len(scores)
    assert sum(stages[f"replay ({r})"]["lines"] for r in summary["replays"]) == sum(
        r["lines"] for r in summary["replays"].values()
    )
    checks = summary["reconciliation"]
    assert len(checks) == 6 and all(c["ok"] for c in checks), checks
    memory = summary["memory"]
    assert memory["peak_total_bytes"] > 0 and memory["samples"] > 10
    assert {"demo", "stream", "worker", "replay"} <= set(memory["by_process"])
    # The stream's JVM is a child of its Python: counted with it, so it holds far more than a Python
    assert memory["by_process"]["stream"] > 300 * 2**20
    timeline = Path(summary["timeline"])
    assert timeline.parent == root and timeline.read_bytes()[:4] == b"\x89PNG"

    # Prometheus (the real server) scraped all three processes of this run while they ran.
    for job in ("musicbox-replay", "musicbox-stream", "musicbox-worker"):
        assert _scraped_up_since(stack, job, started_s), f"Prometheus never scraped {job} during this run"
    # Without --keep-running nothing of the demo's is left running.
    assert summary["left_running"] == {"processes": [], "stack": False}
    for port in (stack.replay_metrics_port, stack.stream_metrics_port, stack.worker_metrics_port):
        assert not port_open(stack.metrics_host, port), f"something of the demo still serves on {port}"

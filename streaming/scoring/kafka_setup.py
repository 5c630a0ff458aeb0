"""The worker's topics, checked and created before it starts (PITFALLS: create them up front).

Inputs and outputs must exist (`musicbox up` creates them). The state's changelog topics are
created here, compacted, with exactly their input's partition count: a changelog auto-created
with another count would break the co-partitioning that state recovery relies on.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.app import TABLES, Layout, app_id, changelog_topic, events_group, features_group
from streaming.scoring.errors import TopicSetupError
from streaming.scoring.sink import MAX_REQUEST_BYTES

# A listening record holds a whole batch of a partition (up to MUSICBOX_WORKER_BATCH_ROWS events,
# ~50 bytes each as JSON at worst): past Kafka's 1 MB default for one message.
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(MAX_REQUEST_BYTES)}


def _partitions(admin: Any) -> dict[str, int]:
    return {
        (d.get("topic") or d.get("name")): len(d["partitions"])
        for d in admin.describe_topics()
        if not d.get("error_code")
    }


def prepare_topics(settings: Settings) -> Layout:
    """Check the inputs and outputs, create missing changelog topics; returns the input layout."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    topics = Topics(settings.topic_prefix)
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15_000)
    except KafkaError as exc:
        raise TopicSetupError(
            f"no Kafka broker answers at {settings.kafka_bootstrap} ({exc}): start it (`musicbox up`) "
            "or set MUSICBOX_KAFKA_BOOTSTRAP"
        ) from exc
    try:
        have = _partitions(admin)
        needed = [topics.features, topics.plays, topics.downloads, topics.churn_scores]
        needed += [topics.recommendations, topics.model_quality, topics.dead_letters]
        missing = [t for t in needed if t not in have]
        if missing:
            raise TopicSetupError(
                f"topics {', '.join(missing)} do not exist: `musicbox up` creates the musicbox topics "
                f"(prefix {settings.topic_prefix!r}, MUSICBOX_TOPIC_PREFIX)"
            )
        if have[topics.plays] != have[topics.downloads]:
            raise TopicSetupError(
                f"{topics.plays} has {have[topics.plays]} partitions and {topics.downloads} "
                f"{have[topics.downloads]}: the worker joins them by user, so they need the same count"
            )
        layout = Layout(features=have[topics.features], events=have[topics.plays])
        app = app_id(settings.topic_prefix)
        new = []
        for table in TABLES:
            name, want = changelog_topic(app, table), layout.of_table(table)
            if name not in have:
                new.append(
                    NewTopic(name, num_partitions=want, replication_factor=1, topic_configs=CHANGELOG_CONFIG)
                )
            elif have[name] != want:
                raise TopicSetupError(
                    f"the state topic {name} has {have[name]} partitions, its input {want}: the inputs were "
                    "recreated with another count. Delete it (the worker's state restarts empty) or use "
                    "another MUSICBOX_TOPIC_PREFIX"
                )
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created them meanwhile
                admin.create_topics(new)
        return layout
    finally:
        admin.close()


# The Faust tables of the recommendation side before it had its own reader (their changelogs
# may linger on a broker that ran it).
EARLIER_TABLES = ("open-days", "recent-ratings", "ticks")


def forget_state(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Delete the worker's changelog topics and consumer groups (`musicbox worker --reset`), and
    wait until the topics are gone; returns what was deleted. Needed after the input topics
    were recreated: the old state would mark the new offsets as read. A group that keeps its
    members (a worker still running) cannot be deleted: that is an error, after `timeout_s`.
    Those of the earlier Faust tables go too, and the Faust group `<app>`."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    app = app_id(settings.topic_prefix)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15_000)
    try:
        state_topics = {changelog_topic(app, table) for table in (*TABLES, *EARLIER_TABLES)}
        topics = sorted(t for t in admin.list_topics() if t in state_topics)
        listed = {g["group_id"] for g in admin.list_groups()}
        groups = [g for g in (app, features_group(app), events_group(app)) if g in listed]
        deadline = time.monotonic() + timeout_s
        while groups:
            try:
                admin.delete_groups(groups)
                break
            except KafkaError as exc:  # members left: a killed worker's expire after its session
                if time.monotonic() > deadline:
                    raise TopicSetupError(
                        f"could not delete the consumer groups {', '.join(groups)} ({exc}): is a worker "
                        "still running on this prefix? Stop it first"
                    ) from exc
                time.sleep(1.0)
        if topics:
            admin.delete_topics(topics)
        while state_topics & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TopicSetupError(f"the state topics were not deleted within {timeout_s:.0f} s")
            time.sleep(0.5)
        return topics + groups
    finally:
        admin.close()

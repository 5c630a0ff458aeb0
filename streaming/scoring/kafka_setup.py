"""The worker's topics, checked and created before Faust starts (PITFALLS: create them up front).

Inputs and outputs must exist (`musicbox up` creates them). Faust's changelog topics are
created here, compacted, with exactly their input's partition count: a changelog auto-created
with another count would break the co-partitioning that state recovery relies on.
"""

from __future__ import annotations

import contextlib
from typing import Any

from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.app import TABLES, Layout, app_id, changelog_topic
from streaming.scoring.errors import TopicSetupError

CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


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

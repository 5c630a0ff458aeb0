"""The integration tier runs against the real local stack (`musicbox up`; `make test` starts it).

A missing service is a failure with a message saying what to do, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from infra.local import kafka_broker, prometheus_server
from musicbox.logging_setup import quiet_known_warnings
from musicbox.settings import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    quiet_known_warnings()
    return Settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The running stack; fails (not skips) the test when a service is down."""
    if not kafka_broker.ready(settings):
        pytest.fail(
            f"Kafka does not answer on {settings.kafka_bootstrap}: run `musicbox up` (make test does)"
        )
    if not prometheus_server.ready(settings):
        pytest.fail(
            f"Prometheus does not answer on {prometheus_server.base_url(settings)}: run `musicbox up`"
        )
    return settings


@pytest.fixture
def scratch_topic(stack: Settings) -> Iterator[str]:
    """A fresh one-partition topic for one test, deleted afterwards."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()

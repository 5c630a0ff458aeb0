"""Create the musicbox topics on an existing broker (the compose `topics` service uses it)."""

from __future__ import annotations

from infra.local import kafka_broker
from infra.local.processes import wait_until
from musicbox.logging_setup import configure_logging
from musicbox.settings import Settings


def main() -> int:
    configure_logging()
    settings = Settings()
    wait_until(lambda: kafka_broker.ready(settings), 120, f"Kafka at {settings.kafka_bootstrap}", 2.0)
    created = kafka_broker.ensure_topics(settings)
    print(f"{len(created)} topics created: {', '.join(created) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Logging and warning filters shared by every entry point."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_known_warnings() -> None:
    """Filter the one import-time warning we know is harmless; every other warning still shows."""
    # kafka-python 3.0 loads its protocol schemas with importlib.resources' legacy API on
    # import, which warns once per schema file. Only those two messages are silenced.
    for message in (r"read_text is deprecated", r"open_text is deprecated"):
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)


def configure_logging(level: str | None = None) -> None:
    quiet_known_warnings()
    logging.basicConfig(
        level=(level or os.environ.get("MUSICBOX_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The Kafka clients log every connection at INFO: keep their warnings and errors only.
    for noisy in ("kafka", "aiokafka", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python 3 warns whenever a poll takes over 100 ms, which a busy 2-core machine makes
    # routine; it says nothing about correctness.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)

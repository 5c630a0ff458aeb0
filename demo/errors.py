"""The demo's one error: a step failed, and the message says which log tells why."""

from __future__ import annotations

from musicbox.errors import MusicboxError


class DemoError(MusicboxError):
    """A step of the demo failed; its log file says why."""

"""Option types every command shares: one definition each, so one spelling and one error message."""

from __future__ import annotations

import argparse
import re
from datetime import date

# date.fromisoformat alone also takes 20170330 and week dates (2017-W13-1): the CLI takes one form.
_DAY_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_day(text: str) -> date:
    """A calendar day written YYYY-MM-DD; anything else is a one-line usage error (exit 2)."""
    if _DAY_FORM.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass  # the right form but no such day (2017-13-01, 2017-02-30)
    raise argparse.ArgumentTypeError(f"invalid day {text!r}: expected YYYY-MM-DD")

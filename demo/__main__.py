"""`python -m demo [options]`: the same as `musicbox demo [options]`."""

import sys

from musicbox.cli import main

raise SystemExit(main(["demo", *sys.argv[1:]]))

"""Where the CLI writes: results to stdout, as wide as a terminal or, in a pipe or a file, wide
enough that no table cell is cut; progress only to a terminal, on stderr, so a redirected
output holds the results alone."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["PIPE_WIDTH", "output", "progress"]

# Rich lays out for 80 columns when stdout is not a terminal, and cuts cells to fit.
PIPE_WIDTH = 200


def output() -> Console:
    """The console for results (stdout)."""
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


def progress() -> Console | None:
    """The console for progress bars: stderr when it is a terminal, else None (no bars)."""
    return Console(stderr=True) if sys.stderr.isatty() else None

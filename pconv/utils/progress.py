"""Progress bars of the command-line tools: rich, on stderr, and only on a terminal.

A tool's normal output (stdout) stays clean for pipes and logs; when stderr is not a
terminal (a log file, CI, a test) no bar is drawn at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import Progress
from rich.progress import track as _track

T = TypeVar("T")


def progress_bar() -> Progress:
    """A transient :class:`rich.progress.Progress` on stderr, disabled off a terminal."""
    console = Console(stderr=True)
    return Progress(console=console, disable=not console.is_terminal, transient=True)


def track(items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a transient bar on stderr (none off a terminal)."""
    console = Console(stderr=True)
    yield from _track(
        items,
        description=description,
        total=total,
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )

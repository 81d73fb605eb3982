"""Transfer progress: rich bars on stderr when it is a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class TransferProgress:
    """Hands out one byte counter per blob; a no-op when not attached to a TTY."""

    def __init__(self, progress: Any | None) -> None:
        self._progress = progress

    def task(self, description: str, total: int) -> Callable[[int], None] | None:
        if self._progress is None:
            return None
        task_id = self._progress.add_task(description, total=total)
        progress = self._progress

        def advance(n: int) -> None:
            progress.advance(task_id, n)

        return advance


@contextmanager
def transfer_progress(enabled: bool | None = None) -> Iterator[TransferProgress]:
    """Progress bars for a push or pull; ``enabled=None`` means "if stderr is a TTY"."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield TransferProgress(None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=Console(stderr=True), transient=True,
    ) as progress:
        yield TransferProgress(progress)

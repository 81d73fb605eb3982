"""Epoch time for call deadlines: the tick length, the ticker's count, ticks per timeout.

A leaf module: :mod:`~wasmetool.host.fastpath` reads :data:`CLOCK` on every guest call and
:mod:`~wasmetool.host.engine`'s ticker thread advances it, so neither imports the other
for it.
"""

from __future__ import annotations

EPOCH_TICK_MS = 10


def deadline_ticks(timeout_ms: int) -> int:
    return max(1, -(-timeout_ms // EPOCH_TICK_MS) + 1)


class EpochClock:
    """The ticker's count of epochs, readable from Python without a call into wasmtime."""

    __slots__ = ("epoch",)

    def __init__(self) -> None:
        self.epoch = 0


CLOCK = EpochClock()

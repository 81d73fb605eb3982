"""Log records the runtime hands to its log sink (plugin logs and the host's own)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class LogRecord:
    level: int          # proxy-wasm levels: TRACE 0 .. CRITICAL 5
    plugin: str
    context_id: int
    message: str

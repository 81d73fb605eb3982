"""Rendering helpers shared by the CLI modules: tables, JSON, sizes, times."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer

from wasmetool.errors import WasmetoolError

OUTPUT_FORMATS = ("text", "json")


def output_option(default: str = "text") -> Any:
    return typer.Option(default, "--output", "-o", help="Output format: text or json.")


def check_output(value: str) -> str:
    if value not in OUTPUT_FORMATS:
        raise WasmetoolError(f"unknown output format '{value}'", "use -o text or -o json")
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def human_size(size: int) -> str:
    """SI units, as wasme printed them (12.6 kB)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def rfc822(moment: datetime | None) -> str:
    return moment.strftime("%d %b %y %H:%M UTC") if moment else "-"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [headers, *rows]:
        line = "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")

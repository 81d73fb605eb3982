"""Compile the hand-written WAT filters in tests/filters/ (wasmtime.wat2wasm), once each."""

from __future__ import annotations

from pathlib import Path

FILTERS = Path(__file__).resolve().parents[1] / "filters"


class FilterBuilder:
    """``builder("headers")`` -> ``<out_dir>/headers.wasm``, compiled on first use."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._built: dict[str, Path] = {}

    def __call__(self, name: str) -> Path:
        if name not in self._built:
            import wasmtime

            target = self.out_dir / f"{name}.wasm"
            target.write_bytes(wasmtime.wat2wasm((FILTERS / f"{name}.wat").read_text()))
            self._built[name] = target
        return self._built[name]

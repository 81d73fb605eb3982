"""Inspect a wasm module: is it a proxy-wasm filter, which ABI, what it imports and exports."""

from __future__ import annotations

from dataclasses import dataclass, field

from wasmetool.errors import WasmetoolError

WASM_MAGIC = b"\0asm"
ABI_MARKERS = {
    "proxy_abi_version_0_1_0": "v0.1.0",
    "proxy_abi_version_0_2_0": "v0.2.0",
    "proxy_abi_version_0_2_1": "v0.2.1",
}


@dataclass
class ModuleInfo:
    abi_version: str
    size: int
    imports: list[tuple[str, str, str]] = field(default_factory=list)  # (module, name, type)
    exports: list[tuple[str, str]] = field(default_factory=list)  # (name, type)

    def to_dict(self) -> dict:
        return {
            "abiVersion": self.abi_version,
            "size": self.size,
            "imports": [{"module": m, "name": n, "type": t} for m, n, t in self.imports],
            "exports": [{"name": n, "type": t} for n, t in self.exports],
        }


EXPORT_SECTION = 7


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise ValueError("LEB128 too long")


def export_names(data: bytes) -> list[str]:
    """Names in the export section of a (validated) module."""
    pos = 8
    names: list[str] = []
    while pos < len(data):
        section_id = data[pos]
        size, pos = _uleb(data, pos + 1)
        end = pos + size
        if section_id == EXPORT_SECTION:
            count, pos = _uleb(data, pos)
            for _ in range(count):
                length, pos = _uleb(data, pos)
                names.append(data[pos:pos + length].decode("utf-8"))
                pos += length + 1  # name, then the export kind byte
                _, pos = _uleb(data, pos)  # the index
            return names
        pos = end
    return names


def proxy_abi_version(data: bytes, source: str = "module") -> str:
    """Check ``data`` is a valid proxy-wasm module and return its ABI version.

    The checks of `build precompiled` without machine-code generation: the wasm
    magic, full WebAssembly validation (``wasmtime.Module.validate``), and a
    ``proxy_abi_version_*`` export read from the export section. Compiling a
    2.6 MB Go module takes seconds; this takes a tenth of one.
    """
    if data[:4] != WASM_MAGIC:
        raise WasmetoolError(f"{source} is not a WebAssembly module (no \\0asm magic)",
                             "pass the compiled .wasm file, not source or text")
    import wasmtime

    try:
        wasmtime.Module.validate(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        raise WasmetoolError(f"{source} is not a valid WebAssembly module: {first}") from None
    try:
        names = export_names(data)
    except (ValueError, UnicodeDecodeError, IndexError) as exc:
        raise WasmetoolError(f"{source} has an unreadable export section: {exc}") from None
    abi = next((ABI_MARKERS[name] for name in names if name in ABI_MARKERS), None)
    if abi is None:
        raise WasmetoolError(
            f"{source} is WebAssembly but not a proxy-wasm filter: it exports no "
            "proxy_abi_version_* marker",
            "build it with a proxy-wasm SDK (Rust proxy-wasm, Go proxy-wasm-go-sdk, AssemblyScript, C++)",
        )
    return abi


def _describe(kind: object) -> str:
    import wasmtime

    if isinstance(kind, wasmtime.FuncType):
        params = ", ".join(str(p) for p in kind.params)
        results = ", ".join(str(r) for r in kind.results)
        return f"func({params}) -> ({results})"
    if isinstance(kind, wasmtime.MemoryType):
        return "memory"
    if isinstance(kind, wasmtime.TableType):
        return "table"
    if isinstance(kind, wasmtime.GlobalType):
        return "global"
    return type(kind).__name__


def inspect_module(data: bytes, source: str = "module") -> ModuleInfo:
    """Validate ``data`` as a proxy-wasm module and describe it.

    Raises WasmetoolError when it is not wasm, does not compile, or has no
    proxy_abi_version_* marker export (so Envoy would refuse it).
    """
    abi = proxy_abi_version(data, source)
    import wasmtime

    try:
        module = wasmtime.Module(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        raise WasmetoolError(f"{source} is not a valid WebAssembly module: {first}") from None
    exports = [(e.name, _describe(e.type)) for e in module.exports]
    imports = [(i.module, i.name or "", _describe(i.type)) for i in module.imports]
    return ModuleInfo(abi_version=abi, size=len(data), imports=imports, exports=exports)

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
    if data[:4] != WASM_MAGIC:
        raise WasmetoolError(
            f"{source} is not a WebAssembly module (no \\0asm magic)",
            "pass the compiled .wasm file, not source or text",
        )
    import wasmtime

    try:
        module = wasmtime.Module(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        raise WasmetoolError(f"{source} is not a valid WebAssembly module: {first}") from None
    exports = [(e.name, _describe(e.type)) for e in module.exports]
    imports = [(i.module, i.name or "", _describe(i.type)) for i in module.imports]
    abi = next((ABI_MARKERS[name] for name, _ in exports if name in ABI_MARKERS), None)
    if abi is None:
        raise WasmetoolError(
            f"{source} is WebAssembly but not a proxy-wasm filter: it exports no proxy_abi_version_* marker",
            "build it with a proxy-wasm SDK (Rust proxy-wasm, Go proxy-wasm-go-sdk, AssemblyScript, C++)",
        )
    return ModuleInfo(abi_version=abi, size=len(data), imports=imports, exports=exports)

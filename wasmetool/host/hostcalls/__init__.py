"""Host functions the guest imports, grouped by topic (one module per family).

Every function is ``fn(vm, *args) -> int status`` with i32 arguments as unsigned ints and
i64 arguments as signed ints (see fastpath.py). :func:`host_functions` lists them with
the module they are imported from, their wasm signature and the ABI versions that see them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HostFunction:
    module: str
    name: str
    params: str          # 'i' = i32, 'I' = i64
    result: bool         # returns i32
    fn: Callable[..., Any]
    abi: frozenset[str] | None   # None = every ABI version


_REGISTRY: list[HostFunction] = []


def hostcall(name: str, params: str, result: bool = True, abi: tuple[str, ...] | None = None,
             modules: tuple[str, ...] = ("env",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for m in modules:
            _REGISTRY.append(HostFunction(m, name, params, result, fn,
                                          frozenset(abi) if abi else None))
        return fn
    return deco


def host_functions(abi_version: str) -> list[HostFunction]:
    from wasmetool.host import wasi  # noqa: F401 - registers the WASI set
    from wasmetool.host.hostcalls import (  # noqa: F401 - each module registers its functions
        buffers,
        foreign,
        grpc,
        headers,
        http_call,
        logging,
        metrics,
        properties,
        shared,
        stream,
        timers,
    )
    return [f for f in _REGISTRY if f.abi is None or abi_version in f.abi]

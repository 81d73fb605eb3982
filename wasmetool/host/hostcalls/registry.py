"""The table of host functions: each topic module registers its functions here.

Every function is ``fn(vm, *args) -> int status`` with i32 arguments as unsigned ints and
i64 arguments as signed ints (see fastpath.py); ``vm`` is a :class:`~wasmetool.host.state.VmState`.
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


REGISTRY: list[HostFunction] = []


def hostcall(name: str, params: str, result: bool = True, abi: tuple[str, ...] | None = None,
             modules: tuple[str, ...] = ("env",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for m in modules:
            REGISTRY.append(HostFunction(m, name, params, result, fn,
                                         frozenset(abi) if abi else None))
        return fn
    return deco

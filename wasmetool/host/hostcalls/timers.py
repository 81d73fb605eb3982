"""proxy_set_tick_period_milliseconds: one timer per root context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_set_tick_period_milliseconds", "i")
def proxy_set_tick_period_milliseconds(vm: VmState, period_ms: int) -> int:
    root = vm.ctx().root
    if root is None:
        return abi.BAD_ARGUMENT
    vm.host.set_tick_period(root, period_ms)
    return abi.OK

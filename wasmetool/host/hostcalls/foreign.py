"""proxy_call_foreign_function: this host registers no foreign functions → NOT_FOUND."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_call_foreign_function", "iiiiii")
def proxy_call_foreign_function(vm: VmState, name_ptr: int, name_size: int, args_ptr: int,
                                args_size: int, ret_ptr_ptr: int, ret_size_ptr: int) -> int:
    mem = vm.mem
    if mem.read(name_ptr, name_size) is None or mem.read(args_ptr, args_size) is None:
        return abi.INVALID_MEMORY_ACCESS
    return abi.NOT_FOUND

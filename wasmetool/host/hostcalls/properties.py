"""proxy_get_property / proxy_set_property (attribute table in host/attributes.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi, attributes
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_get_property", "iiii")
def proxy_get_property(vm: VmState, path_ptr: int, path_size: int, ptr_ptr: int, size_ptr: int) -> int:
    path = vm.mem.read(path_ptr, path_size)
    if path is None:
        return abi.INVALID_MEMORY_ACCESS
    if path.endswith(b"\0"):
        path = path[:-1]
    value = attributes.get_property(vm.ctx(), path)
    if value is None:
        return abi.NOT_FOUND
    if isinstance(value, int):          # a status Envoy answers instead of a value
        return value
    return vm.copy_out(value, ptr_ptr, size_ptr)


@hostcall("proxy_set_property", "iiii")
def proxy_set_property(vm: VmState, path_ptr: int, path_size: int, val_ptr: int, val_size: int) -> int:
    path = vm.mem.read(path_ptr, path_size)
    value = vm.mem.read(val_ptr, val_size)
    if path is None or value is None:
        return abi.INVALID_MEMORY_ACCESS
    return attributes.set_property(vm.ctx(), path, value)

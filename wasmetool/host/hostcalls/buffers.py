"""proxy_get/set_buffer_bytes, proxy_get_buffer_status and v0.1.0 proxy_get_configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.contexts import EMPTY_BUFFER
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState

MAX_BUFFER_TYPE = abi.BUF_FOREIGN_FUNCTION_ARGUMENTS


@hostcall("proxy_get_buffer_bytes", "iiiii")
def proxy_get_buffer_bytes(vm: VmState, buf_type: int, start: int, max_size: int, ptr_ptr: int,
                           size_ptr: int) -> int:
    if buf_type > MAX_BUFFER_TYPE:
        return abi.BAD_ARGUMENT
    buf = vm.ctx().get_buffer(buf_type)
    if buf is None:
        return abi.NOT_FOUND
    if start > len(buf):
        return abi.BAD_ARGUMENT
    n = len(buf)
    end = start + max_size
    if start == 0 and end >= n:     # the whole buffer (the usual case): one copy, not two
        return vm.copy_out(bytes(buf), ptr_ptr, size_ptr)
    return vm.copy_out(bytes(buf[start:min(n, end)]), ptr_ptr, size_ptr)


@hostcall("proxy_set_buffer_bytes", "iiiii")
def proxy_set_buffer_bytes(vm: VmState, buf_type: int, start: int, size: int, ptr: int,
                           length: int) -> int:
    if buf_type > MAX_BUFFER_TYPE:
        return abi.BAD_ARGUMENT
    data = vm.mem.read(ptr, length)
    if data is None:
        return abi.INVALID_MEMORY_ACCESS
    ctx = vm.ctx()
    buf = ctx.get_buffer(buf_type)
    if buf is None:
        return abi.NOT_FOUND
    if buf is EMPTY_BUFFER or buf_type > abi.BUF_UPSTREAM_DATA:
        return abi.BAD_ARGUMENT        # Envoy 1.40: nothing here that can be written
    n = len(buf)
    # Envoy's Buffer::copyFrom semantics
    if start == 0:
        if size == 0:
            buf[0:0] = data
            return abi.OK
        if size >= n:
            buf[:] = data
            return abi.OK
        return abi.BAD_ARGUMENT
    if start >= n:
        buf.extend(data)
        return abi.OK
    return abi.BAD_ARGUMENT


@hostcall("proxy_get_buffer_status", "iii")
def proxy_get_buffer_status(vm: VmState, buf_type: int, size_ptr: int, flags_ptr: int) -> int:
    if buf_type > MAX_BUFFER_TYPE:
        return abi.BAD_ARGUMENT
    buf = vm.ctx().get_buffer(buf_type)
    if buf is None:
        return abi.NOT_FOUND
    if not vm.mem.put_u32(size_ptr, len(buf)) or not vm.mem.put_u32(flags_ptr, 0):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_get_configuration", "ii", abi=(abi.ABI_0_1_0,))
def proxy_get_configuration(vm: VmState, ptr_ptr: int, size_ptr: int) -> int:
    ctx = vm.ctx()
    plugin = ctx.plugin
    data = plugin.config.configuration if plugin is not None else b""
    return vm.copy_out(data, ptr_ptr, size_ptr)

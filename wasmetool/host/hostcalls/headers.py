"""Header maps: get/set pairs, get/add/replace/remove a value, map size (Envoy semantics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi, pairs
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState

MAX_MAP_TYPE = abi.MAP_HTTP_CALL_RESPONSE_TRAILERS


def _append(m: list[tuple[bytes, bytes]], key: bytes, value: bytes) -> None:
    """Envoy's HeaderMap add: at the end, except pseudo-headers, which go after the last
    pseudo-header."""
    if key[:1] == b":":
        i = 0
        n = len(m)
        while i < n and m[i][0][:1] == b":":
            i += 1
        m.insert(i, (key, value))
    else:
        m.append((key, value))


@hostcall("proxy_get_header_map_pairs", "iii")
def proxy_get_header_map_pairs(vm: VmState, map_type: int, ptr_ptr: int, size_ptr: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    m = vm.ctx().get_map(map_type)
    return vm.copy_out(pairs.encode(m) if m else b"", ptr_ptr, size_ptr)


@hostcall("proxy_set_header_map_pairs", "iii")
def proxy_set_header_map_pairs(vm: VmState, map_type: int, ptr: int, size: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    data = vm.mem.read(ptr, size)
    if data is None:
        return abi.INVALID_MEMORY_ACCESS
    m = vm.ctx().get_map(map_type, True)
    if m is None:
        return abi.BAD_ARGUMENT
    new = pairs.decode(data) or []
    m.clear()
    for k, v in new:
        _append(m, k.lower(), v)
    return abi.OK


@hostcall("proxy_get_header_map_size", "ii")
def proxy_get_header_map_size(vm: VmState, map_type: int, ret_ptr: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    m = vm.ctx().get_map(map_type, True)
    if m is None:
        return abi.BAD_ARGUMENT
    size = sum(len(k) + len(v) for k, v in m)
    if not vm.mem.put_u32(ret_ptr, size):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_get_header_map_value", "iiiii")
def proxy_get_header_map_value(vm: VmState, map_type: int, kptr: int, ksize: int, ptr_ptr: int,
                               size_ptr: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    key = vm.mem.read(kptr, ksize)
    if key is None:
        return abi.INVALID_MEMORY_ACCESS
    m = vm.ctx().get_map(map_type)
    if m is None:
        return abi.BAD_ARGUMENT
    key = key.lower()
    for k, v in m:
        if k == key:
            return vm.copy_out(v, ptr_ptr, size_ptr)
    if vm.abi == abi.ABI_0_1_0:
        return vm.copy_out(b"", ptr_ptr, size_ptr)
    return abi.NOT_FOUND


@hostcall("proxy_add_header_map_value", "iiiii")
def proxy_add_header_map_value(vm: VmState, map_type: int, kptr: int, ksize: int, vptr: int,
                               vsize: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    mem = vm.mem
    key = mem.read(kptr, ksize)
    value = mem.read(vptr, vsize)
    if key is None or value is None:
        return abi.INVALID_MEMORY_ACCESS
    m = vm.ctx().get_map(map_type, True)
    if m is None:
        return abi.BAD_ARGUMENT
    _append(m, key.lower(), value)
    return abi.OK


@hostcall("proxy_replace_header_map_value", "iiiii")
def proxy_replace_header_map_value(vm: VmState, map_type: int, kptr: int, ksize: int, vptr: int,
                                   vsize: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    mem = vm.mem
    key = mem.read(kptr, ksize)
    value = mem.read(vptr, vsize)
    if key is None or value is None:
        return abi.INVALID_MEMORY_ACCESS
    m = vm.ctx().get_map(map_type, True)
    if m is None:
        return abi.BAD_ARGUMENT
    # Envoy's setCopy (http_set_copy_replace_all_headers): remove every entry, add anew
    key = key.lower()
    m[:] = [kv for kv in m if kv[0] != key]
    _append(m, key, value)
    return abi.OK


@hostcall("proxy_remove_header_map_value", "iii")
def proxy_remove_header_map_value(vm: VmState, map_type: int, kptr: int, ksize: int) -> int:
    if map_type > MAX_MAP_TYPE:
        return abi.BAD_ARGUMENT
    key = vm.mem.read(kptr, ksize)
    if key is None:
        return abi.INVALID_MEMORY_ACCESS
    m = vm.ctx().get_map(map_type, True)
    if m is None:
        return abi.BAD_ARGUMENT
    key = key.lower()
    m[:] = [kv for kv in m if kv[0] != key]
    return abi.OK

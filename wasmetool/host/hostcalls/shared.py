"""Shared data (key/value with CAS) and shared queues, scoped per vm_id across VMs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_get_shared_data", "iiiii")
def proxy_get_shared_data(vm: VmState, kptr: int, ksize: int, ptr_ptr: int, size_ptr: int,
                          cas_ptr: int) -> int:
    key = vm.mem.read(kptr, ksize)
    if key is None:
        return abi.INVALID_MEMORY_ACCESS
    entry = vm.host.shared_data.get(vm.config.vm_id, key)
    if entry is None:
        return abi.NOT_FOUND
    value, cas = entry
    status = vm.copy_out(value, ptr_ptr, size_ptr)
    if status != abi.OK:
        return status
    if not vm.mem.put_u32(cas_ptr, cas):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_set_shared_data", "iiiii")
def proxy_set_shared_data(vm: VmState, kptr: int, ksize: int, vptr: int, vsize: int, cas: int) -> int:
    key = vm.mem.read(kptr, ksize)
    value = vm.mem.read(vptr, vsize)
    if key is None or value is None:
        return abi.INVALID_MEMORY_ACCESS
    return vm.host.shared_data.set(vm.config.vm_id, key, value, cas)


@hostcall("proxy_register_shared_queue", "iii")
def proxy_register_shared_queue(vm: VmState, name_ptr: int, name_size: int, ret_id_ptr: int) -> int:
    name = vm.mem.read(name_ptr, name_size)
    if name is None:
        return abi.INVALID_MEMORY_ACCESS
    root = vm.ctx().root
    if root is None:
        return abi.BAD_ARGUMENT
    token = vm.host.queues.register(vm.config.vm_id, name, vm, root)
    if not vm.mem.put_u32(ret_id_ptr, token):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_resolve_shared_queue", "iiiii")
def proxy_resolve_shared_queue(vm: VmState, vm_id_ptr: int, vm_id_size: int, name_ptr: int,
                               name_size: int, ret_id_ptr: int) -> int:
    vm_id = vm.mem.read(vm_id_ptr, vm_id_size)
    name = vm.mem.read(name_ptr, name_size)
    if vm_id is None or name is None:
        return abi.INVALID_MEMORY_ACCESS
    vid = vm_id.decode("utf-8", "replace") if vm_id else vm.config.vm_id
    token = vm.host.queues.resolve(vid, name)
    if token is None:
        return abi.NOT_FOUND
    if not vm.mem.put_u32(ret_id_ptr, token):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_enqueue_shared_queue", "iii")
def proxy_enqueue_shared_queue(vm: VmState, token: int, ptr: int, size: int) -> int:
    data = vm.mem.read(ptr, size)
    if data is None:
        return abi.INVALID_MEMORY_ACCESS
    return vm.host.queues.enqueue(token, data)


@hostcall("proxy_dequeue_shared_queue", "iii")
def proxy_dequeue_shared_queue(vm: VmState, token: int, ptr_ptr: int, size_ptr: int) -> int:
    q = vm.host.queues.get(token)
    if q is None:
        return abi.NOT_FOUND
    if not q.items:
        return abi.EMPTY
    data = q.items.popleft()
    return vm.copy_out(data, ptr_ptr, size_ptr)

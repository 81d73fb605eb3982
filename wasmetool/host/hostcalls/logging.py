"""Logging, clock, effective context, proxy_done and the small always-registered helpers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_log", "iii")
def proxy_log(vm: VmState, level: int, ptr: int, size: int) -> int:
    if level > abi.CRITICAL:
        return abi.BAD_ARGUMENT
    msg = vm.mem.read(ptr, size)
    if msg is None:
        return abi.INVALID_MEMORY_ACCESS
    host = vm.host
    if level >= host.log_level:
        ctx = vm.ctx()
        root = ctx.root
        plugin = root.plugin.config.name if root is not None else vm.name
        host.emit_log(level, plugin, ctx.id, msg.decode("utf-8", "replace"))
    return abi.OK


@hostcall("proxy_get_log_level", "i", abi=(abi.ABI_0_2_1,))
def proxy_get_log_level(vm: VmState, ret_ptr: int) -> int:
    if not vm.mem.put_u32(ret_ptr, vm.host.log_level):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_get_current_time_nanoseconds", "i")
def proxy_get_current_time_nanoseconds(vm: VmState, ret_ptr: int) -> int:
    if not vm.mem.put_u64(ret_ptr, time.time_ns()):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_set_effective_context", "i")
def proxy_set_effective_context(vm: VmState, context_id: int) -> int:
    ctx = vm.contexts.get(context_id)
    if ctx is None or ctx.deleted:
        return abi.BAD_ARGUMENT
    vm.eff = ctx
    return abi.OK


@hostcall("proxy_done", "")
def proxy_done(vm: VmState) -> int:
    ctx = vm.ctx()
    root = ctx.root
    if root is None or not root.done_pending:
        return abi.NOT_FOUND
    root.done_pending = False
    vm.host.dispatcher.call_soon(lambda: vm.host.finish_root_delete(root))
    return abi.OK


@hostcall("pthread_equal", "ii")
def pthread_equal(vm: VmState, a: int, b: int) -> int:
    return 1 if a == b else 0


@hostcall("emscripten_notify_memory_growth", "i", result=False)
def emscripten_notify_memory_growth(vm: VmState, _index: int) -> None:
    vm.mem.refresh()


@hostcall("envoy_resolve_dns", "iii")
def envoy_resolve_dns(vm: VmState, ptr: int, size: int, ret_token: int) -> int:
    # Envoy-only extension; this host has no DNS resolver to offer.
    if vm.mem.read(ptr, size) is None:
        return abi.INVALID_MEMORY_ACCESS
    return abi.UNIMPLEMENTED

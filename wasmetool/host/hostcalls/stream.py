"""Stream control: continue/close a stream, local responses, proxy_get_status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi, pairs
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState

V02 = (abi.ABI_0_2_0, abi.ABI_0_2_1)


@hostcall("proxy_continue_stream", "i", abi=V02)
def proxy_continue_stream(vm: VmState, stream_type: int) -> int:
    return vm.ctx().continue_stream(stream_type)


@hostcall("proxy_close_stream", "i", abi=V02)
def proxy_close_stream(vm: VmState, stream_type: int) -> int:
    return vm.ctx().close_stream(stream_type)


@hostcall("proxy_continue_request", "", abi=(abi.ABI_0_1_0,))
def proxy_continue_request(vm: VmState) -> int:
    return vm.ctx().continue_stream(abi.STREAM_HTTP_REQUEST)


@hostcall("proxy_continue_response", "", abi=(abi.ABI_0_1_0,))
def proxy_continue_response(vm: VmState) -> int:
    return vm.ctx().continue_stream(abi.STREAM_HTTP_RESPONSE)


@hostcall("proxy_clear_route_cache", "", abi=(abi.ABI_0_1_0,))
def proxy_clear_route_cache(vm: VmState) -> int:
    return abi.OK      # one route: nothing cached to clear


@hostcall("proxy_send_local_response", "iiiiiiii")
def proxy_send_local_response(vm: VmState, status: int, details_ptr: int, details_size: int,
                              body_ptr: int, body_size: int, hdrs_ptr: int, hdrs_size: int,
                              grpc_status: int) -> int:
    mem = vm.mem
    details = mem.read(details_ptr, details_size)
    body = mem.read(body_ptr, body_size)
    raw = mem.read(hdrs_ptr, hdrs_size)
    if details is None or body is None or raw is None:
        return abi.INVALID_MEMORY_ACCESS
    headers = pairs.decode(raw) or []
    return vm.ctx().send_local_response(status, details, body,
                                        [(k.lower(), v) for k, v in headers], grpc_status)


@hostcall("proxy_get_status", "iii")
def proxy_get_status(vm: VmState, code_ptr: int, msg_ptr_ptr: int, msg_size_ptr: int) -> int:
    if not vm.mem.put_u32(code_ptr, vm.status_code):
        return abi.INVALID_MEMORY_ACCESS
    return vm.copy_out(vm.status_message, msg_ptr_ptr, msg_size_ptr)

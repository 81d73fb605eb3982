"""gRPC callouts. This host has no gRPC client: every call answers UNIMPLEMENTED (12).

Pointers are still checked first (INVALID_MEMORY_ACCESS for bad ones), so a hostile module
sees the same validation as everywhere else. No call or stream ever exists, so the token
calls answer what Envoy answers for an unknown token: send → BAD_ARGUMENT; cancel/close →
NOT_FOUND for an odd token (a call id), BAD_ARGUMENT for an even one (a stream id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


def _readable(vm: VmState, *spans: int) -> bool:
    mem = vm.mem
    for i in range(0, len(spans), 2):
        if mem.read(spans[i], spans[i + 1]) is None:
            return False
    return True


@hostcall("proxy_grpc_call", "iiiiiiiiiiii")
def proxy_grpc_call(vm: VmState, up: int, up_sz: int, svc: int, svc_sz: int, method: int,
                    method_sz: int, md: int, md_sz: int, msg: int, msg_sz: int,
                    timeout_ms: int, ret_id: int) -> int:
    if not _readable(vm, up, up_sz, svc, svc_sz, method, method_sz, md, md_sz, msg, msg_sz):
        return abi.INVALID_MEMORY_ACCESS
    return abi.UNIMPLEMENTED


@hostcall("proxy_grpc_stream", "iiiiiiiii")
def proxy_grpc_stream(vm: VmState, up: int, up_sz: int, svc: int, svc_sz: int, method: int,
                      method_sz: int, md: int, md_sz: int, ret_id: int) -> int:
    if not _readable(vm, up, up_sz, svc, svc_sz, method, method_sz, md, md_sz):
        return abi.INVALID_MEMORY_ACCESS
    return abi.UNIMPLEMENTED


@hostcall("proxy_grpc_send", "iiii")
def proxy_grpc_send(vm: VmState, call_id: int, msg: int, msg_sz: int, end_stream: int) -> int:
    if not _readable(vm, msg, msg_sz):
        return abi.INVALID_MEMORY_ACCESS
    return abi.BAD_ARGUMENT


def _unknown_token(call_id: int) -> int:
    return abi.NOT_FOUND if call_id & 1 else abi.BAD_ARGUMENT


@hostcall("proxy_grpc_cancel", "i")
def proxy_grpc_cancel(vm: VmState, call_id: int) -> int:
    return _unknown_token(call_id)


@hostcall("proxy_grpc_close", "i")
def proxy_grpc_close(vm: VmState, call_id: int) -> int:
    return _unknown_token(call_id)

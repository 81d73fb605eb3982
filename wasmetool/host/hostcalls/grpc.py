"""gRPC callouts: proxy_grpc_call / _stream / _send / _cancel / _close.

The semantics (tokens, statuses, which callbacks fire) are Envoy's and live in
wasmetool/host/grpc_calls.py; the wire is the dispatcher's (h2c in ``wasmetool run``).
Pointers are checked first: a bad one is INVALID_MEMORY_ACCESS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi, pairs
from wasmetool.host.grpc_calls import VmGrpc
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


def _grpc(vm: VmState) -> VmGrpc:
    state = vm.grpc
    if state is None:
        state = vm.grpc = VmGrpc(vm)
    return state


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _start(vm: VmState, up: int, up_sz: int, svc: int, svc_sz: int, method: int, method_sz: int,
           md: int, md_sz: int, message: bytes | None, timeout_ms: int | None,
           ret_id: int) -> int:
    mem = vm.mem
    cluster = mem.read(up, up_sz)
    service = mem.read(svc, svc_sz)
    name = mem.read(method, method_sz)
    raw_md = mem.read(md, md_sz)
    if cluster is None or service is None or name is None or raw_md is None:
        return abi.INVALID_MEMORY_ACCESS
    root = vm.ctx().root
    if root is None:                      # the VM context (id 0) has no root to call back
        return abi.BAD_ARGUMENT
    metadata = [(k.lower(), v) for k, v in pairs.decode(raw_md) or []]
    return _grpc(vm).start(root, cluster, _text(service), _text(name), metadata,
                           message, timeout_ms, ret_id)


@hostcall("proxy_grpc_call", "iiiiiiiiiiii")
def proxy_grpc_call(vm: VmState, up: int, up_sz: int, svc: int, svc_sz: int, method: int,
                    method_sz: int, md: int, md_sz: int, msg: int, msg_sz: int,
                    timeout_ms: int, ret_id: int) -> int:
    message = vm.mem.read(msg, msg_sz)
    if message is None:
        return abi.INVALID_MEMORY_ACCESS
    return _start(vm, up, up_sz, svc, svc_sz, method, method_sz, md, md_sz, message,
                  timeout_ms, ret_id)


@hostcall("proxy_grpc_stream", "iiiiiiiii")
def proxy_grpc_stream(vm: VmState, up: int, up_sz: int, svc: int, svc_sz: int, method: int,
                      method_sz: int, md: int, md_sz: int, ret_id: int) -> int:
    return _start(vm, up, up_sz, svc, svc_sz, method, method_sz, md, md_sz, None, None, ret_id)


@hostcall("proxy_grpc_send", "iiii")
def proxy_grpc_send(vm: VmState, token: int, msg: int, msg_sz: int, end_stream: int) -> int:
    message = vm.mem.read(msg, msg_sz)
    if message is None:
        return abi.INVALID_MEMORY_ACCESS
    return _grpc(vm).send(token, message, bool(end_stream))


@hostcall("proxy_grpc_cancel", "i")
def proxy_grpc_cancel(vm: VmState, token: int) -> int:
    return _grpc(vm).cancel(token)


@hostcall("proxy_grpc_close", "i")
def proxy_grpc_close(vm: VmState, token: int) -> int:
    return _grpc(vm).close(token)

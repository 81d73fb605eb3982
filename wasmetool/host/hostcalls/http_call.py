"""proxy_http_call: a callout to a named cluster, answered on the root context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi, pairs
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_http_call", "iiiiiiiiii")
def proxy_http_call(vm: VmState, up_ptr: int, up_size: int, hdrs_ptr: int, hdrs_size: int,
                    body_ptr: int, body_size: int, trl_ptr: int, trl_size: int,
                    timeout_ms: int, ret_token_ptr: int) -> int:
    mem = vm.mem
    cluster = mem.read(up_ptr, up_size)
    raw_headers = mem.read(hdrs_ptr, hdrs_size)
    body = mem.read(body_ptr, body_size)
    raw_trailers = mem.read(trl_ptr, trl_size)
    if cluster is None or raw_headers is None or body is None or raw_trailers is None:
        return abi.INVALID_MEMORY_ACCESS
    ctx = vm.ctx()
    root = ctx.root
    if root is None:
        return abi.BAD_ARGUMENT
    return vm.host.start_http_call(vm, root, cluster.decode("utf-8", "replace"),
                                   pairs.decode(raw_headers) or [], body,
                                   pairs.decode(raw_trailers) or [], timeout_ms, ret_token_ptr)

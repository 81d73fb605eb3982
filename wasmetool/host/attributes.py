"""Envoy attributes for proxy_get_property, with Envoy's binary encodings.

strings/bytes raw; int/uint 8 bytes little-endian; bool 1 byte; timestamps and durations
int64 nanoseconds; maps in the header-map pairs encoding. A name that is not an attribute
is looked up as filter state ``wasm.<name>`` (set with proxy_set_property).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmetool.host import abi, pairs

if TYPE_CHECKING:
    from wasmetool.host.state import ContextState

_I64 = struct.Struct("<q")
_EMPTY_MAP = b"\0\0\0\0"       # a map property with no entries: count 0
# Envoy's Grpc::Utility::httpToGrpcStatus (anything else: 2 UNKNOWN)
HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


def _i64(v: int) -> bytes:
    return _I64.pack(v)


def _b(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def _hdr(m: list[tuple[bytes, bytes]] | None, name: bytes) -> bytes | None:
    if m is None:
        return None
    for k, v in m:
        if k == name:
            return v
    return None


def _joined(m: list[tuple[bytes, bytes]] | None) -> bytes | None:
    if m is None:
        return None
    merged: dict[bytes, bytes] = {}
    for k, v in m:
        merged[k] = merged[k] + b"," + v if k in merged else v
    return pairs.encode(list(merged.items()))


def _addr(a: tuple[str, int] | None) -> bytes | None:
    if not a:
        return None
    ip, port = a
    return (f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}").encode()


def _size(m: list[tuple[bytes, bytes]] | None) -> int:
    return sum(len(k) + len(v) for k, v in m) if m else 0


Getter = Callable[["ContextState", Any, Any], "bytes | None"]


def _req(ctx: ContextState, owner: Any, info: Any, field: str) -> bytes | None:
    h = owner.get_map(abi.MAP_REQUEST_HEADERS) if owner is not None else None
    if h is None:
        return None
    if getattr(ctx, "req_released", False) and not owner.finished:
        # Envoy 1.40 once the filter let the request headers go: what comes from them is
        # NOT_FOUND, request.headers an empty map, the sizes count the body alone
        if field == "total_size":
            return _i64(getattr(owner, "request_body_bytes", 0))
        h = []
    if field == "path":
        return _hdr(h, b":path")
    if field == "url_path":
        p = _hdr(h, b":path")
        return p.split(b"?", 1)[0] if p is not None else None
    if field == "query":
        p = _hdr(h, b":path")
        return (p.split(b"?", 1)[1] if b"?" in p else b"") if p is not None else None
    if field == "host":
        return _hdr(h, b":authority")
    if field == "scheme":
        return _hdr(h, b":scheme")
    if field == "method":
        return _hdr(h, b":method")
    if field == "headers":
        return _joined(h) if h else _EMPTY_MAP
    if field == "headers_bytes":
        return _i64(_size(h))
    if field == "referer":
        return _hdr(h, b"referer")
    if field == "useragent":
        return _hdr(h, b"user-agent")
    if field == "id":
        return _hdr(h, b"x-request-id")
    if field == "protocol":
        return info.protocol.encode() if info is not None else None
    if field == "time":
        return _i64(info.start_time_ns) if info is not None else None
    if field == "duration":
        return _i64(info.end_time_ns - info.start_time_ns) if info and info.end_time_ns else None
    if field == "size":
        cl = _hdr(h, b"content-length")
        if cl is not None and cl.isdigit():
            return _i64(int(cl))
        return _i64(owner.request_body_bytes) if hasattr(owner, "request_body_bytes") else None
    if field == "total_size":
        body = getattr(owner, "request_body_bytes", 0)
        return _i64(_size(h) + body + _size(owner.get_map(abi.MAP_REQUEST_TRAILERS)))
    return None


def _resp(ctx: ContextState, owner: Any, info: Any, field: str) -> bytes | None:
    if owner is None:
        return None
    h = owner.get_map(abi.MAP_RESPONSE_HEADERS)
    if field == "code":
        st = _hdr(h, b":status")
        if st is not None and st.isdigit():
            return _i64(int(st))
        return _i64(info.response_code) if info and info.response_code else None
    if field == "code_details":
        return info.response_code_details.encode() if info and info.response_code_details else None
    if field == "flags":
        return _i64(info.response_flags) if info is not None else None
    if field == "grpc_status":
        v = _hdr(owner.get_map(abi.MAP_RESPONSE_TRAILERS), b"grpc-status") or _hdr(h, b"grpc-status")
        if v is not None and v.isdigit():
            return _i64(int(v))
        st = _hdr(h, b":status")
        code = int(st) if st is not None and st.isdigit() else (info.response_code if info else 0)
        return _i64(HTTP_TO_GRPC.get(code, 2)) if code else None
    if field == "headers":
        return _joined(h)
    if field == "headers_bytes":
        return _i64(_size(h)) if h is not None else None
    if field == "trailers":
        # a response without trailers has an empty trailer map (Envoy: 4 zero bytes)
        t = owner.get_map(abi.MAP_RESPONSE_TRAILERS)
        return _joined(t) if t else (_EMPTY_MAP if h is not None else None)
    if field == "size":
        return _i64(getattr(owner, "response_body_bytes", 0)) if h is not None else None
    if field == "total_size":
        return _i64(_size(h) + getattr(owner, "response_body_bytes", 0)) if h is not None else None
    if field == "backend_latency":
        if info and info.upstream_end_ns and info.upstream_start_ns:
            return _i64(info.upstream_end_ns - info.upstream_start_ns)
        return None
    return None


def _conn(info: Any, section: str, field: str) -> bytes | None:
    if info is None:
        return None
    if section == "source":
        a = info.downstream_remote
    elif section == "destination":
        a = info.downstream_local
    else:
        a = None
    if section in ("source", "destination"):
        if field == "address":
            return _addr(a)
        if field == "port":
            return _i64(a[1]) if a else None
        return None
    if section == "connection":
        if field == "id":
            return _i64(info.connection_id)
        if field == "mtls":
            return _b(False)
        if field == "requested_server_name":
            return b""
        if field == "termination_details":
            return None
        return None
    if section == "upstream":
        if field == "address":
            return _addr(info.upstream_address)
        if field == "port":
            return _i64(info.upstream_address[1]) if info.upstream_address else None
        if field == "local_address":
            return _addr(info.upstream_local_address)
        if field == "request_attempt_count":
            return _i64(1) if info.upstream_address else None
        # once the request was routed to the upstream cluster (Envoy 1.40): one endpoint
        # per cluster here, and no transport failure to report (TLS is not failed over)
        if field == "num_endpoints":
            return _i64(1) if info.cluster_name else None
        if field == "transport_failure_reason":
            return b"" if info.cluster_name else None
        return None
    return None


def get_property(ctx: ContextState, path: bytes) -> bytes | int | None:
    """The value of an attribute, None when it is not found, or an int status when Envoy
    answers one (the whole ``filter_state`` cannot be serialised: SERIALIZATION_FAILURE)."""
    parts = path.split(b"\0")
    head = parts[0].decode("utf-8", "replace")
    owner = getattr(ctx, "owner", None)
    info = ctx.stream_info()
    plugin = ctx.plugin
    if len(parts) == 1 and info is not None:
        if head == "metadata":              # the dynamic metadata, empty: an empty protobuf
            return b""
        if head == "filter_state":          # a map of objects Envoy does not serialise
            return abi.SERIALIZATION_FAILURE
    if head == "plugin_name" and len(parts) == 1:
        return plugin.config.name.encode() if plugin else None
    if head == "plugin_root_id" and len(parts) == 1:
        return plugin.config.root_id.encode() if plugin else None
    if head == "plugin_vm_id" and len(parts) == 1:
        return ctx.vm.config.vm_id.encode()
    if head == "connection_id" and len(parts) == 1:
        return _i64(info.connection_id) if info else None
    if len(parts) == 2:
        field = parts[1].decode("utf-8", "replace")
        if head == "request":
            return _req(ctx, owner, info, field)
        if head == "response":
            return _resp(ctx, owner, info, field)
        if head in ("source", "destination", "connection", "upstream"):
            return _conn(info, head, field)
        if head == "xds":
            if field == "cluster_name":
                return info.cluster_name.encode() if info and info.cluster_name else None
            if field == "route_name":      # Envoy: "" for a route without a name
                if info is None or (not info.route_name and info.protocol == "TCP"):
                    return None
                return info.route_name.encode()
            if field == "filter_chain_name":    # the listener's one, unnamed, filter chain
                return b"" if info is not None else None
            if field == "listener_direction":
                return _i64(0)
            return None
    if len(parts) == 3 and head in ("request", "response") and parts[1] in (b"headers", b"trailers"):
        if owner is None:
            return None
        t = {(b"request", b"headers"): abi.MAP_REQUEST_HEADERS,
             (b"response", b"headers"): abi.MAP_RESPONSE_HEADERS,
             (b"response", b"trailers"): abi.MAP_RESPONSE_TRAILERS}.get((parts[0], parts[1]))
        if t is None:
            return None
        if t == abi.MAP_REQUEST_HEADERS and getattr(ctx, "req_released", False) \
                and not owner.finished:
            return None                 # Envoy 1.40: gone once the filter let them go
        m = owner.get_map(t)
        if m is None:
            return None
        name = parts[2].lower()
        vals = [v for k, v in m if k == name]
        return b",".join(vals) if vals else None
    # filter state set by proxy_set_property
    state = info.filter_state if info is not None else None
    if state:
        v = state.get(b"wasm." + path)
        if v is None:
            v = state.get(b"wasm." + parts[0])
        return v
    return None


def set_property(ctx: ContextState, path: bytes, value: bytes) -> int:
    info = ctx.stream_info()
    if info is None:
        return abi.NOT_FOUND
    if info.filter_state is None:
        info.filter_state = {}
    info.filter_state[b"wasm." + path] = value
    return abi.OK

"""Per-stream facts the server knows (addresses, ids, sizes) and properties are read from."""

from __future__ import annotations

import time

Address = tuple[str, int]


class StreamInfo:
    """Filled by the server; the runtime reads it for proxy_get_property.

    Fixed at creation: downstream remote/local address, connection id, protocol,
    start time (wall clock, ns). Filled later by the server: upstream address and
    local address, response code and details, response flags, bytes sent/received.
    """

    __slots__ = ("downstream_remote", "downstream_local", "connection_id", "protocol",
                 "start_time_ns", "upstream_address", "upstream_local_address",
                 "response_code", "response_code_details", "response_flags",
                 "bytes_received", "bytes_sent", "request_id", "route_name",
                 "cluster_name", "filter_state", "end_time_ns", "upstream_start_ns",
                 "upstream_end_ns")

    def __init__(self, downstream_remote: Address = ("127.0.0.1", 0),
                 downstream_local: Address = ("127.0.0.1", 0), connection_id: int = 0,
                 protocol: str = "HTTP/1.1", start_time_ns: int | None = None) -> None:
        self.downstream_remote = downstream_remote
        self.downstream_local = downstream_local
        self.connection_id = connection_id
        self.protocol = protocol
        self.start_time_ns = time.time_ns() if start_time_ns is None else start_time_ns
        self.upstream_address: Address | None = None
        self.upstream_local_address: Address | None = None
        self.response_code: int = 0
        self.response_code_details: str = ""
        self.response_flags: int = 0
        self.bytes_received: int = 0
        self.bytes_sent: int = 0
        self.request_id: str = ""
        self.route_name: str = ""
        self.cluster_name: str = ""
        self.filter_state: dict[bytes, bytes] | None = None   # proxy_set_property (wasm.<path>)
        self.end_time_ns: int = 0
        self.upstream_start_ns: int = 0
        self.upstream_end_ns: int = 0

"""Counters the servers keep (plain ints on the hot path), rendered as Prometheus text."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class ServerStats:
    downstream_cx_total: int = 0
    downstream_cx_active: int = 0
    downstream_rq_total: int = 0
    downstream_rq_active: int = 0
    downstream_rq_1xx: int = 0
    downstream_rq_2xx: int = 0
    downstream_rq_3xx: int = 0
    downstream_rq_4xx: int = 0
    downstream_rq_5xx: int = 0
    downstream_rq_reset: int = 0
    downstream_cx_protocol_error: int = 0
    upstream_cx_total: int = 0
    upstream_cx_connect_fail: int = 0
    upstream_rq_total: int = 0
    upstream_rq_reset: int = 0
    upstream_rq_retry: int = 0
    upstream_rq_timeout: int = 0
    http_call_total: int = 0
    http_call_failure: int = 0
    grpc_call_total: int = 0
    tcp_cx_total: int = 0
    tcp_cx_active: int = 0
    tcp_bytes_received: int = 0
    tcp_bytes_sent: int = 0

    def count_response(self, status: int) -> None:
        if status >= 500:
            self.downstream_rq_5xx += 1
        elif status >= 400:
            self.downstream_rq_4xx += 1
        elif status >= 300:
            self.downstream_rq_3xx += 1
        elif status >= 200:
            self.downstream_rq_2xx += 1
        else:
            self.downstream_rq_1xx += 1

    @classmethod
    def total(cls, parts: list[ServerStats]) -> ServerStats:
        """The sum of several workers' counters (a snapshot; workers keep counting)."""
        if len(parts) == 1:
            return parts[0]
        return cls(**{item.name: sum(getattr(p, item.name) for p in parts)
                      for item in fields(cls)})

    def prometheus_text(self) -> str:
        lines: list[str] = []
        for item in fields(self):
            name = f"wasmetool_{item.name}"
            kind = "gauge" if item.name.endswith("_active") else "counter"
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name} {getattr(self, item.name)}")
        return "\n".join(lines) + "\n"

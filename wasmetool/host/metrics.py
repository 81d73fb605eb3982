"""Plugin metrics (counter, gauge, histogram) shared by name across VMs, and host counters."""

from __future__ import annotations

import re
import threading

from wasmetool.host import abi

# Envoy's default histogram buckets
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
           300000, 600000, 1800000, 3600000)
_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_TYPE_NAMES = {abi.METRIC_COUNTER: "counter", abi.METRIC_GAUGE: "gauge",
               abi.METRIC_HISTOGRAM: "histogram"}


def prom_name(name: str) -> str:
    n = _BAD.sub("_", name)
    return n if n and not n[0].isdigit() else "_" + n


class Metric:
    __slots__ = ("type", "name", "value", "count", "sum", "buckets")

    def __init__(self, metric_type: int, name: str) -> None:
        self.type = metric_type
        self.name = name
        self.value = 0
        self.count = 0
        self.sum = 0
        self.buckets = [0] * len(BUCKETS) if metric_type == abi.METRIC_HISTOGRAM else []

    def record(self, value: int) -> None:
        if self.type == abi.METRIC_COUNTER:
            self.value += value
        elif self.type == abi.METRIC_GAUGE:
            self.value = value
        else:
            self.count += 1
            self.sum += value
            for i, b in enumerate(BUCKETS):
                if value <= b:
                    self.buckets[i] += 1

    def increment(self, offset: int) -> int:
        if self.type == abi.METRIC_COUNTER:
            if offset <= 0:
                return abi.BAD_ARGUMENT
            self.value += offset
            return abi.OK
        if self.type == abi.METRIC_GAUGE:
            self.value = max(0, self.value + offset)
            return abi.OK
        return abi.BAD_ARGUMENT


class LockedMetric(Metric):
    """A metric that VMs on several threads update (``--concurrency``): as Envoy's atomics."""

    __slots__ = ("lock",)

    def __init__(self, metric_type: int, name: str, lock: threading.Lock) -> None:
        super().__init__(metric_type, name)
        self.lock = lock

    def record(self, value: int) -> None:
        with self.lock:
            Metric.record(self, value)

    def increment(self, offset: int) -> int:
        with self.lock:
            return Metric.increment(self, offset)


class MetricStore:
    def __init__(self, threadsafe: bool = False) -> None:
        self.metrics: dict[tuple[int, str], Metric] = {}
        self._lock = threading.Lock() if threadsafe else None

    def get(self, metric_type: int, name: str) -> Metric:
        key = (metric_type, name)
        m = self.metrics.get(key)
        if m is None:
            lock = self._lock
            if lock is None:
                m = self.metrics[key] = Metric(metric_type, name)
            else:
                with lock:
                    m = self.metrics.get(key)
                    if m is None:
                        m = self.metrics[key] = LockedMetric(metric_type, name, lock)
        return m

    def value(self, name: str) -> int | None:
        for (t, n), m in list(self.metrics.items()):
            if n == name and t != abi.METRIC_HISTOGRAM:
                return m.value
        return None

    def prometheus_text(self, host_counters: dict[str, int] | None = None) -> str:
        """The plugin metrics, then ``host_counters`` (the host's own counters)."""
        lines: list[str] = []
        for (_t, _n), m in sorted(list(self.metrics.items()), key=lambda kv: kv[0][1]):
            name = prom_name(m.name)
            lines.append(f"# TYPE {name} {_TYPE_NAMES[m.type]}")
            if m.type == abi.METRIC_HISTOGRAM:
                for b, c in zip(BUCKETS, m.buckets, strict=True):
                    lines.append(f'{name}_bucket{{le="{b}"}} {c}')
                lines.append(f'{name}_bucket{{le="+Inf"}} {m.count}')
                lines.append(f"{name}_sum {m.sum}")
                lines.append(f"{name}_count {m.count}")
            else:
                lines.append(f"{name} {m.value}")
        for name, value in sorted((host_counters or {}).items()):
            lines.append(f"# TYPE {name} counter")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"

"""What every VM of the process shares, as Envoy shares it across its worker threads.

Shared data (key/value with CAS) and shared queues are scoped by vm_id and process wide;
plugin metrics are process wide by name. ``wasmetool run --concurrency N`` runs one
:class:`~wasmetool.host.runtime.Host` per worker thread, each with its own VMs, all on one
:class:`ProcessShared`; so these structures take a lock around each operation. A queue
notifies the host of the VM that registered it (``queue_ready``), which hands delivery to
its own thread, as Envoy posts ``on_queue_ready`` to the registering worker.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.metrics import MetricStore

if TYPE_CHECKING:
    from wasmetool.host.state import HostServices, RootState, VmState


class SharedData:
    def __init__(self) -> None:
        self._data: dict[tuple[str, bytes], tuple[bytes, int]] = {}
        self._cas = 0
        self._lock = threading.Lock()

    def _next_cas(self) -> int:
        self._cas = (self._cas + 1) & 0xFFFFFFFF
        if self._cas == 0:
            self._cas = 1
        return self._cas

    def get(self, vm_id: str, key: bytes) -> tuple[bytes, int] | None:
        return self._data.get((vm_id, key))

    def set(self, vm_id: str, key: bytes, value: bytes, cas: int) -> int:
        k = (vm_id, key)
        with self._lock:
            cur = self._data.get(k)
            if cas and cur is not None and cur[1] != cas:
                return abi.CAS_MISMATCH
            self._data[k] = (value, self._next_cas())
        return abi.OK


class SharedQueue:
    __slots__ = ("token", "vm_id", "name", "vm", "root", "items")

    def __init__(self, token: int, vm_id: str, name: bytes, vm: VmState, root: RootState) -> None:
        self.token = token
        self.vm_id = vm_id
        self.name = name
        self.vm = vm
        self.root = root
        self.items: deque[bytes] = deque()


class SharedQueues:
    def __init__(self) -> None:
        self._by_name: dict[tuple[str, bytes], SharedQueue] = {}
        self._by_token: dict[int, SharedQueue] = {}
        self._next = 1
        self._lock = threading.Lock()

    def register(self, vm_id: str, name: bytes, vm: VmState, root: RootState) -> int:
        """Create the queue, or make this VM's root context its receiver (the last to
        register receives, as in Envoy)."""
        with self._lock:
            q = self._by_name.get((vm_id, name))
            if q is None:
                q = SharedQueue(self._next, vm_id, name, vm, root)
                self._next += 1
                self._by_name[(vm_id, name)] = q
                self._by_token[q.token] = q
            else:
                q.vm = vm
                q.root = root
            return q.token

    def resolve(self, vm_id: str, name: bytes) -> int | None:
        q = self._by_name.get((vm_id, name))
        return q.token if q is not None else None

    def get(self, token: int) -> SharedQueue | None:
        return self._by_token.get(token)

    def enqueue(self, token: int, data: bytes) -> int:
        q = self._by_token.get(token)
        if q is None:
            return abi.NOT_FOUND
        q.items.append(data)
        q.vm.host.queue_ready(q)
        return abi.OK


class ProcessShared:
    """The state the hosts of one process share: shared data, shared queues, metrics.

    ``hosts`` lists every Host on it (one per worker), so process-wide figures such as
    host counters can be summed over them.
    """

    def __init__(self, threads: bool = False) -> None:
        self.shared_data = SharedData()
        self.queues = SharedQueues()
        self.metrics = MetricStore(threadsafe=threads)
        self.hosts: list[HostServices] = []

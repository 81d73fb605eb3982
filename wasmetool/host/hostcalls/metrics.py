"""Metrics: define / record / increment / get (Envoy: type in the id's low 2 bits)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState


@hostcall("proxy_define_metric", "iiii")
def proxy_define_metric(vm: VmState, metric_type: int, name_ptr: int, name_size: int,
                        ret_id_ptr: int) -> int:
    if metric_type > abi.METRIC_HISTOGRAM:
        return abi.BAD_ARGUMENT
    name = vm.mem.read(name_ptr, name_size)
    if name is None:
        return abi.INVALID_MEMORY_ACCESS
    key = (metric_type, name.decode("utf-8", "replace"))
    mid = vm.metric_ids.get(key)
    if mid is None:
        vm.next_metric_id += abi.METRIC_ID_INCREMENT
        mid = vm.next_metric_id | metric_type
        vm.metric_ids[key] = mid
        vm.metric_names[mid] = vm.host.metrics.get(metric_type, key[1])
    if not vm.mem.put_u32(ret_id_ptr, mid):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK


@hostcall("proxy_record_metric", "iI")
def proxy_record_metric(vm: VmState, metric_id: int, value: int) -> int:
    m = vm.metric_names.get(metric_id)
    if m is None:
        return abi.NOT_FOUND
    m.record(value & 0xFFFFFFFFFFFFFFFF)
    return abi.OK


@hostcall("proxy_increment_metric", "iI")
def proxy_increment_metric(vm: VmState, metric_id: int, offset: int) -> int:
    m = vm.metric_names.get(metric_id)
    if m is None:
        return abi.NOT_FOUND
    return m.increment(offset)


@hostcall("proxy_get_metric", "ii")
def proxy_get_metric(vm: VmState, metric_id: int, ret_ptr: int) -> int:
    m = vm.metric_names.get(metric_id)
    if m is None:
        return abi.NOT_FOUND
    if m.type == abi.METRIC_HISTOGRAM:
        return abi.BAD_ARGUMENT
    if not vm.mem.put_u64(ret_ptr, m.value):
        return abi.INVALID_MEMORY_ACCESS
    return abi.OK

"""A configured plugin at run time: its VM, its root context and its failure state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wasmetool.host.config import PluginConfig
    from wasmetool.host.contexts import RootContext
    from wasmetool.host.vm import Vm


class PluginRuntime:
    __slots__ = ("config", "vm", "root", "next_reload_ns", "reloads")

    def __init__(self, config: PluginConfig) -> None:
        self.config = config
        self.vm: Vm | None = None
        self.root: RootContext | None = None
        self.next_reload_ns = 0
        self.reloads = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def alive(self) -> bool:
        vm = self.vm
        return vm is not None and not vm.failed and self.root is not None

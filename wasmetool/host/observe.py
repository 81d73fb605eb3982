"""A narrow hook for whoever watches the guest boundary (a tracer, a strict checker).

The host defines the interface and calls it once per VM load; it never imports the
watchers (wasmetool.testing's tracer implements it, `wasmetool run --trace` passes one in).
With no observer the host's call paths are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# Imports nothing from the host: the VM is passed as ``Any`` so this module stays a leaf.


class CallObserver(Protocol):
    def wrap_host_function(self, vm: Any, name: str,
                           fn: Callable[..., Any]) -> Callable[..., Any]:
        """Return what the guest's import ``name`` calls instead of ``fn(vm, *args)``.
        A tracer calls ``fn`` with the same arguments and returns its result; the test
        API's virtual clock answers the two time imports itself."""
        ...

    def wrap_callback(self, vm: Any, name: str,
                      call: Callable[..., int]) -> Callable[..., int]:
        """Return what the host calls instead of the guest export ``name``."""
        ...

"""Assemble and run the servers of `wasmetool run`: host, listener, upstreams, admin."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from wasmetool.errors import WasmetoolError
from wasmetool.host.config import Cluster, Limits, PluginConfig
from wasmetool.host.plugin_file import parse_http_url, parse_tcp_address
from wasmetool.proxy.stats import ServerStats

LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
DEFAULT_ADMIN = ("127.0.0.1", 9901)
SIGNAL_POLL_S = 0.2      # longest wait before a SIGINT/SIGTERM is acted on


@dataclass
class RunOptions:
    plugins: list[PluginConfig]
    listen: tuple[str, int] = ("127.0.0.1", 8080)
    upstream: str | None = None           # None: the built-in echo upstream (HTTP only)
    clusters: list[Cluster] = field(default_factory=list)
    tcp: bool = False
    admin: tuple[str, int] | None = DEFAULT_ADMIN
    admin_explicit: bool = False          # a busy default admin port falls back to any port
    limits: Limits = field(default_factory=Limits)
    log_level: int = 2                    # proxy-wasm levels: trace 0 .. critical 5
    generate_request_id: bool = True      # as Envoy's HTTP connection manager


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_log_sink(stream: TextIO) -> Callable[[Any], None]:
    """Print a plugin's proxy_log line: time, level, plugin name, context id, message."""

    def sink(record: Any) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        level = LOG_LEVELS[record.level] if 0 <= record.level < len(LOG_LEVELS) else str(record.level)
        plugin = record.plugin or "-"
        stream.write(f"{stamp} [{level}] [{plugin}] [ctx {record.context_id}] {record.message}\n")
        stream.flush()

    return sink


class RunServer:
    """Owns the loop and everything on it for one `wasmetool run`."""

    def __init__(self, options: RunOptions, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.loop = new_event_loop()
        self.stats = ServerStats()
        self.host: Any = None
        self.closers: list[Callable[[], None]] = []
        self.ready = False
        self.addresses: dict[str, str] = {}
        self.waker: asyncio.TimerHandle | None = None
        self.previous_handlers: dict[int, Any] = {}

    # ----------------------------------------------------------------- setup
    def _pools(self) -> dict[str, Any]:
        from wasmetool.proxy.upstream import UpstreamPool

        pools: dict[str, Any] = {}
        for cluster in self.options.clusters:
            target = parse_http_url(cluster.url, f"cluster {cluster.name}")
            pools[cluster.name] = UpstreamPool(self.loop, target, self.stats, cluster.name)
        return pools

    def _start_host(self, dispatcher: Any) -> None:
        if not self.options.plugins:
            return
        from wasmetool.host.runtime import Host

        self.host = Host(self.options.plugins, dispatcher, limits=self.options.limits,
                         log_sink=make_log_sink(self.err), log_level=self.options.log_level)
        self.host.start()
        self.closers.append(self.host.shutdown)

    async def _bind(self, server: Any, address: tuple[str, int], what: str) -> tuple[str, int]:
        host, port = address
        try:
            return await server.listen(host, port)
        except OSError as exc:
            where = format_address(host, port)
            if exc.errno == errno.EADDRINUSE:
                raise WasmetoolError(f"{where} is already in use ({os.strerror(exc.errno)})",
                                     f"stop the other process or choose another port with {what}"
                                     ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise WasmetoolError(f"cannot listen on {where} ({os.strerror(exc.errno)})",
                                     f"choose another address with {what}") from None
            raise WasmetoolError(f"cannot listen on {where}: {exc}") from None

    async def _setup(self) -> None:
        from wasmetool.proxy.dispatcher import AsyncioDispatcher

        options = self.options
        pools = self._pools()
        self.closers.extend(pool.close for pool in pools.values())
        dispatcher = AsyncioDispatcher(self.loop, pools, self.stats)
        self.closers.append(dispatcher.close)
        main = await self._listen_main()
        admin = await self._listen_admin()
        self._start_host(dispatcher)  # compile + start VMs (singletons start here)
        self._install_filter_chains()
        # Start-up objects (modules, VMs, code) never die: keep them out of the cyclic
        # collector's sight, so its rare full passes stay short (tail latency).
        gc.collect()
        gc.freeze()
        self.ready = True
        scheme = "tcp" if options.tcp else "http"
        upstream = self.upstream_label
        line = f"listening on {scheme}://{main} (upstream: {upstream}"
        if admin:
            line += f", admin: http://{admin}"
        self.out.write(line + ")\n")
        self.out.flush()

    @property
    def upstream_label(self) -> str:
        if self.options.upstream is None and not self.options.tcp:
            return "built-in echo"
        return str(self.options.upstream)

    def _install_filter_chains(self) -> None:
        """Once the host has started: hand the listener the filter chains it will run."""
        host = self.host
        server = self.main_server
        network = host is not None and host.has_network_filters()
        if self.options.tcp:
            from wasmetool.proxy.tcp import PassthroughConnection

            server.connection_factory = host.new_connection if network else PassthroughConnection
            return
        from wasmetool.proxy.http import PassthroughStream

        if network:   # network filters in front of the HTTP proxy, as before Envoy's HCM
            server.connection_factory = host.new_connection
        if host is not None and host.has_http_filters():
            server.stream_factory = host.new_http_stream
        else:
            server.stream_factory = PassthroughStream

    async def _listen_main(self) -> str:
        options = self.options
        if options.tcp:
            from wasmetool.proxy.tcp import TcpProxyServer

            if options.upstream is None:
                raise WasmetoolError("--tcp needs an upstream",
                                     "add --upstream HOST:PORT, the TCP server to proxy to")
            target = parse_tcp_address(options.upstream, "--upstream")
            server: Any = TcpProxyServer(self.loop, _unset_factory, target, self.stats)
        else:
            from wasmetool.proxy.echo import EchoUpstream
            from wasmetool.proxy.http import HttpProxyServer
            from wasmetool.proxy.upstream import UpstreamPool

            if options.upstream is None:
                upstream: Any = EchoUpstream(self.loop, self.stats)
            else:
                target = parse_http_url(options.upstream, "--upstream")
                upstream = UpstreamPool(self.loop, target, self.stats, "upstream")
                self.closers.append(upstream.close)
            server = HttpProxyServer(self.loop, _unset_factory, upstream, self.stats)
            server.generate_request_id = options.generate_request_id
        self.main_server: Any = server
        host, port = await self._bind(server, options.listen, "--listen")
        self.closers.append(server.close)
        self.addresses["listen"] = format_address(host, port)
        return self.addresses["listen"]

    async def _listen_admin(self) -> str | None:
        from wasmetool.proxy.admin import AdminServer

        if self.options.admin is None:
            return None
        admin = AdminServer(self.loop, self.prometheus_text, lambda: self.ready)
        try:
            host, port = await self._bind(admin, self.options.admin, "--admin")
        except WasmetoolError as exc:
            if self.options.admin_explicit or "already in use" not in exc.message:
                raise
            fallback = (self.options.admin[0], 0)
            host, port = await self._bind(admin, fallback, "--admin")
            self.err.write(f"note: admin port {format_address(*self.options.admin)} is busy; "
                           f"using {format_address(host, port)}\n")
        self.closers.append(admin.close)
        self.addresses["admin"] = format_address(host, port)
        return self.addresses["admin"]

    def prometheus_text(self) -> str:
        text = self.stats.prometheus_text()
        if self.host is not None:
            text = self.host.prometheus_text().rstrip("\n") + "\n" + text
        return text

    # ----------------------------------------------------------------- run
    def run(self, on_ready: Callable[[RunServer], None] | None = None) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        stop = asyncio.Event()

        # Plain Python signal handlers plus a short wake-up timer, rather than
        # loop.add_signal_handler: uvloop drops a signal that arrives while the loop is not
        # running (e.g. between run_until_complete calls), and Ctrl-C must always work.
        def on_signal(signum: int, frame: object) -> None:
            loop.call_soon_threadsafe(stop.set)

        def wake() -> None:
            self.waker = loop.call_later(SIGNAL_POLL_S, wake)

        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous_handlers[sig] = signal.signal(sig, on_signal)
            wake()
            loop.run_until_complete(self._setup())
            if on_ready is not None:
                on_ready(self)
            loop.run_until_complete(stop.wait())
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        loop = self.loop
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
                self.err.write(f"warning: during shutdown: {exc}\n")
        self.closers = []
        if self.waker is not None:
            self.waker.cancel()
            self.waker = None
        for sig, handler in self.previous_handlers.items():
            signal.signal(sig, handler)
        self.previous_handlers = {}
        if not loop.is_closed():
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()


def _unset_factory(info: Any, callbacks: Any) -> Any:
    raise RuntimeError("connection accepted before the host was ready")

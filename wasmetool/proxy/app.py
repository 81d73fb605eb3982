"""Assemble and run the servers of `wasmetool run`: workers, listeners, upstreams, admin.

Threads as in Envoy: the main thread takes the signals and serves the admin endpoint on
an event loop of its own; each of ``--concurrency`` workers is a thread with its own
event loop, listener socket (SO_REUSEPORT when there are several, so the kernel spreads
connections over them), upstream pools, dispatcher and Host — its own VMs. Guest calls
go through ctypes and release the GIL, so a guest that runs away blocks only its
worker's loop: admin and the other workers keep serving. Shared data, shared queues and
metrics are process wide (``ProcessShared``); singletons run once, on worker 0.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from wasmetool.errors import WasmetoolError
from wasmetool.host.config import Cluster, Limits, PluginConfig
from wasmetool.host.plugin_file import parse_http_url, parse_tcp_address
from wasmetool.host.shared_state import ProcessShared
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
    concurrency: int = 1                  # worker threads, each with its own loop and VMs
    observer: Any = None                  # host.observe.CallObserver (run --trace), or None
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
    """Print a plugin's proxy_log line: time, level, plugin name, context id, message.
    Whole lines, whichever worker thread logs."""
    lock = threading.Lock()

    def sink(record: Any) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        level = LOG_LEVELS[record.level] if 0 <= record.level < len(LOG_LEVELS) else str(record.level)
        plugin = record.plugin or "-"
        line = f"{stamp} [{level}] [{plugin}] [ctx {record.context_id}] {record.message}\n"
        with lock:
            stream.write(line)
            stream.flush()

    return sink


async def bind(server: Any, address: tuple[str, int], what: str,
               reuse_port: bool = False) -> tuple[str, int]:
    """``server.listen`` with a one-line error naming the flag to change."""
    host, port = address
    try:
        if reuse_port:
            return await server.listen(host, port, reuse_port=True)
        return await server.listen(host, port)
    except OSError as exc:
        raise _bind_error(exc, host, port, what) from None


def _bind_error(exc: OSError, host: str, port: int, what: str) -> WasmetoolError:
    where = format_address(host, port)
    if exc.errno == errno.EADDRINUSE:
        return WasmetoolError(f"{where} is already in use ({os.strerror(exc.errno)})",
                              f"stop the other process or choose another port with {what}")
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
        return WasmetoolError(f"cannot listen on {where} ({os.strerror(exc.errno)})",
                              f"choose another address with {what}")
    return WasmetoolError(f"cannot listen on {where}: {exc}")


def check_port_free(address: tuple[str, int], what: str) -> None:
    """Before a group of SO_REUSEPORT listeners binds a fixed port: fail if another
    process listens there (it could otherwise share the port with us unnoticed)."""
    host, port = address
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return          # the bind itself reports a bad address
    for family, kind, proto, _name, sockaddr in infos:
        probe = socket.socket(family, kind, proto)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)
        except OSError as exc:
            raise _bind_error(exc, host, port, what) from None
        finally:
            probe.close()


class Worker:
    """One worker thread: its event loop, listener, upstream pools, dispatcher and Host."""

    def __init__(self, index: int, server: RunServer, plugins: list[PluginConfig],
                 listen: tuple[str, int], reuse_port: bool) -> None:
        self.index = index
        self.server = server
        self.options = server.options
        self.plugins = plugins
        self.listen = listen
        self.reuse_port = reuse_port
        self.stats = ServerStats()
        self.host: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.main_server: Any = None
        self.address: tuple[str, int] | None = None
        self.closers: list[Callable[[], None]] = []
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.error: BaseException | None = None

    # ----------------------------------------------------------------- thread
    def start(self) -> None:
        """Start the thread; returns at once (see :attr:`started` and :attr:`error`)."""
        self.thread = threading.Thread(target=self._main, name=f"wasmetool-worker-{self.index}",
                                       daemon=True)
        self.thread.start()

    def _main(self) -> None:
        loop = self.loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            self.error = exc
            self._close()
            self.started.set()
            return
        self.started.set()
        try:
            loop.run_forever()
        finally:
            self._close()

    def stop(self, timeout: float) -> None:
        """From the main thread: stop the loop, close everything, wait for the thread (a
        guest call in progress ends within its call time limit)."""
        loop, thread = self.loop, self.thread
        if thread is None or not thread.is_alive():
            return
        if loop is not None:
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:       # already closed
                pass
        thread.join(timeout)

    def _close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
                self.server.err.write(f"warning: during shutdown: {exc}\n")
        self.closers = []
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    # ----------------------------------------------------------------- setup
    async def _setup(self) -> None:
        from wasmetool.proxy.dispatcher import AsyncioDispatcher

        pools = self._pools()
        self.closers.extend(pool.close for pool in pools.values())
        dispatcher = AsyncioDispatcher(self.loop, pools, self.stats)
        self.closers.append(dispatcher.close)
        await self._listen_main()
        self._start_host(dispatcher)  # compile + start VMs (singletons start here)
        self._install_filter_chains()

    def _pools(self) -> dict[str, Any]:
        from wasmetool.proxy.upstream import UpstreamPool

        pools: dict[str, Any] = {}
        for cluster in self.options.clusters:
            target = parse_http_url(cluster.url, f"cluster {cluster.name}")
            pools[cluster.name] = UpstreamPool(self.loop, target, self.stats, cluster.name)
        return pools

    def _start_host(self, dispatcher: Any) -> None:
        if not self.plugins:
            return
        from wasmetool.host.runtime import Host

        server = self.server
        self.host = Host(self.plugins, dispatcher, limits=self.options.limits,
                         log_sink=server.log_sink, log_level=self.options.log_level,
                         shared=server.shared, observer=self.options.observer)
        self.host.start()
        self.closers.append(self.host.shutdown)

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

    async def _listen_main(self) -> None:
        options = self.options
        if options.tcp:
            from wasmetool.proxy.tcp import TcpProxyServer

            target = parse_tcp_address(str(options.upstream), "--upstream")
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
            server.generate_request_id = self.options.generate_request_id
        self.main_server = server
        self.address = await bind(server, self.listen, "--listen", self.reuse_port)
        self.closers.append(server.close)


class RunServer:
    """Owns one `wasmetool run`: the main (admin) loop and the worker threads."""

    def __init__(self, options: RunOptions, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.loop = new_event_loop()           # the main thread's: admin, signals
        self.shared = ProcessShared(threads=options.concurrency > 1)
        self.log_sink = make_log_sink(err)
        self.workers: list[Worker] = []
        self.closers: list[Callable[[], None]] = []
        self.ready = False
        self.addresses: dict[str, str] = {}
        self.waker: asyncio.TimerHandle | None = None
        self.previous_handlers: dict[int, Any] = {}

    @property
    def host(self) -> Any:
        """Worker 0's host (every host shares the process-wide state), or None."""
        return self.workers[0].host if self.workers else None

    # ----------------------------------------------------------------- setup
    async def _setup(self) -> None:
        options = self.options
        if options.concurrency < 1:
            raise WasmetoolError("--concurrency must be at least 1")
        if options.tcp and options.upstream is None:
            raise WasmetoolError("--tcp needs an upstream",
                                 "add --upstream HOST:PORT, the TCP server to proxy to")
        if options.tcp:
            parse_tcp_address(options.upstream or "", "--upstream")
        admin = await self._listen_admin()      # answers /ready 503 while workers start
        several = options.concurrency > 1
        if several:
            check_port_free(options.listen, "--listen")
        listen = options.listen
        per_worker = [p for p in options.plugins if p.kind != "singleton"]
        for index in range(options.concurrency):
            worker = Worker(index, self, options.plugins if index == 0 else per_worker,
                            listen, several)
            self.workers.append(worker)
            worker.start()
            while not worker.started.wait(0):
                await asyncio.sleep(0.005)
            if worker.error is not None:
                raise worker.error
            if index == 0 and worker.address is not None:
                listen = (listen[0], worker.address[1])    # port 0: the others join it
        main = format_address(*self.workers[0].address)  # type: ignore[misc]
        self.addresses["listen"] = main
        # Start-up objects (modules, VMs, code) never die: keep them out of the cyclic
        # collector's sight, so its rare full passes stay short (tail latency).
        gc.collect()
        gc.freeze()
        self.ready = True
        scheme = "tcp" if options.tcp else "http"
        line = f"listening on {scheme}://{main} (upstream: {self.upstream_label}"
        if several:
            line += f", {options.concurrency} workers"
        if admin:
            line += f", admin: http://{admin}"
        self.out.write(line + ")\n")
        self.out.flush()

    @property
    def upstream_label(self) -> str:
        if self.options.upstream is None and not self.options.tcp:
            return "built-in echo"
        return str(self.options.upstream)

    async def _listen_admin(self) -> str | None:
        from wasmetool.proxy.admin import AdminServer

        if self.options.admin is None:
            return None
        admin = AdminServer(self.loop, self.prometheus_text, lambda: self.ready)
        try:
            host, port = await bind(admin, self.options.admin, "--admin")
        except WasmetoolError as exc:
            if self.options.admin_explicit or "already in use" not in exc.message:
                raise
            fallback = (self.options.admin[0], 0)
            host, port = await bind(admin, fallback, "--admin")
            self.err.write(f"note: admin port {format_address(*self.options.admin)} is busy; "
                           f"using {format_address(host, port)}\n")
        self.closers.append(admin.close)
        self.addresses["admin"] = format_address(host, port)
        return self.addresses["admin"]

    def prometheus_text(self) -> str:
        """Every worker's counters summed, and the process-wide plugin metrics."""
        text = ServerStats.total([w.stats for w in self.workers]).prometheus_text()
        host = self.host
        if host is not None:
            text = host.prometheus_text().rstrip("\n") + "\n" + text
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
        grace = self.options.limits.call_timeout_ms / 1000.0 + 5.0
        for worker in reversed(self.workers):
            worker.stop(grace)
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

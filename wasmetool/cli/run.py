"""`wasmetool run`: run proxy-wasm filters locally in an HTTP (or TCP) proxy, no Envoy needed."""

from __future__ import annotations

from pathlib import Path

import typer

from wasmetool.errors import WasmetoolError

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9901"
LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
MAX_CONCURRENCY = 256


def parse_address(value: str, flag: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, :PORT or PORT (host defaults to 127.0.0.1)."""
    text = value.strip()
    host = "127.0.0.1"
    port_text = text
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise WasmetoolError(f"{flag} {value!r}: expected HOST:PORT", "e.g. 127.0.0.1:8080")
        host, port_text = text[1:end], text[end + 2:]
    elif ":" in text:
        host_part, port_text = text.rsplit(":", 1)
        host = host_part or host
    try:
        port = int(port_text)
    except ValueError:
        raise WasmetoolError(f"{flag} {value!r}: expected HOST:PORT",
                             "e.g. 127.0.0.1:8080") from None
    if not 0 <= port <= 65535:
        raise WasmetoolError(f"{flag} {value!r}: port must be 0-65535")
    return host, port


def load_module(ref: str) -> tuple[bytes, str, str, list[str]]:
    """A .wasm file (an existing path wins) or a local-store ref → (bytes, source, name, root ids)."""
    path = Path(ref).expanduser()
    if path.is_file():
        try:
            return path.read_bytes(), str(path), path.stem, []
        except OSError as exc:
            raise WasmetoolError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix == ".wasm" or path.exists():
        raise WasmetoolError(f"{ref} is not a file" if path.exists() else f"{ref} does not exist",
                             "give a .wasm file or a ref from 'wasmetool list'")
    from wasmetool.store import Store

    image = Store.open().resolve(ref)
    config = image.runtime_config
    name = image.ref.repository.rsplit("/", 1)[-1]
    return image.wasm_bytes(), str(image.ref), name, list(config.root_ids or [])


def _trace_printer() -> object:
    """The tracer of `run --trace`: one stderr line per callback and host call."""
    import sys

    from wasmetool.testing.trace import Tracer, print_sink

    def write(line: str) -> None:
        sys.stderr.write(f"trace {line}\n")
        sys.stderr.flush()

    return Tracer(keep=0, sink=print_sink(write))


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=False)
    def run(
        ref: str | None = typer.Argument(None, metavar="REF|FILE.wasm",
                                         help="A filter: a .wasm file or a local store ref."),
        listen: str = typer.Option(DEFAULT_LISTEN, "--listen", "-l",
                                   help="Address to serve on (HOST:PORT; port 0 = any free port)."),
        upstream: str | None = typer.Option(
            None, "--upstream", "-u",
            help="Where requests go (http://HOST:PORT; HOST:PORT with --tcp). "
                 "Default: the built-in echo upstream, which answers with the request as JSON."),
        cluster: list[str] = typer.Option(
            [], "--cluster", help="A named cluster for proxy_http_call and gRPC calls (h2c): NAME=URL "
                 "(repeatable)."),
        config: str | None = typer.Option(
            None, "--config", "-c", help="Plugin configuration: a string or @file."),
        root_id: str | None = typer.Option(
            None, "--root-id",
            help="Root id (default: the image's first root id, else empty)."),
        vm_config: str | None = typer.Option(
            None, "--vm-config", help="VM configuration: a string or @file."),
        env: list[str] = typer.Option([], "--env", "-e", help="WASI environment KEY=VALUE (repeatable)."),
        name: str | None = typer.Option(None, "--name", help="Plugin name (default: the module's name)."),
        fail_open: bool = typer.Option(False, "--fail-open",
                                       help="If the plugin fails, let requests bypass it."),
        fail_reload: bool = typer.Option(False, "--fail-reload",
                                         help="If the plugin fails, start a fresh VM for later requests."),
        plugins: Path | None = typer.Option(
            None, "--plugins", "-p",
            help="A plugin file (YAML/JSON/TOML, Envoy-shaped) with several filters, clusters, "
                 "singletons."),
        tcp: bool = typer.Option(False, "--tcp", help="TCP proxy for network filters (needs --upstream HOST:PORT)."),
        admin: str = typer.Option(DEFAULT_ADMIN, "--admin",
                                  help="Admin endpoint (/stats/prometheus, /ready); 'off' disables. "
                                       "If the default port is busy a free one is used."),
        log_level: str = typer.Option("info", "--log-level",
                                      help="Plugin log level: trace, debug, info, warn, error, critical."),
        call_timeout_ms: int = typer.Option(300, "--call-timeout-ms",
                                            help="Time limit of each call into the plugin."),
        memory_limit_mb: int = typer.Option(256, "--memory-limit-mb",
                                            help="Memory cap of each VM, in MiB."),
        trace: bool = typer.Option(False, "--trace", "-v",
                                   help="Print every callback into the plugin and every host "
                                        "call it makes, with decoded arguments, on stderr."),
        concurrency: int = typer.Option(
            1, "--concurrency",
            help="Worker threads, as Envoy's --concurrency: each has its own event loop, "
                 "listener (SO_REUSEPORT) and VMs, so a stuck filter stalls only its worker; "
                 "shared data, queues and metrics stay process wide. "
                 "Example: --concurrency 4"),
        request_id: bool | None = typer.Option(
            None, "--request-id/--no-request-id",
            help="Give requests without x-request-id a UUID one, as Envoy does by default "
                 "(plugin file: generate_request_id). Default: on."),
    ) -> None:
        """Run filters locally: an HTTP/1.1 proxy (or TCP proxy) with the plugin chain in it.

        Prints one line with the listening address once ready; Ctrl-C stops it.

        Example: wasmetool run me/filter:v1 --config 'hi there'   # curl -i localhost:8080 shows hello: hi there

        Example: wasmetool run filter.wasm --trace   # each callback and host call on stderr
        """
        from wasmetool.host.config import Limits
        from wasmetool.host.plugin_file import (
            RunSetup,
            load_plugin_file,
            parse_cluster_flag,
            parse_env_flags,
            plugin_from_flags,
            read_flag_value,
        )
        from wasmetool.proxy.app import RunOptions, RunServer

        if log_level.lower() not in LEVELS:
            raise WasmetoolError(f"--log-level {log_level!r} is not a level",
                                 f"use one of: {', '.join(LEVELS)}")
        if fail_open and fail_reload:
            raise WasmetoolError("--fail-open and --fail-reload exclude each other",
                                 "choose one failure policy")
        if call_timeout_ms <= 0:
            raise WasmetoolError("--call-timeout-ms must be positive")
        if memory_limit_mb <= 0:
            raise WasmetoolError("--memory-limit-mb must be positive")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise WasmetoolError(f"--concurrency {concurrency} is out of range",
                                 f"give 1 to {MAX_CONCURRENCY} worker threads")
        if ref is None and plugins is None:
            raise WasmetoolError("no filter given",
                                 "give a .wasm file or store ref, or --plugins FILE")
        if ref is None:
            module_flags = [flag for flag, value in (
                ("--config", config), ("--root-id", root_id), ("--vm-config", vm_config),
                ("--name", name)) if value is not None]
            module_flags += ["--env"] if env else []
            module_flags += ["--fail-open"] if fail_open else []
            module_flags += ["--fail-reload"] if fail_reload else []
            if module_flags:
                raise WasmetoolError(f"{', '.join(module_flags)} configure the module given on "
                                     "the command line, and there is none",
                                     "set these in the plugin file instead")

        listen_address = parse_address(listen, "--listen")
        admin_address = None if admin.lower() in ("off", "none", "") else parse_address(
            admin, "--admin")
        setup = load_plugin_file(plugins) if plugins is not None else RunSetup()
        if ref is not None:
            code, source, default_name, root_ids = load_module(ref)
            policy = "fail_open" if fail_open else "fail_reload" if fail_reload else "fail_closed"
            setup.plugins.append(plugin_from_flags(
                code, source,
                name=name if name is not None else default_name,
                root_id=root_id if root_id is not None else (root_ids[0] if root_ids else ""),
                configuration=read_flag_value(config, "--config"),
                vm_configuration=read_flag_value(vm_config, "--vm-config"),
                env=parse_env_flags(env),
                policy=policy,
                kind="network" if tcp else "http",
            ))
        if tcp and any(p.kind == "http" for p in setup.plugins):
            names = ", ".join(p.name or "(unnamed)" for p in setup.plugins if p.kind == "http")
            raise WasmetoolError(f"--tcp runs network filters only, but HTTP filters are "
                                 f"configured: {names}",
                                 "drop --tcp to run them in the HTTP proxy, or list the "
                                 "plugins under network_filters")
        clusters = {c.name: c for c in setup.clusters}
        for value in cluster:
            parsed = parse_cluster_flag(value)
            clusters[parsed.name] = parsed
        options = RunOptions(
            plugins=setup.plugins,
            listen=listen_address,
            upstream=upstream if upstream is not None else setup.upstream,
            clusters=list(clusters.values()),
            tcp=tcp,
            admin=admin_address,
            admin_explicit=admin != DEFAULT_ADMIN,
            limits=Limits(call_timeout_ms=call_timeout_ms,
                          memory_limit_bytes=memory_limit_mb * 1024 * 1024),
            log_level=LEVELS.index(log_level.lower()),
            observer=_trace_printer() if trace else None,
            concurrency=concurrency,
            generate_request_id=request_id if request_id is not None else
            setup.generate_request_id if setup.generate_request_id is not None else True,
        )
        RunServer(options).run()

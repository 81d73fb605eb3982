"""Run a :class:`~wasmetool.builder.base.ContainerSpec` on a Docker engine (docker SDK).

The engine is found as the Docker CLI finds it: ``DOCKER_HOST``, else the
current context (``DOCKER_CONTEXT`` or ``currentContext`` in
~/.docker/config.json), else the default socket. Without a reachable engine
every entry point raises one clear :class:`WasmetoolError` naming the address
it tried - never a stack trace from the SDK.

A build container runs with the project mounted read-only, an empty output
directory and the language's cache directories (under wasmetool's cache
directory) mounted read-write, as the caller's uid:gid (nothing root-owned lands
on the host), with host networking (package registries are reached the way the
host reaches them). Its output is streamed as it is printed. Ctrl-C kills and
removes the container before the interrupt goes on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wasmetool import paths
from wasmetool.builder.base import BuildFailed, ContainerSpec
from wasmetool.errors import WasmetoolError

DEFAULT_SOCKET = "/var/run/docker.sock"
BUILD_LABEL = "org.wasmetool.build"


def _context_host() -> tuple[str | None, Any]:
    """(host, tls config) of the Docker CLI's current context, if it names one."""
    try:
        from docker.context import ContextAPI

        name = os.environ.get("DOCKER_CONTEXT")
        context = ContextAPI.get_context(name)
    except Exception:  # a broken CLI config must not hide the default socket  # noqa: BLE001
        return None, None
    if context is None or not getattr(context, "Host", None):
        return None, None
    return context.Host, getattr(context, "TLSConfig", None)


def engine_address() -> str:
    """Where the engine is looked for (for messages and `toolchain list`)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    host, _ = _context_host()
    return host or f"unix://{DEFAULT_SOCKET}"


def no_engine_error(detail: str = "") -> WasmetoolError:
    reason = f" ({detail})" if detail else ""
    return WasmetoolError(
        f"no Docker engine answers at {engine_address()}{reason}",
        "start Docker or set DOCKER_HOST; or install the local toolchain and use "
        "--toolchain local",
    )


def engine_may_exist() -> bool:
    """Cheap pre-check without connecting: is there anything to connect to?"""
    address = engine_address()
    if address.startswith("unix://"):
        return Path(address.removeprefix("unix://")).exists()
    return True


def docker_client() -> Any:
    """A connected docker SDK client, or :func:`no_engine_error`."""
    address = engine_address()
    if not engine_may_exist():
        raise no_engine_error("no such socket")
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - docker is a hard dependency
        raise WasmetoolError("the docker Python package is missing",
                             "reinstall wasmetool") from exc
    try:
        if os.environ.get("DOCKER_HOST"):
            client = docker.from_env(timeout=60)
        else:
            _, tls = _context_host()
            client = docker.DockerClient(base_url=address, tls=tls or False, timeout=60)
        client.ping()
    except DockerException as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise no_engine_error(first[:200]) from None
    except Exception as exc:  # e.g. a malformed DOCKER_HOST  # noqa: BLE001
        raise no_engine_error(f"{type(exc).__name__}: {exc}"[:200]) from None
    return client


def engine_available() -> bool:
    try:
        docker_client()
    except WasmetoolError:
        return False
    return True


def cache_mount(*parts: str) -> str:
    """A host directory for a container-side cache (cargo home, Go module cache, npm)."""
    directory = paths.cache_dir() / "container" / Path(*parts)
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory.resolve())


CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
              "/etc/ssl/cert.pem")
CONTAINER_CA = "/etc/wasmetool/host-ca.crt"


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine trusts (``SSL_CERT_FILE``, else the system one).

    Build containers get it, so downloads (crates, npm packages, Go modules) work
    behind the same TLS-inspecting proxies the host works behind.
    """
    for candidate in (os.environ.get("SSL_CERT_FILE"), *CA_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def ca_mount_and_env() -> tuple[list[tuple[str, str, bool]], dict[str, str]]:
    bundle = host_ca_bundle()
    if bundle is None:
        return [], {}
    env = {"SSL_CERT_FILE": CONTAINER_CA, "CARGO_HTTP_CAINFO": CONTAINER_CA,
           "NODE_EXTRA_CA_CERTS": CONTAINER_CA, "npm_config_cafile": CONTAINER_CA}
    return [(str(bundle.resolve()), CONTAINER_CA, True)], env


def docker_volumes(spec: ContainerSpec) -> dict[str, dict[str, str]]:
    """The SDK's ``volumes=`` argument (bind mounts of host directories)."""
    return {source: {"bind": target, "mode": "ro" if read_only else "rw"}
            for source, target, read_only in spec.mounts}


def run_container(spec: ContainerSpec, runner: Any, client: Any | None = None) -> None:
    """Run ``spec`` to completion, streaming its output through ``runner.write``."""
    from docker.errors import APIError, DockerException, ImageNotFound

    client = client or docker_client()
    labels = {BUILD_LABEL: "1", **spec.labels}
    ca_mounts, ca_env = ca_mount_and_env()
    env = {"HOME": "/tmp", **ca_env, **spec.env}
    volumes = docker_volumes(spec)
    volumes.update({source: {"bind": target, "mode": "ro"} for source, target, _ in ca_mounts})
    try:
        container = client.containers.create(
            spec.image, spec.command, working_dir=spec.workdir, environment=env,
            volumes=volumes, user=spec.user or "", labels=labels,
            network_mode="host", detach=True, init=True,
        )
    except ImageNotFound:
        raise WasmetoolError(f"the toolchain image {spec.image} is missing",
                             "build it with: wasmetool toolchain build "
                             + spec.labels.get("org.wasmetool.builder", "LANGUAGE")) from None
    except (APIError, DockerException) as exc:
        raise WasmetoolError(f"Docker could not create the build container from {spec.image}: "
                             f"{' '.join(str(exc).split())[:300]}",
                             "check the engine") from None
    status = 1
    try:
        container.start()
        for chunk in container.logs(stream=True, follow=True):
            runner.write(chunk.decode("utf-8", errors="replace"))
        status = container.wait().get("StatusCode", 1)
    except (APIError, DockerException) as exc:
        raise WasmetoolError(f"the build container failed to run: "
                             f"{' '.join(str(exc).split())[:300]}") from None
    finally:
        # Also on Ctrl-C: kill the compiler with its container, leave nothing behind.
        try:
            container.remove(force=True)
        except DockerException:
            pass
    if status != 0:
        raise BuildFailed(f"the build in {spec.image} exited with status {status}",
                          "its messages are shown above")

"""Run a :class:`~wasmetool.builder.base.ContainerSpec` on a Docker engine (docker SDK).

Needs a reachable Docker engine (``DOCKER_HOST``, or the local socket). Without
one, every entry point raises one clear :class:`WasmetoolError` - never a stack
trace from the SDK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wasmetool.builder.base import BuildFailed, ContainerSpec
from wasmetool.builder.runner import SubprocessRunner
from wasmetool.errors import WasmetoolError

DEFAULT_SOCKET = "/var/run/docker.sock"


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def no_engine_error(detail: str = "") -> WasmetoolError:
    reason = f" ({detail})" if detail else ""
    return WasmetoolError(
        f"no Docker engine answers at {engine_address()}{reason}",
        "start Docker (or set DOCKER_HOST), or install the local toolchain and use "
        "--toolchain local",
    )


def engine_may_exist() -> bool:
    """Cheap pre-check without importing the SDK: is there anything to connect to?"""
    if os.environ.get("DOCKER_HOST"):
        return True
    return Path(DEFAULT_SOCKET).exists()


def docker_client() -> Any:
    """A connected docker SDK client, or :func:`no_engine_error`."""
    if not engine_may_exist():
        raise no_engine_error("no socket")
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - docker is a hard dependency
        raise WasmetoolError("the docker Python package is missing",
                             "reinstall wasmetool") from exc
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise no_engine_error(first[:200]) from None
    return client


def engine_available() -> bool:
    try:
        docker_client()
    except WasmetoolError:
        return False
    return True


def docker_volumes(spec: ContainerSpec) -> dict[str, dict[str, str]]:
    """The SDK's ``volumes=`` argument: bind mounts and named (cache) volumes."""
    return {source: {"bind": target, "mode": "ro" if read_only else "rw"}
            for source, target, read_only in spec.mounts}


def run_container(spec: ContainerSpec, runner: SubprocessRunner) -> None:
    """Run ``spec`` to completion, streaming its output through ``runner``."""
    from docker.errors import APIError, DockerException, ImageNotFound

    client = docker_client()
    try:
        try:
            client.images.get(spec.image)
        except ImageNotFound:
            runner.write(f"pulling {spec.image} ...\n")
            client.images.pull(spec.image)
        container = client.containers.create(
            spec.image, spec.command, working_dir=spec.workdir, environment=spec.env,
            volumes=docker_volumes(spec), user=spec.user or "", labels=spec.labels,
            detach=True,
        )
    except (APIError, DockerException) as exc:
        raise WasmetoolError(f"Docker could not prepare {spec.image}: {exc}",
                             "check the engine and your network") from None
    try:
        container.start()
        for chunk in container.logs(stream=True, follow=True):
            runner.write(chunk.decode("utf-8", errors="replace"))
        status = container.wait().get("StatusCode", 1)
    except (APIError, DockerException) as exc:
        raise WasmetoolError(f"the build container failed to run: {exc}") from None
    finally:
        try:
            container.remove(force=True)
        except DockerException:
            pass
    if status != 0:
        raise BuildFailed(f"the build in {spec.image} exited with status {status}",
                          "its messages are shown above")

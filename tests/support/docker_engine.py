"""A real Docker engine for tests: Debian's ``dockerd`` on a private socket.

Route (see /work/shared/reference/container_route.md): ``dockerd`` with overlay2
storage where it works, else vfs, no iptables and no bridge, its data root under the CI cache so built
images survive between runs; a Debian base image made with ``mmdebstrap``
(cached as a tar) and imported; wasmetool's toolchain images built FROM it with
``wasmetool toolchain build`` (the command a user runs).

Cache layout (``WASMETOOL_CI_CACHE``, default ~/.cache/wasmetool-ci):

    base/<suite>-minbase-<BASE_VERSION>.tar      the mmdebstrap root filesystem
    docker-<dockerd version>-<driver>/data       the engine's data root (images)
    docker.lock                                  one engine per data root at a time
    container-caches/                            the build containers' cargo/Go/npm caches

A second run finds the base image and the toolchain images in the data root
and builds nothing. dockerd is a child of the test process, stopped by its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_VERSION = "1"  # bump to rebuild the cached base tar
DOCKERD = shutil.which("dockerd") or "/usr/bin/dockerd"
MMDEBSTRAP = shutil.which("mmdebstrap") or "/usr/bin/mmdebstrap"
DEBIAN_MIRROR = os.environ.get("WASMETOOL_CI_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("WASMETOOL_CI_SECURITY_MIRROR",
                                 "http://deb.debian.org/debian-security")


def ci_cache() -> Path:
    return Path(os.environ.get("WASMETOOL_CI_CACHE") or Path.home() / ".cache" / "wasmetool-ci")


def host_suite() -> str:
    """The host's Debian codename (bookworm): the base image uses the same release."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    return "bookworm"


def base_image_name() -> str:
    return f"wasmetool-ci/debian:{host_suite()}-minbase-{BASE_VERSION}"


@dataclass
class Engine:
    host: str          # unix:///.../docker.sock, for DOCKER_HOST
    client: Any        # a docker SDK client
    base_image: str    # the imported Debian base, for `toolchain build --base`
    pid: int


def dockerd_version() -> str:
    out = subprocess.run([DOCKERD, "--version"], capture_output=True, text=True, check=True).stdout
    # "Docker version 20.10.24+dfsg1, build 5d6db84"
    return out.split()[2].rstrip(",").split("+")[0]


def _wait_for_engine(host: str, process: subprocess.Popen[bytes], log: Path,
                     timeout: float = 90) -> Any:
    import docker
    from docker.errors import DockerException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dockerd exited with {process.returncode}:\n"
                               + log.read_text(errors="replace")[-3000:])
        with contextlib.suppress(DockerException):
            client = docker.DockerClient(base_url=host, timeout=600)
            client.ping()
            return client
        time.sleep(0.5)
    raise RuntimeError("dockerd did not answer within 90 s:\n" + log.read_text(errors="replace")[-3000:])


def ensure_base_image(client: Any) -> str:
    """Import the cached mmdebstrap tar (making it first if needed); return the image name."""
    from docker.errors import ImageNotFound

    name = base_image_name()
    try:
        client.images.get(name)
        return name
    except ImageNotFound:
        pass
    suite = host_suite()
    tar = ci_cache() / "base" / f"{suite}-minbase-{BASE_VERSION}.tar"
    if not tar.is_file():
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_suffix(".partial")
        sources = [f"deb {DEBIAN_MIRROR} {suite} main",
                   f"deb {DEBIAN_MIRROR} {suite}-updates main",
                   f"deb {SECURITY_MIRROR} {suite}-security main"]
        subprocess.run([MMDEBSTRAP, "--variant=minbase", "--quiet", suite, str(partial),
                        *sources], check=True, timeout=900)
        partial.rename(tar)
    repository, tag = name.rsplit(":", 1)
    client.api.import_image_from_file(str(tar), repository=repository, tag=tag)
    return name


STORAGE_DRIVERS = ("overlay2", "vfs")  # overlay2 where the kernel and filesystem allow it


def _start_dockerd(driver: str, data_root: Path, run_dir: Path
                   ) -> tuple[subprocess.Popen[bytes], str, Any]:
    log = run_dir / f"dockerd-{driver}.log"
    host = f"unix://{run_dir}/docker.sock"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [DOCKERD, "--iptables=false", "--ip6tables=false", "--bridge=none",
             f"--storage-driver={driver}", "--data-root", str(data_root),
             "--exec-root", str(run_dir / "exec"), "--pidfile", str(run_dir / "pid"),
             "-H", host],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        client = _wait_for_engine(host, process, log)
        if driver != "vfs":  # the driver may start and still fail to mount a layer
            client.containers.run(ensure_base_image(client), ["true"], remove=True,
                                  network_mode="none")
    except Exception:
        _stop(process)
        raise
    return process, host, client


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def docker_engine() -> Iterator[Engine]:
    """Start a private dockerd (one at a time per data root), yield it, stop it.

    overlay2 is tried first (a container starts in under a second); where it
    does not work, vfs (every container copies its whole image: ~15 s for a
    400 MB toolchain image on a loaded 2-core machine).
    """
    if os.geteuid() != 0:
        raise RuntimeError("the Docker engine tests start dockerd and need root "
                           "(run the suite as root, as CI does)")
    cache = ci_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "docker.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another suite using this data root waits
        # Short path: a unix socket path is limited to ~100 bytes.
        run_dir = Path(tempfile.mkdtemp(prefix="wtdock-", dir="/tmp"))
        try:
            failures = []
            for driver in STORAGE_DRIVERS:
                data_root = cache / f"docker-{dockerd_version()}-{driver}" / "data"
                data_root.mkdir(parents=True, exist_ok=True)
                try:
                    process, host, client = _start_dockerd(driver, data_root, run_dir)
                    break
                except Exception as exc:  # noqa: BLE001 - try the next driver
                    failures.append(f"{driver}: {exc}")
            else:
                raise RuntimeError("dockerd did not start:\n" + "\n".join(failures))
            try:
                yield Engine(host, client, ensure_base_image(client), process.pid)
            finally:
                client.close()
                _stop(process)
        finally:
            for netns in (run_dir / "exec" / "netns").glob("*"):  # dockerd leaves it mounted
                subprocess.run(["umount", str(netns)], capture_output=True, check=False)
            shutil.rmtree(run_dir, ignore_errors=True)
            if run_dir.exists():  # containerd may still be leaving
                time.sleep(2)
                shutil.rmtree(run_dir, ignore_errors=True)
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

"""Registry credentials: where they are kept and where they are looked up.

Saved by ``wasmetool login``:
  1. the system keyring (Secret Service, macOS Keychain, Windows Credential
     Locker) through the ``keyring`` package, when a real one is available;
  2. otherwise a 0600 JSON file in ``paths.config_dir()`` — with a warning.
     keyrings.alt's file backends do not count as a keyring: they are plaintext
     (or prompt for a master password), live outside WASMETOOL_HOME and pick
     their own file mode, so we would rather own the fallback file ourselves.

Looked up for push/pull (first hit wins): explicit ``-u/-p``, our saved
credentials, then Docker's ``config.json`` ``auths`` (``$DOCKER_CONFIG`` or
``~/.docker``) and its credential helpers — read, never written.

A :class:`Credentials` value never shows its password in ``repr``/``str``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmetool import paths
from wasmetool.errors import WasmetoolError

log = logging.getLogger(__name__)

KEYRING_SERVICE = "wasmetool"
CREDENTIALS_FILE_NAME = "credentials.json"
DOCKER_HUB_KEY = "docker.io"
_DOCKER_HUB_ALIASES = {
    "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
}
_DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
IDENTITY_TOKEN_USER = "<token>"  # Docker's marker for an OAuth2 refresh token as password


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"

    __str__ = __repr__


def server_key(server: str) -> str:
    """The canonical name of a registry: host[:port], Docker Hub spelled ``docker.io``."""
    text = server.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].lower()
    if not text:
        raise WasmetoolError(f"invalid registry server '{server}'", "give a host, e.g. ghcr.io or localhost:5000")
    return DOCKER_HUB_KEY if text in _DOCKER_HUB_ALIASES else text


# ----------------------------------------------------------------- the keyring


def _keyring_disabled() -> bool:
    return os.environ.get("WASMETOOL_KEYRING", "").lower() in {"0", "no", "off", "false", "file"}


def _is_real_backend(backend: Any) -> bool:
    module = type(backend).__module__
    if module.startswith("keyrings.alt") or module in {
        "keyring.backends.fail", "keyring.backends.null", "keyring.backends.chainer",
    }:
        return False
    try:
        return float(backend.priority) >= 1
    except Exception:  # a backend may raise from priority when it is unusable
        return False


def system_keyring() -> Any | None:
    """The best real keyring backend, or None when only fakes/plaintext ones exist."""
    if _keyring_disabled():
        return None
    try:
        import keyring
        from keyring.backends import chainer
    except ImportError:
        return None
    try:
        current = keyring.get_keyring()
    except Exception as exc:  # broken keyring config: behave as if there is none
        log.debug("keyring unavailable: %s", type(exc).__name__)
        return None
    candidates = current.backends if isinstance(current, chainer.ChainerBackend) else [current]
    real = [b for b in candidates if _is_real_backend(b)]
    if not real:
        return None
    return max(real, key=lambda b: float(b.priority))


# ------------------------------------------------------------- fallback file


def credentials_file() -> Path:
    return paths.config_dir() / CREDENTIALS_FILE_NAME


def _read_file() -> dict[str, dict[str, str]]:
    path = credentials_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise WasmetoolError(
            f"the credential file {path} is unreadable or corrupt",
            "fix or delete it, then run 'wasmetool login' again",
        ) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    return auths if isinstance(auths, dict) else {}


def _write_file(auths: dict[str, dict[str, str]]) -> Path:
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 from the start: the secret is never readable by others.
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": auths}, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------- docker config


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def _docker_keys(key: str) -> list[str]:
    if key == DOCKER_HUB_KEY:
        return [_DOCKER_HUB_CONFIG_KEY, *sorted(_DOCKER_HUB_ALIASES)]
    return [key, f"https://{key}", f"http://{key}"]


def _docker_helper(helper: str, server: str) -> Credentials | None:
    binary = shutil.which(f"docker-credential-{helper}")
    if not binary:
        log.debug("docker credential helper %s is not installed", helper)
        return None
    try:
        result = subprocess.run([binary, "get"], input=server.encode(), capture_output=True,
                                timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        data = json.loads(result.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        return None
    return Credentials(username, secret) if secret else None


def docker_credentials(server: str) -> Credentials | None:
    """Credentials Docker has for ``server`` (config.json auths or a credential helper)."""
    key = server_key(server)
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    names = _docker_keys(key)
    helpers = config.get("credHelpers") or {}
    for name in names:
        if isinstance(helpers, dict) and name in helpers:
            found = _docker_helper(str(helpers[name]), name)
            if found:
                return found
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        for stored_name, entry in auths.items():
            if server_key(stored_name) != key and stored_name not in names:
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                try:
                    decoded = base64.b64decode(entry["auth"]).decode()
                except (ValueError, UnicodeDecodeError):
                    continue
                username, _, password = decoded.partition(":")
                if username and password:
                    return Credentials(username, password)
            if entry.get("username") and entry.get("password"):
                return Credentials(str(entry["username"]), str(entry["password"]))
            if entry.get("identitytoken"):
                # Docker's convention: an identity token is sent as the password of "<token>".
                return Credentials(IDENTITY_TOKEN_USER, str(entry["identitytoken"]))
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for name in names[:1]:
            found = _docker_helper(store, name)
            if found:
                return found
    return None


# ------------------------------------------------------------------ the API


@dataclass
class SavedCredentials:
    location: str            # "keyring" or the file path
    plaintext_file: bool     # True when the fallback file was used


def save_credentials(server: str, credentials: Credentials) -> SavedCredentials:
    key = server_key(server)
    secret = json.dumps({"username": credentials.username, "password": credentials.password})
    backend = system_keyring()
    if backend is not None:
        try:
            backend.set_password(KEYRING_SERVICE, key, secret)
        except Exception as exc:
            log.debug("keyring set_password failed: %s", type(exc).__name__)
        else:
            # Drop a stale copy in the fallback file so only one place holds it.
            auths = _read_file()
            if auths.pop(key, None) is not None:
                _write_file(auths)
            return SavedCredentials(location=f"the system keyring ({type(backend).__name__})",
                                    plaintext_file=False)
    auths = _read_file()
    auths[key] = {"username": credentials.username, "password": credentials.password}
    path = _write_file(auths)
    return SavedCredentials(location=str(path), plaintext_file=True)


def saved_credentials(server: str) -> Credentials | None:
    """What ``wasmetool login`` saved for ``server`` (keyring first, then the file)."""
    key = server_key(server)
    backend = system_keyring()
    if backend is not None:
        try:
            secret = backend.get_password(KEYRING_SERVICE, key)
        except Exception as exc:
            log.debug("keyring get_password failed: %s", type(exc).__name__)
            secret = None
        if secret:
            try:
                data = json.loads(secret)
                return Credentials(str(data["username"]), str(data["password"]))
            except (ValueError, KeyError, TypeError):
                log.debug("ignoring a malformed keyring entry for %s", key)
    entry = _read_file().get(key)
    if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def delete_credentials(server: str) -> bool:
    """Forget what ``wasmetool login`` saved for ``server``; True if anything was removed."""
    key = server_key(server)
    removed = False
    backend = system_keyring()
    if backend is not None:
        try:
            if backend.get_password(KEYRING_SERVICE, key) is not None:
                backend.delete_password(KEYRING_SERVICE, key)
                removed = True
        except Exception as exc:
            log.debug("keyring delete failed: %s", type(exc).__name__)
    auths = _read_file()
    if auths.pop(key, None) is not None:
        _write_file(auths)
        removed = True
    return removed


def find_credentials(server: str) -> tuple[Credentials | None, str]:
    """Credentials to use for ``server`` and where they came from ("" if none)."""
    found = saved_credentials(server)
    if found:
        return found, "wasmetool login"
    found = docker_credentials(server)
    if found:
        return found, "docker config"
    return None, ""

"""Registry credentials: where they are kept and where they are looked up.

Saved by ``wasmetool login``, in the first of these that exists:
  1. the system keyring (Secret Service, macOS Keychain, Windows Credential
     Locker) through the ``keyring`` package;
  2. with ``WASMETOOL_KEYRING_PASSPHRASE`` set: keyrings.alt's encrypted file
     backend (PBKDF2 + AES, pycryptodomex) at ``paths.config_dir()/credentials.encrypted.cfg``,
     unlocked by that passphrase instead of a prompt;
  3. otherwise a 0600 JSON file in ``paths.config_dir()`` — plaintext, so every
     command that writes or uses it warns, naming the file and the two ways out.
     keyrings.alt's plaintext backend is never used: it lives outside
     WASMETOOL_HOME and picks its own file mode.

Looked up for push/pull (first hit wins): explicit ``-u/-p``, our saved
credentials (keyring, encrypted file, plaintext file), then Docker's
``config.json`` ``auths`` (``$DOCKER_CONFIG`` or ``~/.docker``) and its
credential helpers — read, never written. ``logout`` removes what login saved
from every one of our places.

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
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise WasmetoolError(
            f"cannot read the credential file {path}: {exc.strerror or type(exc).__name__}",
            "check its permissions, or point WASMETOOL_HOME somewhere usable",
        ) from None
    except ValueError:
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


# ------------------------------------------------------ the encrypted file

PASSPHRASE_ENV = "WASMETOOL_KEYRING_PASSPHRASE"
ENCRYPTED_FILE_NAME = "credentials.encrypted.cfg"
_REFERENCE = ("keyring-setting", "password reference", "password reference value")


def encrypted_file() -> Path:
    return paths.config_dir() / ENCRYPTED_FILE_NAME


def _encrypted_keyring(required: bool = True) -> Any | None:
    """keyrings.alt's EncryptedKeyring on our file, unlocked by $WASMETOOL_KEYRING_PASSPHRASE.

    None when the variable is unset. ``required=False`` (logout) also gives a
    backend without a passphrase: deleting an entry needs no decryption.
    """
    passphrase = os.environ.get(PASSPHRASE_ENV, "")
    if not passphrase and required:
        return None
    try:
        import Cryptodome  # noqa: F401  (keyrings.alt's cipher; checked here for a clear error)
        from keyrings.alt.file import EncryptedKeyring
    except ImportError:
        raise WasmetoolError(
            f"{PASSPHRASE_ENV} is set but the encrypted keyring needs pycryptodomex",
            "pip install pycryptodomex (./install.sh installs it)",
        ) from None

    class PassphraseKeyring(EncryptedKeyring):  # type: ignore[misc, valid-type]
        """Asks the environment, never the terminal, for the passphrase."""

        def _get_new_password(self) -> str:
            return passphrase

        def _unlock(self) -> None:
            self.keyring_key = passphrase
            try:
                matches = self.get_password(*_REFERENCE[:2]) == _REFERENCE[2]
            except Exception:  # a wrong key fails to decrypt in several ways
                matches = False
            if not matches:
                self._lock()
                raise WasmetoolError(
                    f"{PASSPHRASE_ENV} does not unlock {self.file_path}",
                    "set the passphrase it was created with, or delete the file and log in again",
                )

    backend = PassphraseKeyring()
    backend.file_path = str(encrypted_file())
    return backend


def _encrypted_get(key: str) -> Credentials | None:
    if not encrypted_file().exists():
        return None
    backend = _encrypted_keyring()
    if backend is None:
        if _encrypted_has(key) and key not in _warned:
            import sys

            _warned.add(key)
            print(f"warning: credentials for {key} are in {encrypted_file()}, but "
                  f"{PASSPHRASE_ENV} is not set, so they are not used", file=sys.stderr)
        return None
    return _decode(backend.get_password(KEYRING_SERVICE, key), key)


def _encrypted_has(key: str) -> bool:
    """Whether the encrypted file holds an entry for ``key`` (names are not encrypted)."""
    import configparser

    from keyrings.alt.escape import escape

    config = configparser.RawConfigParser()
    try:
        config.read(encrypted_file(), encoding="utf-8")
    except (OSError, configparser.Error):
        return False
    return config.has_option(escape(KEYRING_SERVICE), escape(key))


def _decode(secret: str | None, key: str) -> Credentials | None:
    if not secret:
        return None
    try:
        data = json.loads(secret)
        return Credentials(str(data["username"]), str(data["password"]))
    except (ValueError, KeyError, TypeError):
        log.debug("ignoring a malformed stored entry for %s", key)
        return None


# ------------------------------------------------------------------ the API


def plaintext_warning(path: Path | str) -> str:
    """What to tell the user each time the plaintext file is written or used."""
    return (f"no system keyring is available: the registry credentials are stored unencrypted "
            f"in {path}; install a system "
            "keyring (e.g. gnome-keyring or KWallet with an unlocked session) or set "
            f"{PASSPHRASE_ENV} to keep them in an encrypted file instead")


@dataclass
class SavedCredentials:
    location: str            # "the system keyring (...)", or a file path
    plaintext_file: bool     # True when the plaintext fallback file was used


def _file_drop(key: str) -> None:
    auths = _read_file()
    if auths.pop(key, None) is not None:
        _write_file(auths)


def save_credentials(server: str, credentials: Credentials) -> SavedCredentials:
    try:
        return _save(server, credentials)
    except OSError as exc:
        raise WasmetoolError(
            f"cannot save the credentials in {paths.config_dir()}: "
            f"{exc.strerror or type(exc).__name__}",
            "make that directory writable, or point WASMETOOL_HOME somewhere writable",
        ) from None


def _save(server: str, credentials: Credentials) -> SavedCredentials:
    key = server_key(server)
    secret = json.dumps({"username": credentials.username, "password": credentials.password})
    backend = system_keyring()
    if backend is not None:
        try:
            backend.set_password(KEYRING_SERVICE, key, secret)
        except Exception as exc:
            log.debug("keyring set_password failed: %s", type(exc).__name__)
        else:
            _file_drop(key)  # only one place holds it
            _encrypted_drop(key)
            return SavedCredentials(location=f"the system keyring ({type(backend).__name__})",
                                    plaintext_file=False)
    encrypted = _encrypted_keyring()
    if encrypted is not None:
        paths.config_dir().mkdir(parents=True, exist_ok=True)
        encrypted.set_password(KEYRING_SERVICE, key, secret)
        os.chmod(encrypted_file(), 0o600)
        _file_drop(key)
        return SavedCredentials(location=f"{encrypted_file()} (encrypted)", plaintext_file=False)
    auths = _read_file()
    auths[key] = {"username": credentials.username, "password": credentials.password}
    path = _write_file(auths)
    return SavedCredentials(location=str(path), plaintext_file=True)


def saved_credentials(server: str) -> Credentials | None:
    """What ``wasmetool login`` saved for ``server`` (keyring, encrypted file, plaintext file)."""
    found, _ = _saved_with_source(server)
    return found


def _saved_with_source(server: str) -> tuple[Credentials | None, str]:
    key = server_key(server)
    backend = system_keyring()
    if backend is not None:
        try:
            secret = backend.get_password(KEYRING_SERVICE, key)
        except Exception as exc:
            log.debug("keyring get_password failed: %s", type(exc).__name__)
            secret = None
        found = _decode(secret, key)
        if found:
            return found, "the system keyring"
    found = _encrypted_get(key)
    if found:
        return found, f"{encrypted_file()} (encrypted)"
    entry = _read_file().get(key)
    if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"])), str(credentials_file())
    return None, ""


def _encrypted_drop(key: str) -> bool:
    if not encrypted_file().exists():
        return False
    backend = _encrypted_keyring(required=False)
    try:
        backend.delete_password(KEYRING_SERVICE, key)
    except Exception as exc:  # keyring.errors.PasswordDeleteError: not there
        log.debug("encrypted file delete: %s", type(exc).__name__)
        return False
    return True


def delete_credentials(server: str) -> list[str]:
    """Forget what ``wasmetool login`` saved for ``server`` everywhere; the places it was in."""
    key = server_key(server)
    removed: list[str] = []
    backend = system_keyring()
    if backend is not None:
        try:
            if backend.get_password(KEYRING_SERVICE, key) is not None:
                backend.delete_password(KEYRING_SERVICE, key)
                removed.append(f"the system keyring ({type(backend).__name__})")
        except Exception as exc:
            log.debug("keyring delete failed: %s", type(exc).__name__)
    if _encrypted_drop(key):
        removed.append(str(encrypted_file()))
    auths = _read_file()
    if auths.pop(key, None) is not None:
        _write_file(auths)
        removed.append(str(credentials_file()))
    return removed


_warned: set[str] = set()  # once per command, however often the lookup runs


def find_credentials(server: str) -> tuple[Credentials | None, str]:
    """Credentials to use for ``server`` and where they came from ("" if none).

    Using the plaintext file warns on stderr, every time.
    """
    found, source = _saved_with_source(server)
    if found:
        if source == str(credentials_file()) and source not in _warned:
            import sys

            _warned.add(source)
            print(f"warning: {plaintext_warning(source)}", file=sys.stderr)
        log.debug("saved credentials for %s come from %s", server_key(server), source)
        return found, "wasmetool login"
    found = docker_credentials(server)
    if found:
        return found, "docker config"
    return None, ""

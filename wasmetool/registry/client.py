"""A small client for the OCI distribution API (what push, pull and login need).

Why not oras-py for the transfer itself: its token backend treats a Basic realm
as a token URL, it needs a process-wide ``insecure`` switch instead of per-host
TLS settings, it checks that files sit under the current directory, its login
never checks the credentials and writes them in plaintext to Docker's config,
and it gives us no hook for digest checks before data is kept, HEAD-before-
upload accounting, retries or progress.  The distribution API needed here is
eight endpoints, so a direct requests-based client is simpler, faster (one
keep-alive session, no temp files) and lets every failure become one clear line.

Transport rules:
  * ``--plain-http`` forces HTTP; ``--ca-file`` trusts a private CA;
    ``--insecure`` skips TLS verification.  Nothing is ever downgraded silently,
    except for loopback registries (localhost, 127.0.0.0/8, ::1): like Docker,
    HTTPS is tried first and, when the server does not speak TLS at all, plain
    HTTP is used.  A certificate that fails verification is never skipped.
  * Retries with exponential backoff on 429/5xx answers and on connection
    resets; never on refused connections, DNS failures or TLS errors.
  * Secrets: only the Authorization header carries them; no message, log line
    or exception built here includes headers, credentials or tokens.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin

import requests

from wasmetool import __version__
from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.registry.auth import Challenge, basic_header, parse_challenge
from wasmetool.registry.credentials import IDENTITY_TOKEN_USER, Credentials

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST]
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
CHUNK = 1024 * 1024
TLS_HINT = (
    "pass --ca-file CA.pem if the registry uses a private CA; "
    "--insecure skips verification and is only for self-signed test registries"
)

ProgressCallback = Callable[[int], None]


@dataclass
class TransportOptions:
    plain_http: bool = False
    insecure: bool = False
    ca_file: Path | None = None
    retries: int = 4                 # extra attempts after the first
    backoff: float = 0.25            # first delay in seconds, doubled each time
    timeout: float = 60.0            # seconds to wait for a byte


@dataclass
class TransferStats:
    uploaded: int = 0                # blobs sent
    skipped: int = 0                 # blobs the registry already had (HEAD 200)
    mounted: int = 0                 # blobs linked from another repository (no upload)
    downloaded: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0
    requests: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def api_host(registry: str) -> str:
    """Where a registry's API lives (Docker Hub's differs from its name)."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


def is_loopback(host: str) -> bool:
    if host.startswith("["):
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _error_codes(response: requests.Response) -> list[tuple[str, str]]:
    """(code, message) pairs from a distribution error body, if any."""
    try:
        body = json.loads(response.content[:65536] or b"{}")
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    out = []
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict):
            out.append((str(item.get("code", "")), str(item.get("message", ""))))
    return out


def _is_cert_failure(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in (
        "CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "Hostname mismatch",
        "doesn't match", "self-signed", "self signed",
    ))


_SSL_REASON = re.compile(r"\[SSL: [A-Z_]+\] ([^(')]+)")


def _root_cause(exc: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 exception, without the URL noise."""
    text = str(exc)
    ssl_reason = _SSL_REASON.search(text)
    if ssl_reason:
        return ssl_reason.group(1).strip()
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip(" ()'\"")[:200]


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class RegistryClient:
    """One registry, one keep-alive session, cached auth per scope.

    Safe to use from a few threads at once (push and pull move blobs in parallel):
    requests' connection pool is thread-safe, counters are locked, and two threads
    fetching the same token at once only cost one extra token request.
    """

    def __init__(self, registry: str, *, credentials: Credentials | None = None,
                 transport: TransportOptions | None = None,
                 credential_source: Callable[[], Credentials | None] | None = None) -> None:
        """``credential_source`` is asked only when the registry first asks for auth,
        so open registries never cost a keyring lookup."""
        self.registry = registry
        self.host = api_host(registry)
        self._credentials = credentials
        self._credential_source = None if credentials is not None else credential_source
        self.transport = transport or TransportOptions()
        self.stats = TransferStats()
        self._lock = threading.RLock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"wasmetool/{__version__}"
        # A no-op auth object stops requests from sending ~/.netrc credentials on its
        # own; registry credentials are chosen here (see connect.py), nowhere else.
        self.session.auth = _no_netrc
        t = self.transport
        if t.ca_file is not None:
            if not Path(t.ca_file).is_file():
                raise WasmetoolError(f"CA file {t.ca_file} does not exist", "pass the PEM file of the CA that signed the registry's certificate")
            self._verify: bool | str = str(t.ca_file)
        else:
            self._verify = True
        if t.insecure:
            import urllib3

            self._verify = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if t.plain_http:
            self._scheme: str | None = "http"
        elif t.insecure or t.ca_file is not None or not is_loopback(self.host):
            self._scheme = "https"
        else:
            self._scheme = None          # loopback: decided by the first request
        self._basic: str | None = None   # Authorization value once Basic is known
        self._tokens: dict[str, str] = {}

    @property
    def credentials(self) -> Credentials | None:
        with self._lock:
            if self._credential_source is not None:
                self._credentials = self._credential_source()
                self._credential_source = None
            return self._credentials

    def count(self, **increments: int) -> None:
        """Add to the transfer counters (blobs move on several threads at once)."""
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    # -- plumbing --------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return self._scheme or "https"

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}{path}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sleep(self, attempt: int, response: requests.Response | None) -> None:
        delay = self.transport.backoff * (2**attempt) * (1 + random.random() * 0.2)
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = max(delay, min(float(retry_after), 10.0))
        self.count(retries=1)
        time.sleep(delay)

    def _send(self, method: str, target: str, headers: dict[str, str], data: bytes | None,
              stream: bool) -> requests.Response:
        """One logical request: scheme discovery for loopback, retries, clear failures.

        ``target`` is an absolute URL or a path on this registry; a path gets the
        scheme in force at each attempt (it changes once for loopback registries).
        """
        attempt = 0
        while True:
            url = target if "://" in target else self.url(target)
            # Probing a loopback registry for TLS: a plain-HTTP server may answer a
            # ClientHello with an error, a reset, or silence — keep the wait short.
            probing = self._scheme is None and url.startswith(f"https://{self.host}")
            self.count(requests=1)
            try:
                response = self.session.request(
                    # verify per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
                    # override a session-level setting, which would ignore --ca-file.
                    method, url, headers=headers, data=data, stream=stream, verify=self._verify,
                    timeout=(2, 5) if probing else (10, self.transport.timeout),
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as exc:
                if probing and not _is_cert_failure(exc):
                    target = self._use_plain_http(target)
                    continue
                raise self._tls_error(exc) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                refused = isinstance(exc, requests.exceptions.ConnectTimeout) or any(
                    marker in str(exc) for marker in (
                        "NewConnectionError", "NameResolutionError", "Name or service not known",
                        "Connection refused", "nodename nor servname",
                    ))
                if probing and not refused:
                    target = self._use_plain_http(target)
                    continue
                if not refused and attempt < self.transport.retries:
                    log.debug("%s %s failed (%s); retrying", method, url, type(exc).__name__)
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise self._connection_error(exc, attempt) from None
            if self._scheme is None and url.startswith("https://"):
                self._scheme = "https"
            if response.status_code in RETRY_STATUSES and attempt < self.transport.retries:
                log.debug("%s %s answered %s; retrying", method, url, response.status_code)
                response.close()
                self._sleep(attempt, response)
                attempt += 1
                continue
            return response

    def _use_plain_http(self, target: str) -> str:
        log.debug("%s does not speak TLS; using plain HTTP", self.host)
        self._scheme = "http"
        return "http://" + target[len("https://"):] if "://" in target else target

    def _tls_error(self, exc: BaseException) -> WasmetoolError:
        if _is_cert_failure(exc):
            return WasmetoolError(
                f"the TLS certificate of {self.registry} is not trusted ({_root_cause(exc)})",
                TLS_HINT,
            )
        return WasmetoolError(
            f"TLS handshake with {self.registry} failed ({_root_cause(exc)})",
            "if the registry serves plain HTTP, pass --plain-http",
        )

    def _connection_error(self, exc: BaseException, retried: int = 0) -> WasmetoolError:
        reason = _root_cause(exc)
        if "NameResolution" in str(exc) or "Name or service not known" in str(exc):
            return WasmetoolError(
                f"cannot resolve registry host {self.host}",
                "check the registry name in the reference and your DNS/network",
            )
        if "refused" in reason.lower():
            return WasmetoolError(
                f"cannot connect to registry {self.host}: connection refused",
                "check the host and port, and that the registry is running",
            )
        tried = f" (tried {retried + 1} times)" if retried else ""
        return WasmetoolError(
            f"registry {self.host} is unreachable: {type(exc).__name__}{tried}",
            "check the network and the registry address, then try again",
        )

    # -- auth --------------------------------------------------------------------

    def _authorization(self, scope: str | None) -> str | None:
        if self._basic:
            return self._basic
        if scope and scope in self._tokens:
            return self._tokens[scope]
        return self._tokens.get("")

    def _authenticate(self, challenge: Challenge | None, scope: str | None) -> str | None:
        """Get an Authorization value answering ``challenge``; None if we cannot."""
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credentials is None:
                return None
            self._basic = basic_header(self.credentials)
            return self._basic
        if challenge.scheme == "bearer":
            token = self._fetch_token(challenge, scope)
            if token is None:
                return None
            value = f"Bearer {token}"
            self._tokens[scope or ""] = value
            return value
        return None

    def _fetch_token(self, challenge: Challenge, scope: str | None) -> str | None:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise WasmetoolError(
                f"{self.registry} asked for a token from an invalid realm",
                "the registry's auth configuration is broken; contact its operator",
            )
        params: dict[str, str | list[str]] = {}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        # Several scopes (e.g. push to one repository, pull from another for a
        # mount) are space-separated here and sent as repeated scope= parameters.
        wanted = (scope or challenge.params.get("scope") or "").split()
        headers = {}
        credentials = self.credentials
        if credentials is not None and credentials.username == IDENTITY_TOKEN_USER:
            # Docker's identity tokens (config.json "identitytoken") are OAuth2
            # refresh tokens: exchange them with a POST, as Docker does.
            form = dict(params, grant_type="refresh_token", refresh_token=credentials.password,
                        client_id="wasmetool")
            if wanted:
                form["scope"] = " ".join(wanted)
            response = self._send("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                  urlencode(form).encode(), False)
        else:
            if credentials is not None:
                headers["Authorization"] = basic_header(credentials)
            if wanted:
                params["scope"] = wanted
            query = urlencode(params, doseq=True, safe=":,/")
            response = self._send("GET", realm + ("&" if "?" in realm else "?") + query,
                                  headers, None, False)
        if response.status_code in (401, 403):
            if self.credentials is None:
                return None
            raise WasmetoolError(
                f"{self.registry} refused the credentials for user '{self.credentials.username}'",
                f"check the username and password, then run 'wasmetool login {self.registry}'",
            )
        if response.status_code != 200:
            raise WasmetoolError(
                f"the token service of {self.registry} answered HTTP {response.status_code}",
                "try again later, or check the registry's status",
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token or not isinstance(token, str):
            raise WasmetoolError(f"the token service of {self.registry} sent no token")
        return token

    def request(self, method: str, path_or_url: str, *, scope: str | None,
                headers: dict[str, str] | None = None, data: bytes | None = None,
                stream: bool = False) -> requests.Response:
        """Send with auth: on 401, answer the challenge once and resend."""
        hdrs = dict(headers or {})
        current = self._authorization(scope)
        if current:
            hdrs["Authorization"] = current
        response = self._send(method, path_or_url, hdrs, data, stream)
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            fresh = self._authenticate(challenge, scope)
            if fresh and fresh != current:
                response.close()
                hdrs["Authorization"] = fresh
                response = self._send(method, path_or_url, hdrs, data, stream)
        return response

    # -- errors ------------------------------------------------------------------

    def fail(self, response: requests.Response, what: str, repository: str | None = None,
             push: bool = False) -> WasmetoolError:
        """A one-line error for an unexpected answer to the request about ``what``."""
        status = response.status_code
        codes = _error_codes(response)
        detail = next((m for _, m in codes if m), "")
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if status == 401 and challenge is not None and \
                challenge.params.get("error") == "insufficient_scope" and self.credentials:
            status = 403  # authenticated, but the token does not grant this action
        if status == 401:
            if self.credentials is None:
                return WasmetoolError(
                    f"{self.registry} requires authentication for {what}",
                    f"run 'wasmetool login {self.registry}' or pass -u USER -p PASSWORD",
                )
            return WasmetoolError(
                f"{self.registry} refused the credentials of '{self.credentials.username}' for {what}",
                f"check them and run 'wasmetool login {self.registry}' again",
            )
        if status == 403:
            action = "push to" if push else "pull from"
            target = f"repository {repository}" if repository else "this registry"
            return WasmetoolError(
                f"{self.registry} denied access to {what} (HTTP 403)",
                f"the account needs permission to {action} {target}",
            )
        if status == 404:
            return WasmetoolError(f"{what} was not found on {self.registry}")
        if status == 405:
            return WasmetoolError(
                f"{self.registry} does not allow this operation ({what}, HTTP 405)",
                "the registry may be read-only or not support this artifact type",
            )
        message = f"{self.registry} answered HTTP {status} to {what}"
        if detail:
            message += f": {detail[:200]}"
        hint = "the registry had trouble; try again later" if status >= 500 else None
        if status == 400 and self.scheme == "http":
            hint = "if the registry serves HTTPS, drop --plain-http"
        return WasmetoolError(message, hint)

    # -- API ---------------------------------------------------------------------

    def ping(self, scope: str | None = None) -> requests.Response:
        """GET /v2/ with whatever auth we have (used by login)."""
        return self.request("GET", "/v2/", scope=scope)

    def blob_exists(self, repository: str, digest: str, scope: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=scope)
        response.close()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.fail(response, f"blob {digest[:19]} in {repository}", repository, push=True)

    def mount_blob(self, repository: str, digest: str, source: str, scope: str) -> str | None:
        """Ask the registry to link a blob it holds in ``source`` (cross-repo mount).

        Returns "mounted" on 201, or the upload-session URL the registry opened
        instead (202), or None when the registry would not do either (then a
        plain upload follows; e.g. a token lacking pull access to ``source``).
        """
        try:
            response = self.request(
                "POST", f"/v2/{repository}/blobs/uploads/?mount={digest}&from={source}",
                scope=f"{scope} repository:{source}:pull", headers={"Content-Length": "0"})
        except WasmetoolError as exc:  # an optimisation only: the upload reports real trouble
            log.debug("mount of %s from %s failed: %s", digest[:19], source, exc)
            return None
        response.close()
        if response.status_code == 201:
            self.count(mounted=1)
            return "mounted"
        if response.status_code == 202 and "Location" in response.headers:
            return urljoin(self.url(""), response.headers["Location"])
        return None

    def upload_blob(self, repository: str, digest: str, data: bytes, scope: str,
                    progress: ProgressCallback | None = None,
                    session_url: str | None = None) -> None:
        """Monolithic upload: POST to open a session, PUT the bytes with ?digest=.

        ``session_url`` reuses an upload session already opened (by a mount attempt).
        """
        for attempt in range(self.transport.retries + 1):
            if session_url and attempt == 0:
                location = session_url
            else:
                start = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope,
                                     headers={"Content-Length": "0"})
                start.close()
                if start.status_code != 202 or "Location" not in start.headers:
                    raise self.fail(start, f"starting an upload to {repository}", repository,
                                    push=True)
                location = urljoin(self.url(""), start.headers["Location"])
            separator = "&" if "?" in location else "?"
            response = self.request(
                "PUT", f"{location}{separator}digest={digest}", scope=scope,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(len(data))},
                data=data,
            )
            response.close()
            if response.status_code in (201, 204):
                self.count(uploaded=1, bytes_sent=len(data))
                if progress:
                    progress(len(data))
                return
            codes = [code for code, _ in _error_codes(response)]
            # An upload session can expire or break between POST and PUT (or after a
            # retried 5xx); start a new one.
            if attempt < self.transport.retries and (
                    response.status_code == 404
                    or "BLOB_UPLOAD_INVALID" in codes or "BLOB_UPLOAD_UNKNOWN" in codes):
                continue
            if "DIGEST_INVALID" in codes:
                raise WasmetoolError(
                    f"{self.registry} computed a different digest for blob {digest[:19]}",
                    "the upload was corrupted in transit; try again",
                )
            raise self.fail(response, f"uploading blob {digest[:19]} to {repository}",
                            repository, push=True)

    def get_blob(self, repository: str, digest: str, size: int, scope: str,
                 progress: ProgressCallback | None = None,
                 sink: BinaryIO | None = None) -> bytes:
        """Download a blob and check it against its digest before returning it.

        ``sink`` also receives the bytes as they arrive (the store's ingest file),
        so writing to disk overlaps the transfer. A connection dropped mid-body is
        retried from the start, with backoff.
        """
        # Preallocated: growing a bytearray chunk by chunk re-copies large blobs.
        buffer = bytearray(size)
        view = memoryview(buffer)
        attempt = 0
        while True:
            response = self.request("GET", f"/v2/{repository}/blobs/{digest}", scope=scope,
                                    stream=True)
            hasher = hashlib.sha256()
            received = 0
            if sink is not None:
                sink.seek(0)
                sink.truncate()
            try:
                if response.status_code != 200:
                    raise self.fail(response, f"blob {digest[:19]} of {repository}", repository)
                for chunk in response.iter_content(CHUNK):
                    end = received + len(chunk)
                    if end > size:
                        raise WasmetoolError(
                            f"blob {digest[:19]} from {self.registry} is larger than its "
                            f"descriptor says ({size} bytes)",
                            "the registry sent unexpected data; nothing was stored",
                        )
                    view[received:end] = chunk
                    received = end
                    hasher.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
                    if progress:
                        progress(len(chunk))
            except (requests.exceptions.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if attempt < self.transport.retries:
                    log.debug("download of %s broke off (%s); retrying", digest[:19],
                              type(exc).__name__)
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise self._connection_error(exc, attempt) from None
            finally:
                response.close()
            break
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest or received != size:
            raise WasmetoolError(
                f"blob {digest[:19]} from {self.registry} does not match its digest "
                f"(got {actual[:19]}, {received} bytes)",
                "the registry content is corrupt or was tampered with; nothing was stored",
            )
        self.count(downloaded=1, bytes_received=received)
        view.release()
        return bytes(buffer) if size < CHUNK else buffer  # type: ignore[return-value]

    def get_manifest(self, repository: str, reference: str, scope: str) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest) of a manifest, verified against its digest.

        ``reference`` is a tag or a digest.  For a digest, the bytes must hash to
        it; for a tag, they must hash to the Docker-Content-Digest the registry
        announced (when it did).
        """
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", scope=scope,
                                headers={"Accept": MANIFEST_ACCEPT}, stream=True)
        try:
            if response.status_code == 404:
                raise self._manifest_not_found(repository, reference, scope)
            if response.status_code != 200:
                raise self.fail(response, f"{repository}:{reference}", repository)
            raw = response.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
        finally:
            response.close()
        if len(raw) > MAX_MANIFEST_BYTES:
            raise WasmetoolError(f"the manifest of {repository}:{reference} is too large")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        expected = reference if reference.startswith("sha256:") else \
            response.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise WasmetoolError(
                f"the manifest of {repository}@{reference[:19] if reference.startswith('sha256:') else reference} "
                f"does not match its digest {expected[:19]} (got {digest[:19]})",
                "the registry content is corrupt or was tampered with; nothing was stored",
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise WasmetoolError(f"the manifest of {repository}:{reference} is not JSON") from None
        if isinstance(parsed, dict) and isinstance(parsed.get("mediaType"), str):
            media_type = parsed["mediaType"]
        return raw, media_type, digest

    def _manifest_not_found(self, repository: str, reference: str, scope: str) -> WasmetoolError:
        """Tell an unknown repository from an unknown tag (2.8 says MANIFEST_UNKNOWN for both)."""
        tags = self.try_list_tags(repository, scope)
        if tags is None:
            return WasmetoolError(
                f"repository {repository} does not exist on {self.registry}",
                "check the name, or push the image first",
            )
        if reference.startswith("sha256:"):
            return WasmetoolError(f"no manifest {reference[:19]}… in {self.registry}/{repository}")
        shown = ", ".join(tags[:8]) + (" …" if len(tags) > 8 else "")
        return WasmetoolError(
            f"tag '{reference}' not found in {self.registry}/{repository}",
            f"available tags: {shown}" if tags else "the repository has no tags",
        )

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str,
                     scope: str) -> str:
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", scope=scope,
                                headers={"Content-Type": media_type}, data=raw)
        response.close()
        if response.status_code not in (200, 201, 202):
            codes = [code for code, _ in _error_codes(response)]
            if "MANIFEST_INVALID" in codes or "MANIFEST_BLOB_UNKNOWN" in codes:
                raise WasmetoolError(
                    f"{self.registry} refused the manifest of {repository}:{reference} ({', '.join(codes)})",
                    "the registry may not accept this artifact format; try --format oci",
                )
            raise self.fail(response, f"{repository}:{reference}", repository, push=True)
        return response.headers.get("Docker-Content-Digest", "")

    def try_list_tags(self, repository: str, scope: str) -> list[str] | None:
        """All tags of a repository, or None when the repository is unknown (404)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            response = self.request("GET", path, scope=scope)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self.fail(response, f"the tags of {repository}", repository)
            try:
                page: Any = response.json()
            except ValueError:
                raise WasmetoolError(f"{self.registry} sent an invalid tag list") from None
            if not isinstance(page, dict):
                raise WasmetoolError(f"{self.registry} sent an invalid tag list")
            tags.extend(str(t) for t in (page.get("tags") or []))
            next_link = response.links.get("next", {}).get("url")
            path = urljoin(self.url(""), next_link) if next_link else None
        return tags

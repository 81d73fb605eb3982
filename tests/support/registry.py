"""Real OCI registries for tests: Debian's ``docker-registry`` (distribution 2.8).

Each :class:`RegistryServer` is a child process of the test process on a free
127.0.0.1 port with filesystem storage under a temporary directory, killed at
teardown.  Variants:

- open (no auth, plain HTTP);
- ``htpasswd``: Basic auth with a bcrypt entry made by ``htpasswd -iBn``;
- ``token``: Bearer-token auth; :class:`TokenServer` (a small in-process HTTP
  server) issues RS256 JWTs signed by a key whose certificate the registry trusts;
- ``tls=True``: HTTPS with a certificate from a throw-away CA made here with the
  ``cryptography`` package (tests pass ``ca_file`` explicitly or ``--insecure``).

The registry writes its access log to ``log_path``; :meth:`RegistryServer.requests`
parses it so tests can count e.g. blob uploads.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .ports import free_port, port_accepts, wait_until

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD_BINARY = shutil.which("htpasswd") or "/usr/bin/htpasswd"

# "GET /v2/x/blobs/sha256:... HTTP/1.1" 200 ...  (gorilla combined access log)
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


# --------------------------------------------------------------------------- TLS


@dataclass
class TestCA:
    """A throw-away CA and one server certificate for 127.0.0.1 / localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_test_ca(directory: Path) -> TestCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wasmetool test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server-key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TestCA(ca_file=ca_file, cert_file=cert_file, key_file=key_file)


# ------------------------------------------------------------------ token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A minimal Docker token service (the `auth: token:` flow) on 127.0.0.1.

    ``GET /token?service=..&scope=repository:NAME:pull,push`` with Basic
    credentials answers ``{"token": JWT}``; wrong or missing credentials get 401.
    Tokens are RS256 JWTs with an ``x5c`` header holding a self-signed
    certificate that the registry lists in ``rootcertbundle``.
    """

    def __init__(self, directory: Path, username: str, password: str,
                 service: str = "wasmetool-test-registry",
                 issuer: str = "wasmetool-test-issuer") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password
        self.service = service
        self.issuer = issuer
        self.requests: list[dict[str, Any]] = []
        self.allowed_actions: set[str] | None = None  # e.g. {"pull"}: a read-only account
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wasmetool token signer")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = directory / "token-signer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def issue(self, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) >= 3:
                actions = parts[-1].split(",")
                if self.allowed_actions is not None:
                    actions = [a for a in actions if a in self.allowed_actions]
                access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                               "actions": actions})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": self.username, "aud": self.service,
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                  "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                query = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                server.requests.append({"path": self.path, "has_auth": bool(auth)})
                expected = "Basic " + base64.b64encode(
                    f"{server.username}:{server.password}".encode()).decode()
                if auth != expected:
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"details":"incorrect username or password"}')
                    return
                body = json.dumps({"token": server.issue(query.get("scope", [])),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                # OAuth2 refresh-token grant (Docker's "identitytoken"); the
                # password doubles as the refresh token here.
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                server.requests.append({"path": self.path, "has_auth": False,
                                        "grant_type": form.get("grant_type", [""])[0]})
                if (form.get("grant_type") != ["refresh_token"]
                        or form.get("refresh_token") != [server.password]):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = " ".join(form.get("scope", [])).split()
                body = json.dumps({"access_token": server.issue(scopes),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


# ---------------------------------------------------------------------- registry


@dataclass
class RegistryServer:
    """One ``docker-registry`` child process; start with :func:`start_registry`."""

    directory: Path
    port: int
    tls: TestCA | None = None
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.directory / "data"

    @property
    def ca_file(self) -> Path | None:
        return self.tls.ca_file if self.tls else None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes (to tamper with in tests)."""
        algorithm, hexdigest = digest.split(":", 1)
        return (self.storage / "docker/registry/v2/blobs" / algorithm / hexdigest[:2]
                / hexdigest / "data")

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request in the access log so far."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [(m["method"], m["path"], int(m["status"])) for m in _ACCESS_LINE.finditer(text)]

    def blob_uploads(self) -> int:
        """Blob upload sessions started (POST .../blobs/uploads/) so far."""
        return sum(1 for method, path, _ in self.requests()
                   if method == "POST" and "/blobs/uploads/" in path)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        if self.token_server is not None:
            self.token_server.stop()


def _write_htpasswd(path: Path, username: str, password: str) -> None:
    # -i reads the password from stdin, so it never shows up in a process list.
    result = subprocess.run(
        [HTPASSWD_BINARY, "-iBn", username], input=password.encode(),
        capture_output=True, check=True,
    )
    path.write_bytes(result.stdout)


def _config(server: RegistryServer, auth: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False},
                "fields": {"service": "registry"}},
        "storage": {"filesystem": {"rootdirectory": str(server.storage)},
                    "delete": {"enabled": True}},
        "http": {"addr": server.host, "secret": uuid.uuid4().hex,
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if server.tls:
        config["http"]["tls"] = {"certificate": str(server.tls.cert_file),
                                 "key": str(server.tls.key_file)}
    if auth == "htpasswd":
        htpasswd = server.directory / "htpasswd"
        _write_htpasswd(htpasswd, server.username or "", server.password or "")
        config["auth"] = {"htpasswd": {"realm": "wasmetool-test", "path": str(htpasswd)}}
    elif auth == "token":
        token = server.token_server
        assert token is not None
        config["auth"] = {"token": {"realm": token.realm, "service": token.service,
                                    "issuer": token.issuer,
                                    "rootcertbundle": str(token.cert_file)}}
    return config


def _ready(server: RegistryServer) -> bool:
    if server.process is not None and server.process.poll() is not None:
        raise RuntimeError(
            f"docker-registry exited with {server.process.returncode}:\n"
            + server.log_path.read_text(errors="replace")[-2000:]
        )
    if not port_accepts(server.port):
        return False
    context = None
    if server.tls:
        context = ssl.create_default_context(cafile=str(server.tls.ca_file))
    try:
        urllib.request.urlopen(server.base_url + "/v2/", timeout=1, context=context)
    except urllib.error.HTTPError:
        return True  # 401 from an auth registry: it is up
    except OSError:
        return False
    return True


def start_registry(directory: Path, *, auth: str | None = None, tls: bool = False,
                   username: str = "tester", password: str | None = None) -> RegistryServer:
    """Start a registry child process and wait until ``/v2/`` answers.

    ``auth`` is None (open), ``"htpasswd"`` (Basic) or ``"token"`` (Bearer).
    The caller must call :meth:`RegistryServer.stop` (the pytest fixtures do).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if password is None:
        password = "pw-" + hashlib.sha256(os.urandom(16)).hexdigest()[:20]
    server = RegistryServer(directory=directory, port=free_port(),
                            username=username if auth else None,
                            password=password if auth else None)
    server.log_path = directory / "registry.log"
    if tls:
        server.tls = make_test_ca(directory / "tls")
    if auth == "token":
        server.token_server = TokenServer(directory / "token", username, password)
        server.token_server.start()
    config_path = directory / "config.yml"
    # JSON is YAML: no yaml dependency needed to write the config.
    config_path.write_text(json.dumps(_config(server, auth), indent=2))
    log = server.log_path.open("ab")
    server.process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config_path)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
    )
    log.close()
    try:
        wait_until(lambda: _ready(server), timeout=15, what=f"docker-registry on {server.host}")
    except BaseException:
        server.stop()
        raise
    return server


# ----------------------------------------------- Istio's selection rule, independently


DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONTENT = "application/vnd.module.wasm.content.layer.v1+wasm"


def istio_select_wasm(manifest: dict[str, Any], fetch: Any) -> tuple[str, bytes]:
    """What Istio's image fetcher would load from ``manifest`` (variant, module bytes).

    Written from the rules in reference/wasme_anchor.md §3, sharing no code with
    wasmetool: docker compat (Docker v2 manifest, LAST layer rootfs tar.gzip),
    then OCI compat (LAST layer OCI tar+gzip), each returning the first tar entry
    whose base name is plugin.wasm; then the wasm variant (EXACTLY two layers,
    one of them the raw wasm layer).  ``fetch(digest) -> bytes``.  Raises
    AssertionError when Istio would refuse the image.
    """
    import gzip
    import io
    import posixpath
    import tarfile

    layers = manifest.get("layers") or []
    assert layers, "Istio refuses a manifest without layers"

    def plugin_from_tar_gz(blob: bytes) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as archive:
            for member in archive:
                if posixpath.basename(member.name) == "plugin.wasm":
                    handle = archive.extractfile(member)
                    assert handle is not None
                    return handle.read()
        raise AssertionError("no plugin.wasm in the compat layer")

    last = layers[-1]
    if manifest.get("mediaType") == DOCKER_V2:
        assert last["mediaType"] == DOCKER_TAR_GZIP, "docker manifest: last layer is not rootfs tar.gzip"
        return "docker", plugin_from_tar_gz(fetch(last["digest"]))
    if last["mediaType"] == OCI_TAR_GZIP:
        return "oci", plugin_from_tar_gz(fetch(last["digest"]))
    assert len(layers) == 2, f"Istio's wasm variant needs exactly 2 layers, found {len(layers)}"
    wasm_layers = [layer for layer in layers if layer["mediaType"] == WASM_CONTENT]
    assert wasm_layers, "no application/vnd.module.wasm.content.layer.v1+wasm layer"
    return "wasme", fetch(wasm_layers[0]["digest"])


def registry_get(server: RegistryServer, path: str, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A raw GET against the registry's API (no wasmetool code), with its Basic auth if any."""
    headers = {"Accept": accept} if accept else {}
    if server.username and server.password and server.token_server is None:
        token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    context = ssl.create_default_context(cafile=str(server.ca_file)) if server.tls else None
    request = urllib.request.Request(server.base_url + path, headers=headers)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return response.read(), dict(response.headers)

"""A real Kubernetes API server for tests: Debian's etcd + kube-apiserver built from source.

``kube-apiserver`` is built once from the Go module proxy by
``tests/support/build_kube_apiserver.sh`` (install.sh --dev runs it; if a test
session finds no cached binary it runs the script itself) and cached under
``~/.cache/wasmetool-ci/kube-apiserver-vVERSION/``.  :func:`start_cluster` starts
etcd and the API server as children of the test process on free 127.0.0.1 ports,
with a throw-away CA/serving certificate, static tokens (an admin in
system:masters and a ``viewer`` with no rights until a test grants some) and RBAC, writes a kubeconfig, and installs the CRDs in
``kube_crds/`` (WasmPlugin, EnvoyFilter, Gloo Gateway — schemas written from
their published field lists).  There are no controllers: tests check what the
API server stores.  :meth:`KubeCluster.stop` kills both processes by PID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .ports import free_port, wait_until

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build_kube_apiserver.sh"
CRD_DIR = HERE / "kube_crds"
ETCD_BINARY = shutil.which("etcd") or "/usr/bin/etcd"


def kube_apiserver_binary() -> Path:
    """The cached kube-apiserver; builds it (minutes, once per machine) if missing."""
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False,
                            env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/local/go/bin"})
    if result.returncode != 0:
        raise RuntimeError(f"building kube-apiserver failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _write_tls(directory: Path) -> tuple[Path, Path, Path, Path]:
    """Serving cert (SAN 127.0.0.1) + key, and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "apiserver.pem", directory / "apiserver-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub, sa_priv = directory / "sa.pub", directory / "sa.key"
    sa_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    sa_priv.write_bytes(sa_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return cert_file, key_file, sa_pub, sa_priv


@dataclass
class KubeCluster:
    directory: Path
    port: int
    token: str
    ca_file: Path
    kubeconfig: Path
    viewer_token: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:
        """A raw API call as admin; returns the decoded JSON, or None for 404."""
        import ssl
        import urllib.error
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.ca_file))
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type,
                     "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
        return json.loads(raw) if raw else None

    def write_kubeconfig(self, path: Path, *, server: str | None = None, token: str | None = None,
                         namespace: str | None = None, context: str = "test") -> Path:
        ctx: dict[str, Any] = {"cluster": "test", "user": "admin"}
        if namespace:
            ctx["namespace"] = namespace
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "test", "cluster": {
                "server": server or self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "admin", "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": ctx}],
        }))
        return path

    def create_namespace(self, name: str) -> None:
        self.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def install_crds(self) -> None:
        names = []
        for path in sorted(CRD_DIR.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            names.append(crd["metadata"]["name"])
            if self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}") is None:
                self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)

        def established() -> bool:
            for name in names:
                crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = (crd or {}).get("status", {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        wait_until(established, timeout=30, interval=0.1, what="CRDs to be established")
        # Discovery of new groups lags the Established condition by a moment.
        wait_until(lambda: self._served("/apis/extensions.istio.io/v1alpha1/wasmplugins")
                   and self._served("/apis/networking.istio.io/v1alpha3/envoyfilters")
                   and self._served("/apis/gateway.solo.io/v1/gateways"),
                   timeout=30, interval=0.1, what="CRD resources to be served")

    def _served(self, path: str) -> bool:
        return self.request("GET", path) is not None

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.processes.clear()


def _ready(port: int, token: str, ca_file: Path) -> bool:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(f"https://127.0.0.1:{port}/readyz",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return response.status == 200
    except OSError:
        return False


def start_cluster(directory: Path) -> KubeCluster:
    """etcd + kube-apiserver on free 127.0.0.1 ports, CRDs installed, kubeconfig written."""
    binary = kube_apiserver_binary()
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file, sa_pub, sa_priv = _write_tls(directory)
    token, viewer_token = secrets.token_hex(16), secrets.token_hex(16)
    token_file = directory / "tokens.csv"
    # admin bypasses RBAC (system:masters); viewer gets only what a test grants it.
    token_file.write_text(f"{token},admin,admin,system:masters\n{viewer_token},viewer,viewer\n")
    etcd_port, etcd_peer, port = free_port(), free_port(), free_port()
    cluster = KubeCluster(directory=directory, port=port, token=token, ca_file=cert_file,
                          kubeconfig=directory / "kubeconfig", viewer_token=viewer_token)
    etcd_log = (directory / "etcd.log").open("ab")
    cluster.processes.append(subprocess.Popen(
        [ETCD_BINARY, "--data-dir", str(directory / "etcd"), "--name", "wasmetool-test",
         "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
         "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
         "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
         "--initial-cluster", f"wasmetool-test=http://127.0.0.1:{etcd_peer}"],
        stdout=etcd_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    etcd_log.close()
    api_log = (directory / "kube-apiserver.log").open("ab")
    cluster.processes.append(subprocess.Popen(
        [str(binary), "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
         "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
         "--secure-port", str(port),
         "--tls-cert-file", str(cert_file), "--tls-private-key-file", str(key_file),
         "--token-auth-file", str(token_file), "--authorization-mode=RBAC",
         "--service-account-issuer", "https://kubernetes.default.svc",
         "--service-account-key-file", str(sa_pub),
         "--service-account-signing-key-file", str(sa_priv),
         "--service-cluster-ip-range", "10.0.0.0/24", "--endpoint-reconciler-type=none",
         "--cert-dir", str(directory / "certs")],
        stdout=api_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    api_log.close()
    try:
        wait_until(lambda: _ready(port, token, cert_file), timeout=90, interval=0.2,
                   what="kube-apiserver /readyz")
        cluster.write_kubeconfig(cluster.kubeconfig)
        cluster.install_crds()
    except BaseException:
        log = (directory / "kube-apiserver.log").read_text(errors="replace")[-2000:]
        cluster.stop()
        print(log)
        raise
    return cluster

"""A thin layer over the `kubernetes` client: connect as kubectl does, call the REST API.

Only the paths wasmetool touches are spelled out (:data:`KINDS`), so no discovery
round trips are needed.  Objects are written with server-side apply (field
manager ``wasmetool``): applying the same object twice is a no-op on the server
(the resourceVersion does not move).  Every API failure becomes one
:class:`~wasmetool.errors.WasmetoolError` line: unreachable server, refused
credentials, forbidden, missing namespace, missing CRD, invalid object.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from wasmetool import __version__
from wasmetool.errors import WasmetoolError

log = logging.getLogger(__name__)

FIELD_MANAGER = "wasmetool"
MANAGED_BY = "app.kubernetes.io/managed-by"
ID_LABEL = "wasmetool.io/id"
IMAGE_ANNOTATION = "wasmetool.io/image"
DIGEST_ANNOTATION = "wasmetool.io/digest"
TIMEOUT = (5.0, 30.0)  # connect, read seconds


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    what: str  # how to get it, for a missing-CRD message

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    def path(self, namespace: str | None, name: str | None = None) -> str:
        out = self.prefix
        if namespace is not None:
            out += f"/namespaces/{quote(namespace, safe='')}"
        out += f"/{self.plural}"
        if name is not None:
            out += f"/{quote(name, safe='')}"
        return out


KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("Namespace", "v1", "namespaces", "built in"),
    Kind("ConfigMap", "v1", "configmaps", "built in"),
    Kind("Secret", "v1", "secrets", "built in"),
    Kind("Deployment", "apps/v1", "deployments", "built in"),
    Kind("DaemonSet", "apps/v1", "daemonsets", "built in"),
    Kind("StatefulSet", "apps/v1", "statefulsets", "built in"),
    Kind("WasmPlugin", "extensions.istio.io/v1alpha1", "wasmplugins",
         "Istio >= 1.12 installs it; on older Istio use --legacy"),
    Kind("EnvoyFilter", "networking.istio.io/v1alpha3", "envoyfilters", "Istio installs it"),
    Kind("Gateway", "gateway.solo.io/v1", "gateways", "Gloo Edge installs it"),
)}


class KubeApiError(WasmetoolError):
    """An API answer other than success; keeps the HTTP status for callers that branch on it."""

    def __init__(self, message: str, hint: str | None, status: int) -> None:
        super().__init__(message, hint)
        self.status = status


def _first_existing(paths: list[str]) -> bool:
    return any(Path(p).expanduser().is_file() for p in paths if p)


class Kube:
    """One API server connection, chosen from --kubeconfig/--context, KUBECONFIG, ~/.kube/config
    or the in-cluster service account (in that order, as kubectl does)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        import yaml
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self.context_namespace: str | None = None
        env_paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
            raise WasmetoolError(f"kubeconfig {kubeconfig} does not exist",
                                 "pass the path of a kubeconfig file")
        files = [kubeconfig] if kubeconfig else env_paths or ["~/.kube/config"]
        self.source = ""
        try:
            if _first_existing(files):
                joined = os.pathsep.join(str(Path(f).expanduser()) for f in files)
                configuration = client.Configuration()
                contexts, current = config.list_kube_config_contexts(config_file=joined)
                chosen = next((c for c in contexts if c.get("name") == context), None) \
                    if context is not None else current
                if chosen is None:
                    raise WasmetoolError(f"context '{context}' is not in the kubeconfig",
                                         "list contexts with 'kubectl config get-contexts'")
                config.load_kube_config(config_file=joined, context=chosen["name"],
                                        client_configuration=configuration,
                                        persist_config=False)
                self.context_namespace = (chosen.get("context") or {}).get("namespace")
                self.source = f"context '{chosen['name']}'"
            elif context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                ns_file = Path(config.incluster_config.SERVICE_TOKEN_FILENAME).with_name("namespace")
                if ns_file.is_file():
                    self.context_namespace = ns_file.read_text().strip() or None
                self.source = "the in-cluster service account"
            else:
                raise WasmetoolError(
                    "no Kubernetes configuration found",
                    "pass --kubeconfig FILE, set KUBECONFIG, or run inside a cluster; "
                    "--dry-run prints the manifests without a cluster")
        except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, AttributeError,
                KeyError) as exc:
            # A file that is not YAML, or YAML that is not a kubeconfig mapping, fails inside
            # the loader with these; the user gets one line naming the file problem.
            if isinstance(exc, yaml.YAMLError):
                detail = "it is not valid YAML"
            elif isinstance(exc, TypeError | AttributeError | KeyError):
                detail = "it is not a kubeconfig (clusters, contexts, users, current-context)"
            else:
                detail = " ".join(str(exc).split()) or type(exc).__name__
            if context is not None and "context" in detail.lower():
                raise WasmetoolError(f"context '{context}' is not in the kubeconfig",
                                     "list contexts with 'kubectl config get-contexts'") from None
            raise WasmetoolError(f"the kubeconfig is not usable: {detail[:200]}",
                                 "check --kubeconfig, --context and KUBECONFIG") from None
        configuration.retries = 0
        self.server = configuration.host
        self.api = client.ApiClient(configuration)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw calls ---------------------------------------------------------------

    def call(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
             content_type: str = "application/json", what: str = "") -> Any:
        """Send one request; returns the decoded JSON body. Raises KubeApiError.

        The request goes through the client's own urllib3 pool (TLS, client
        certificates and proxy as the kubeconfig says); the generated API classes
        are not used, since their call signatures change between client releases.
        """
        import urllib3

        configuration = self.api.configuration
        url = configuration.host + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json", "User-Agent": f"wasmetool/{__version__}"}
        # auth_settings() names the token the same way in old and new client releases
        token = (configuration.auth_settings().get("BearerToken") or {}).get("value")
        if token:
            headers["Authorization"] = token
        elif configuration.username and configuration.password:
            headers.update(urllib3.util.make_headers(
                basic_auth=f"{configuration.username}:{configuration.password}"))
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        try:
            response = self.api.rest_client.pool_manager.request(
                method, url, body=data, headers=headers, retries=False, preload_content=True,
                timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]))
        except urllib3.exceptions.SSLError:
            raise KubeApiError(f"the certificate of the API server {self.server} is not trusted",
                               "check certificate-authority in the kubeconfig", 0) from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise KubeApiError(
                f"cannot reach the Kubernetes API server at {self.server}",
                f"is the cluster running? ({self.source}; check --kubeconfig/--context)", 0,
            ) from None
        if not 200 <= response.status < 300:
            raise self._api_error(response.status, response.data, what or path)
        if not response.data:
            return None
        try:
            return json.loads(response.data)
        except ValueError:
            raise KubeApiError(f"the API server sent an answer that is not JSON for {what or path}",
                               None, response.status) from None

    def _api_error(self, status: int, raw: bytes, what: str) -> KubeApiError:
        message = ""
        try:
            body = json.loads(raw) if raw else {}
            message = str(body.get("message") or "")
        except (ValueError, AttributeError):
            pass
        message = " ".join(message.split())[:300]
        if status == 401:
            return KubeApiError(f"the API server {self.server} refused the credentials of {self.source}",
                                "log in again or check the kubeconfig user", status)
        if status == 403:
            return KubeApiError(f"forbidden: {message or what}",
                                "ask for RBAC permission for this, or use another --context", status)
        if status == 404:
            return KubeApiError(f"{what} not found" + (f": {message}" if message else ""), None, status)
        if status == 409:
            return KubeApiError(f"conflict writing {what}: {message}",
                                "someone else changed it; run the command again", status)
        if status == 422 or status == 400:
            return KubeApiError(f"the API server rejected {what}: {message}", None, status)
        return KubeApiError(f"the API server answered HTTP {status} for {what}"
                            + (f": {message}" if message else ""), None, status)

    # -- typed helpers -----------------------------------------------------------

    def kind(self, name: str) -> Kind:
        return KINDS[name]

    def check_namespace(self, namespace: str) -> None:
        try:
            self.call("GET", KINDS["Namespace"].path(None, namespace), what=f"namespace {namespace}")
        except KubeApiError as exc:
            if exc.status == 404:
                raise WasmetoolError(f"namespace '{namespace}' does not exist",
                                     "create it or pass -n NAMESPACE") from None
            raise

    def check_served(self, kind: Kind, namespace: str) -> None:
        """Fail clearly when the cluster has no such resource (CRD missing)."""
        try:
            self.call("GET", kind.path(namespace), query={"limit": "1"}, what=f"{kind.kind} list")
        except KubeApiError as exc:
            if exc.status == 404:
                raise self.missing_crd(kind) from None
            raise

    @staticmethod
    def missing_crd(kind: Kind) -> WasmetoolError:
        group = kind.api_version.rsplit("/", 1)[0]
        return WasmetoolError(
            f"the cluster has no {kind.kind} resource ({kind.plural}.{group}, {kind.api_version})",
            kind.what)

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", kind.path(namespace, name), what=f"{kind.kind} {name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None, selector: str | None = None,
             missing_ok: bool = False) -> list[dict[str, Any]]:
        query = {"labelSelector": selector} if selector else None
        try:
            body = self.call("GET", kind.path(namespace), query=query, what=f"{kind.kind} list")
        except KubeApiError as exc:
            if exc.status == 404:
                if missing_ok:
                    return []
                raise self.missing_crd(kind) from None
            raise
        return list((body or {}).get("items") or [])

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply ``obj`` (force: wasmetool owns the fields it sets)."""
        kind = KINDS[obj["kind"]]
        meta = obj["metadata"]
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        try:
            return self.call("PATCH", kind.path(meta.get("namespace"), meta["name"]), body=obj,
                             query=query, content_type="application/apply-patch+yaml",
                             what=f"{kind.kind} {meta['name']}")
        except KubeApiError as exc:
            if exc.status == 404:
                raise self.missing_crd(kind) from None
            raise

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], *,
                    dry_run: bool = False) -> dict[str, Any]:
        query = {"fieldManager": FIELD_MANAGER}
        if dry_run:
            query["dryRun"] = "All"
        return self.call("PATCH", kind.path(namespace, name), body=patch, query=query,
                         content_type="application/merge-patch+json", what=f"{kind.kind} {name}")

    def delete(self, kind: Kind, namespace: str, name: str, *, dry_run: bool = False) -> bool:
        query = {"dryRun": "All"} if dry_run else None
        try:
            self.call("DELETE", kind.path(namespace, name), query=query, what=f"{kind.kind} {name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

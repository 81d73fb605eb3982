"""The image a deployment points at: found in the registry, in a format Istio can pull.

Istio's agent pulls the image itself, so before a WasmPlugin (or a Gloo filter)
is written the image must be in the registry (a ref only in the local store is
refused, or pushed first with ``--push``), in one of the layouts Istio's fetcher
accepts (wasme_anchor.md §3), and pullable with the credentials the proxy will
have: a registry that refuses anonymous pulls needs a pull secret, or the pull
would fail silently in the proxy (wasme's users' complaint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.reference import Reference, parse_reference
from wasmetool.registry.auth import repository_scope
from wasmetool.registry.client import MANIFEST_ACCEPT, RegistryClient, TransportOptions
from wasmetool.registry.credentials import Credentials


@dataclass
class RemoteImage:
    ref: Reference            # as given (tag or digest), registry-qualified
    digest: str               # manifest digest, sha256:...
    format: str               # wasme, oci or docker
    anonymous_pull: bool      # False: the registry wants credentials to pull
    credentials: Credentials | None  # what wasmetool would use (login / docker config)

    @property
    def url(self) -> str:
        """The oci:// URL Istio pulls (tag kept; the digest goes in sha256)."""
        return f"oci://{self.ref}"

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")


def istio_format(manifest: dict[str, Any], media_type: str) -> str | None:
    """The layout Istio's fetcher would pick for ``manifest``, or None if it refuses it.

    Istio tries: Docker v2 manifest with a last rootfs tar+gzip layer; a last OCI
    tar+gzip layer; exactly two layers one of which is the raw wasm layer.
    """
    if media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST) or "manifests" in manifest:
        return None
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        return None
    last = layers[-1].get("mediaType") if isinstance(layers[-1], dict) else None
    if media_type == mt.DOCKER_MANIFEST and last == mt.DOCKER_LAYER_TAR_GZIP:
        return "docker"
    if last == mt.OCI_LAYER_TAR_GZIP:
        return "oci"
    if len(layers) == 2 and any(isinstance(x, dict) and x.get("mediaType") == mt.WASM_LAYER
                                for x in layers):
        return "wasme"
    return None


def _fetch(client: RegistryClient, ref: Reference) -> tuple[int, bytes, str, str]:
    """(status, raw, media type, digest) of a manifest; 404/401 come back as statuses."""
    scope = repository_scope(ref.repository, push=False)
    reference = ref.digest or ref.tag or "latest"
    response = client.request("GET", f"/v2/{ref.repository}/manifests/{reference}", scope=scope,
                              headers={"Accept": MANIFEST_ACCEPT})
    try:
        if response.status_code in (401, 404):
            return response.status_code, b"", "", ""
        if response.status_code != 200:
            raise client.fail(response, f"{ref.repository}:{reference}", ref.repository)
    finally:
        response.close()
    raw, media_type, digest = client.get_manifest(ref.repository, reference, scope)
    return 200, raw, media_type, digest


def resolve_remote_image(ref_text: str, *, push: bool = False,
                         transport: TransportOptions | None = None) -> RemoteImage:
    """Find ``ref_text`` in its registry (pushing it from the store first with ``push``)."""
    from wasmetool.registry.connect import open_client
    from wasmetool.registry.credentials import find_credentials
    from wasmetool.store import Store

    ref = parse_reference(ref_text)
    store = Store.open()
    try:
        local = store.resolve(ref)
    except WasmetoolError:
        local = None
    if push:
        if local is None:
            raise WasmetoolError(f"--push: no image {ref.familiar} in the local store",
                                 "build or pull it first, or drop --push")
        from wasmetool.registry.push import push_image

        push_image(store, ref, transport=transport, progress=False)

    credentials, _ = find_credentials(ref.registry)
    with RegistryClient(ref.registry, transport=transport) as anonymous:
        status, raw, media_type, digest = _fetch(anonymous, ref)
    anonymous_pull = status != 401
    if status == 401:
        with open_client(ref.registry, transport=transport) as client:
            status, raw, media_type, digest = _fetch(client, ref)
        if status == 401:
            raise WasmetoolError(f"{ref.registry} requires credentials to pull {ref.familiar}",
                                 f"run 'wasmetool login {ref.registry}' first")
    if status == 404:
        if local is not None:
            raise WasmetoolError(
                f"{ref.familiar} is only in the local store; the proxy pulls it from "
                f"{ref.registry}",
                f"push it first: 'wasmetool push {ref.familiar}', or add --push")
        raise WasmetoolError(f"no image {ref.familiar} in the local store or on {ref.registry}",
                             "check the reference; 'wasmetool list' shows stored images")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise WasmetoolError(f"the manifest of {ref.familiar} is not JSON") from None
    fmt = istio_format(manifest if isinstance(manifest, dict) else {}, media_type)
    if fmt is None:
        fix = (f"wasmetool push {ref.familiar} --format oci" if local is not None else
               f"wasmetool pull {ref.familiar} && wasmetool push {ref.familiar} --format oci")
        raise WasmetoolError(
            f"{ref.familiar} is not in a format Istio's agent can pull (it wants a raw wasm "
            "layer beside the config in exactly two layers, or a last tar+gzip layer holding "
            "plugin.wasm)", f"re-push it: {fix}")
    return RemoteImage(ref=ref, digest=digest, format=fmt, anonymous_pull=anonymous_pull,
                       credentials=credentials)

